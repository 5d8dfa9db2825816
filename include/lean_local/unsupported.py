"""Lean names and modules outside the local runtime's subset: refused by name where they are used.

``UnsupportedName`` stands in for a Lean name the runtime does not implement. Naming it is harmless (an
annotation, a default argument, ``List[ETFConstituentData]``); calling it, reading an attribute of it or
subclassing it raises ``NotSupportedByLocalRuntime`` naming it, in whichever file uses it.

``LeanImportFinder`` answers the imports of Lean's Python modules: the .NET namespaces (``QuantConnect.*``,
``System.*``, ``clr``) give the runtime's names and stand-ins, and Lean's framework modules (``Alphas.*``,
``Portfolio.*``, ``Execution.*``, ``Risk.*``, ``Selection.*``, ``Orders.*``) give the runtime's class of the
same name, or refuse the import by name when the runtime does not implement it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
import traceback
import types
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from include.lean_local import catalog
from include.lean_local.errors import NotSupportedByLocalRuntime

NET_ROOTS = frozenset({"QuantConnect", "System", "clr", "Newtonsoft"})
FRAMEWORK_ROOTS = frozenset({"Alphas", "Portfolio", "Execution", "Risk", "Selection", "Orders"})
# Packages of Lean's Python environment (its foundation image) an algorithm may import; the local runtime's
# environment does not provide them.
FOUNDATION_PACKAGES = frozenset(
    {
        "arch",
        "cvxopt",
        "cvxpy",
        "flask",
        "gym",
        "hmmlearn",
        "keras",
        "lightgbm",
        "nltk",
        "pytz",
        "requests",
        "scipy",
        "sklearn",
        "statsmodels",
        "talib",
        "tensorflow",
        "torch",
        "xgboost",
    }
)


def refuse(name: str) -> NoReturn:
    raise NotSupportedByLocalRuntime(name)


class UnsupportedName:
    """A Lean name the local runtime does not implement (see the module docstring)."""

    __slots__ = ("_lean_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_lean_name", name)

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(self._lean_name)

    def __getattr__(self, attribute: str) -> NoReturn:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        refuse(f"{self._lean_name}.{attribute}")

    def __setattr__(self, attribute: str, value: Any) -> NoReturn:
        refuse(f"{self._lean_name}.{attribute}")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> NoReturn:
        refuse(self._lean_name)  # subclassing it

    def __getitem__(self, item: Any) -> NoReturn:
        refuse(self._lean_name)  # a generic: RollingWindow[float]

    def __iter__(self) -> NoReturn:
        refuse(self._lean_name)

    def __instancecheck__(self, instance: Any) -> bool:
        return False  # no object of the runtime is one

    def __subclasscheck__(self, subclass: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{self._lean_name}: not supported by the local runtime>"


def is_unsupported(value: Any) -> bool:
    return type(value) is UnsupportedName


class _LeanModule(types.ModuleType):
    """A module of Lean's: its names come from ``resolve``; an unknown one is refused by name."""

    def __init__(self, name: str, resolve: Callable[[str], Any], names: Sequence[str]) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # a package: its sub-namespaces import
        self.__all__ = list(names)
        self._resolve = resolve

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self._resolve(name)
        setattr(self, name, value)
        return value


def _exports() -> dict[str, Any]:
    """What ``from AlgorithmImports import *`` gives: the runtime's names, stand-ins for the others."""
    from include.lean_local.shim_exports import exports

    return exports()


class LeanImportFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of Lean's modules (see the module docstring); installed first on ``sys.meta_path`` for a run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        root = fullname.split(".", 1)[0]
        if root in FRAMEWORK_ROOTS and fullname == root:
            # a user's own package of that name wins over Lean's framework folder
            if importlib.machinery.PathFinder.find_spec(fullname, path) is not None:
                return None
        elif root not in NET_ROOTS and root not in FRAMEWORK_ROOTS:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        name = spec.name
        if name == "clr":
            return self._clr()
        root = name.split(".", 1)[0]
        if root in FRAMEWORK_ROOTS:
            return self._framework_module(name)
        if root == "Newtonsoft" or not catalog.is_namespace(name):
            refuse(name)
        names = catalog.namespace_names(name)
        known = set(names)

        def resolve(attribute: str) -> Any:
            if attribute in known:
                return _exports().get(attribute) or UnsupportedName(f"{name}.{attribute}")
            refuse(f"{name}.{attribute}")

        return _LeanModule(name, resolve, names)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__lean_local__ = True  # type: ignore[attr-defined]

    @staticmethod
    def _clr() -> types.ModuleType:
        def resolve(attribute: str) -> Any:
            if attribute == "AddReference":
                return _add_reference
            refuse(f"clr.{attribute}")

        return _LeanModule("clr", resolve, ["AddReference"])

    @staticmethod
    def _framework_module(name: str) -> types.ModuleType:
        """``Portfolio`` (a folder) or ``Portfolio.EqualWeightingPortfolioConstructionModel`` (Lean's file of
        that class, which star-imports AlgorithmImports): the runtime's class, or the import is refused."""
        exports = _exports()
        leaf = name.rsplit(".", 1)[-1]
        is_folder = name.startswith("Orders.") and name.count(".") == 1  # Orders.Slippage: a folder
        if "." in name and not _implemented(exports.get(leaf)) and not is_folder:
            refuse(name)

        def resolve(attribute: str) -> Any:
            value = exports.get(attribute)
            if value is None:
                refuse(f"{name}.{attribute}")
            return value

        return _LeanModule(name, resolve, list(exports) if "." in name else [])


