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

import ast
import importlib
import inspect
import json
import pkgutil
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


def member_shapes(lean_class: str) -> dict[str, list[Any] | None] | None:
    """The public members of Lean's class ``lean_class`` (with its base classes'), for the classes the runtime
    implements: each method's call shapes ``[most positional arguments, [keyword names]]`` over its overloads,
    None for a property or field. None when the catalog does not hold the class."""
    members: dict[str, list[Any] | None] | None = catalog().get("members", {}).get(lean_class)
    return members


def is_lean_member(lean_class: str, member: str) -> bool:
    members = member_shapes(lean_class)
    return members is not None and member in members


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
    members = _members(site_packages, _runtime_class_names())
    imports = _STAR.findall((site_packages / "AlgorithmImports" / "__init__.pyi").read_text(encoding="utf-8"))
    return {
        "algorithm_imports": [space for space in imports if space in namespaces],
        "namespaces": dict(sorted(namespaces.items())),
        "members": members,
    }


def runtime_classes() -> list[type]:
    """The classes the runtime's modules define (among them, those of Lean's classes it implements)."""
    import include.lean_local as package

    classes: list[type] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in ("__main__", "catalog"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        classes.extend(v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__)
    return classes


def _runtime_class_names() -> set[str]:
    return {cls.__name__ for cls in runtime_classes()}


def _shape(function: ast.FunctionDef) -> list[Any]:
    args = function.args
    positional = [a.arg for a in args.posonlyargs + args.args][1:]  # without self
    keywords = [a.arg for a in args.args[1:] + args.kwonlyargs]
    most = 999 if args.vararg is not None else len(positional)
    return [most, sorted(set(keywords)) + (["**"] if args.kwarg is not None else [])]


def _merge(shapes: list[list[Any]]) -> list[Any]:
    return [max(s[0] for s in shapes), sorted({k for s in shapes for k in s[1]})]


def _members(site_packages: Path, wanted: set[str]) -> dict[str, dict[str, list[Any] | None]]:
    """Each wanted Lean class's public members with their call shapes (``member_shapes``), read from the stubs;
    a property whose type is a callable helper class (``QCAlgorithm.history``) takes that class's shapes."""
    classes: dict[str, list[ast.ClassDef]] = {}
    for root in ROOTS:
        for stub in sorted((site_packages / root).rglob("__init__.pyi")):
            tree = ast.parse(stub.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    classes.setdefault(node.name, []).append(node)

    def own(name: str, seen: set[str]) -> dict[str, list[list[Any]]]:
        shapes: dict[str, list[list[Any]]] = {}
        if name in seen:
            return shapes
        seen.add(name)
        for node in classes.get(name, []):
            for base in node.bases:
                base_name = ast.unparse(base).split("[")[0].rsplit(".", 1)[-1]
                for member, found in own(base_name, seen).items():
                    shapes.setdefault(member, []).extend(found)
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    decorators = {ast.unparse(d) for d in item.decorator_list}
                    found = shapes.setdefault(item.name, [])
                    if "property" in decorators and item.returns is not None:
                        helper = ast.unparse(item.returns).split("[")[0].rsplit(".", 1)[-1]
                        calls = own(helper, set()).get("__call__", []) if helper.startswith("_") else []
                        found.extend(calls or [[-1, []]])
                    elif not any(d.endswith(".setter") for d in decorators):
                        found.append(_shape(item))
                elif isinstance(item, ast.FunctionDef) and item.name == "__call__":
                    shapes.setdefault("__call__", []).append(_shape(item))
                elif isinstance(item, (ast.AnnAssign, ast.Assign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    for target in targets:
                        if isinstance(target, ast.Name) and not target.id.startswith("_"):
                            shapes.setdefault(target.id, []).append([-1, []])
        return shapes

    out: dict[str, dict[str, list[Any] | None]] = {}
    for name in sorted(wanted & set(classes)):
        members = {m: s for m, s in own(name, set()).items() if m != "__call__"}
        out[name] = {m: (None if any(x[0] < 0 for x in s) else _merge(s)) for m, s in sorted(members.items()) if s}
    return out


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=0, sort_keys=True) + "\n"


def _site_packages() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["purelib"])


if __name__ == "__main__":
    CATALOG_FILE.write_text(dumps(generate(_site_packages())), encoding="utf-8")
    sys.stdout.write(f"wrote {CATALOG_FILE}\n")
