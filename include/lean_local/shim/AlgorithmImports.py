"""``from AlgorithmImports import *`` for the local runtime: Lean's names (``include.lean_local.shim_exports``);
those outside the runtime's subset refuse by name when used."""

from include.lean_local.shim_exports import exports as _exports

globals().update(_exports())
__all__ = [name for name in _exports() if not name.startswith("_")]
