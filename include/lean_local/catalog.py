"""The catalog of Lean's public Python names: every class of every ``QuantConnect``/``System`` namespace, and the
namespaces Lean's ``AlgorithmImports`` star-imports (in its order).

The local runtime implements a subset of these names. It gives every other one as a stand-in that refuses by
name when used (``unsupported.py``), so an algorithm that uses a Lean name outside the subset stops with
``not supported by the local runtime: NAME`` wherever it uses it, instead of a bare ``NameError``.

The catalog is generated from the pinned ``quantconnect-stubs`` package (a test tool, not installed in the
production image) and stored in ``lean_names.json`` beside this module; ``python -m include.lean_local.catalog``
rewrites it and a test fails when it differs from the stubs.
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("lean_names.json")
ROOTS = ("QuantConnect", "System")
_CLASS = re.compile(r"^class ([A-Za-z]\w*)", re.MULTILINE)
_STAR = re.compile(r"^from ([\w.]+) import \*", re.MULTILINE)


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """``{"algorithm_imports": [namespace, ...], "namespaces": {namespace: [class name, ...]}}``."""
    data: dict[str, Any] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return data


def namespace_names(namespace: str) -> list[str]:
    names: list[str] = catalog()["namespaces"].get(namespace, [])
    return names


def is_namespace(name: str) -> bool:
    """Whether ``name`` is a namespace (or a parent of one) of the catalog, e.g. ``QuantConnect.Data``."""
    spaces = catalog()["namespaces"]
    prefix = name + "."
    return name in spaces or any(space.startswith(prefix) for space in spaces)


@lru_cache(maxsize=1)
def algorithm_imports_names() -> dict[str, str]:
    """Each name ``from AlgorithmImports import *`` gives in Lean, with its namespace (the last import wins)."""
    out: dict[str, str] = {}
    for namespace in catalog()["algorithm_imports"]:
        for name in namespace_names(namespace):
            out[name] = namespace
    return out


def generate(site_packages: Path) -> dict[str, Any]:
    """The catalog, read from ``quantconnect-stubs`` installed under ``site_packages``."""
    namespaces: dict[str, list[str]] = {}
    for root in ROOTS:
        for stub in sorted((site_packages / root).rglob("__init__.pyi")):
            names = sorted(set(_CLASS.findall(stub.read_text(encoding="utf-8"))))
            if names:
                namespaces[stub.parent.relative_to(site_packages).as_posix().replace("/", ".")] = names
    imports = _STAR.findall((site_packages / "AlgorithmImports" / "__init__.pyi").read_text(encoding="utf-8"))
    return {
        "algorithm_imports": [space for space in imports if space in namespaces],
        "namespaces": dict(sorted(namespaces.items())),
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=0, sort_keys=True) + "\n"


def _site_packages() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["purelib"])


if __name__ == "__main__":
    CATALOG_FILE.write_text(dumps(generate(_site_packages())), encoding="utf-8")
    sys.stdout.write(f"wrote {CATALOG_FILE}\n")
