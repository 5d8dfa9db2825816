"""What ``from AlgorithmImports import *`` gives an algorithm, in Lean's order (Lean's ``AlgorithmImports.py``):
every name of the .NET namespaces it star-imports (the runtime's implementation, or a stand-in that refuses by
name when used), then ``np``/``pd`` (imported on first use), ``date``/``time``/``datetime``/``timedelta``,
``typing``'s names, ``math``, ``json``, Python's ``Exception`` and the ``QCAlgorithmFramework`` aliases."""

from __future__ import annotations

import importlib
import json
import math
import types
import typing
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from include.lean_local import catalog
from include.lean_local.unsupported import UnsupportedName


class _ModuleOnFirstUse(types.ModuleType):
    """Lean's AlgorithmImports gives ``np`` and ``pd``; importing pandas costs about 0.3 s, which an algorithm
    that never uses it should not pay. This stand-in imports the module on its first attribute access."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(vars(module))
        return getattr(module, name)


def implemented() -> dict[str, Any]:
    """The Lean names the local runtime implements, by name."""
    from include.lean_local import lean_api

    return lean_api.names()


@lru_cache(maxsize=1)
def exports() -> dict[str, Any]:
    names: dict[str, Any] = {name: UnsupportedName(name) for name in catalog.algorithm_imports_names()}
    names.update(implemented())
    names["np"] = _ModuleOnFirstUse("numpy")
    names["pd"] = _ModuleOnFirstUse("pandas")
    names.update(date=date, time=time, datetime=datetime, timedelta=timedelta)
    names.update({name: getattr(typing, name) for name in typing.__all__})
    names.update(math=math, json=json, Exception=Exception)
    names["QCAlgorithmFramework"] = names["QCAlgorithmFrameworkBridge"] = names["QCAlgorithm"]
    return names
