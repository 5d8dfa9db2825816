"""Lean's LocalObjectStore: ``algorithm.object_store``, keys as files under the config's ``object-store-root``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from include.lean_local.errors import NotSupportedByLocalRuntime


class ObjectStore:
    """Lean's LocalObjectStore: keys are files under ``object-store-root``."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def _path(self, key: str) -> Path:
        clean = key.lstrip("/\\")
        path = (self._root / clean).resolve()
        root = self._root.resolve()
        if root != path and root not in path.parents:
            raise ValueError(f"object store key escapes the store root: {key!r}")
        return path

    def contains_key(self, path: str) -> bool:
        return self._path(path).is_file()

    def save(self, path: str, text: str | None = None, encoding: Any = None) -> bool:
        _utf8_only("save", encoding)
        return self.save_bytes(path, ("" if text is None else str(text)).encode("utf-8"))

    def save_string(self, path: str, text: str, encoding: Any = None) -> bool:
        return self.save(path, text, encoding)

    def save_bytes(self, path: str, contents: bytes | bytearray) -> bool:
        from include.atomic_io import atomic_write_bytes

        atomic_write_bytes(self._path(path), bytes(contents))
        return True

    def save_json(self, key: str, obj: Any) -> bool:
        return self.save(key, json.dumps(obj))

    def read(self, path: str, encoding: Any = None) -> str:
        _utf8_only("read", encoding)
        return self.read_bytes(path).decode("utf-8")

    def read_string(self, path: str, encoding: Any = None) -> str:
        return self.read(path, encoding)

    def read_bytes(self, path: str) -> bytes:
        file = self._path(path)
        if not file.is_file():
            raise KeyError(f"Object store key not found: {path}")
        return file.read_bytes()

    def read_json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def delete(self, path: str) -> bool:
        file = self._path(path)
        if file.is_file():
            file.unlink()
            return True
        return False

    def get_file_path(self, path: str) -> str:
        file = self._path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        return os.fspath(file)

    @property
    def keys(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(p.relative_to(self._root).as_posix() for p in self._root.rglob("*") if p.is_file())

    def __contains__(self, key: str) -> bool:
        return self.contains_key(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"object_store.{name}")


def _utf8_only(method: str, encoding: Any) -> None:
    """The store reads and writes text as UTF-8, Lean's default ``encoding``; another one is refused by name."""
    if encoding is not None and str(getattr(encoding, "web_name", encoding)).lower().replace("-", "") != "utf8":
        raise NotSupportedByLocalRuntime(f"object_store.{method} with encoding {encoding!r}")