def _implemented(value: Any) -> bool:
    return value is not None and not isinstance(value, UnsupportedName)


def _add_reference(name: str) -> None:
    """``clr.AddReference``: loads a .NET assembly in Lean; nothing to load here."""


_FINDER = LeanImportFinder()


def install() -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Remove the finder and forget the modules it made (a later in-process run starts clean)."""
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    # A copy: getattr on a lazy module (a module __getattr__) may import, which changes sys.modules.
    for name in [n for n, m in list(sys.modules.items()) if getattr(m, "__lean_local__", False)]:
        del sys.modules[name]


RUNTIME_DIR = Path(__file__).resolve().parent
_CALL_ERROR = re.compile(
    r"^(?P<function>[\w.]+)\(\) (?:takes (?:from \d+ to )?\d+ positional arguments? "
    r"but (?P<given>\d+) (?:were|was) given"
    r"|got an unexpected keyword argument '(?P<keyword>\w+)')"
)


def lean_class_of(value: Any) -> str | None:
    """The Lean class the runtime's object (or class) ``value`` stands for: the first class of its MRO the
    runtime defines that is a Lean class of the catalog (a user's QCAlgorithm subclass is a QCAlgorithm)."""
    cls = value if isinstance(value, type) else type(value)
    for klass in cls.__mro__:
        if klass.__module__.startswith("include.lean_local") and catalog.member_shapes(klass.__name__) is not None:
            return klass.__name__
    return None


def missing_attribute(owner: Any, name: str, lean_class: str | None = None) -> AttributeError:
    """What reading the missing attribute ``name`` of the runtime's object ``owner`` raises: the refusal of
    ``LeanClass.name`` when Lean's class has that member, else Python's own AttributeError (the user's error)."""
    lean = lean_class or lean_class_of(owner)
    if lean is not None and catalog.is_lean_member(lean, name):
        return NotSupportedByLocalRuntime(f"{lean}.{name}")
    return AttributeError(f"{type(owner).__name__!r} object has no attribute {name!r}", name=name, obj=owner)


@lru_cache(maxsize=1)
def _runtime_methods() -> dict[str, tuple[str, str, int]]:
    """``function.__qualname__`` -> (Lean class, member, arguments Python counts besides the caller's: 1 for
    ``self``/``cls``) of each method of the runtime's Lean classes (their mixins' too)."""
    out: dict[str, tuple[str, str, int]] = {}
    for cls in catalog.runtime_classes():
        lean = cls.__name__
        if catalog.member_shapes(lean) is None:
            continue
        for klass in cls.__mro__:
            if not klass.__module__.startswith("include.lean_local"):
                continue
            for member, value in vars(klass).items():
                bound = 0 if isinstance(value, staticmethod) else 1
                function = getattr(value, "__func__", value)
                qualname = getattr(function, "__qualname__", None)
                if callable(function) and qualname and not member.startswith("_"):
                    out.setdefault(qualname, (lean, member, bound))
    return out


def call_shape_refusal(exc: TypeError) -> str | None:
    """The refusal of a call to a Lean method the runtime implements with a shape (positional count, keyword)
    its own signature lacks but one of Lean's overloads has; None for any other TypeError (the user's error,
    e.g. a shape Lean's overloads lack too, or a TypeError raised inside the runtime)."""
    match = _CALL_ERROR.match(str(exc))
    frames = traceback.extract_tb(exc.__traceback__)
    if match is None or not frames or RUNTIME_DIR in Path(frames[-1].filename).resolve().parents:
        return None  # a binding error is raised in the caller's frame: here, not the algorithm's call
    found = _runtime_methods().get(match["function"])
    if found is None:
        return None
    lean, member, bound = found
    shapes = catalog.member_shapes(lean) or {}
    shape = shapes.get(member)
    if shape is None:
        return None
    most, keywords = shape
    if match["keyword"]:
        if match["keyword"] in keywords or "**" in keywords:
            return f"{lean}.{member} (a call with the keyword argument {match['keyword']})"
        return None
    given = int(match["given"]) - bound
    if given <= most:
        return f"{lean}.{member} (a call with {given} positional arguments)"
    return None


def refusal_name(exc: BaseException) -> str | None:
    """The Lean name an error refuses: a NotSupportedByLocalRuntime, a NameError on a Lean name the algorithm
    did not import, an AttributeError on a member of Lean's class the runtime's object lacks, a TypeError of a
    call shape Lean's method has and the runtime's lacks, or an import of a package of Lean's Python
    environment that is not installed here."""
    if isinstance(exc, NotSupportedByLocalRuntime):
        return exc.name
    if isinstance(exc, NameError) and exc.name and exc.name in catalog.algorithm_imports_names():
        return exc.name
    if isinstance(exc, AttributeError) and exc.name and getattr(exc, "obj", None) is not None:
        refused = missing_attribute(exc.obj, exc.name)
        return refused.name if isinstance(refused, NotSupportedByLocalRuntime) else None
    if isinstance(exc, TypeError):
        return call_shape_refusal(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in FOUNDATION_PACKAGES:
        return f"import {exc.name} (a package of Lean's Python environment, not installed here)"
    return None
