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

    def contains_key(self, key: str) -> bool:
        return self._path(key).is_file()

    def save(self, key: str, text: str | None = None) -> bool:
        return self.save_bytes(key, ("" if text is None else str(text)).encode("utf-8"))

    def save_string(self, key: str, text: str) -> bool:
        return self.save(key, text)

    def save_bytes(self, key: str, data: bytes | bytearray) -> bool:
        from include.atomic_io import atomic_write_bytes

        atomic_write_bytes(self._path(key), bytes(data))
        return True

    def save_json(self, key: str, obj: Any) -> bool:
        return self.save(key, json.dumps(obj))

    def read(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def read_string(self, key: str) -> str:
        return self.read(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(f"Object store key not found: {key}")
        return path.read_bytes()

    def read_json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if path.is_file():
            path.unlink()
            return True
        return False

    def get_file_path(self, key: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.fspath(path)

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
