"""The machine-readable result every benchmark writes with ``--json-out``: named figures, each a
value against a baseline measured in the same run, with the target it is judged by.

``met`` is judged on the ratio only (never on an absolute wall-clock time: the machines this runs
on differ and are shared); an absolute target from the issue is kept in ``note``, reported but not
judged. ``judged`` is false for a size-sweep point below the size a target is stated for (``met``
is then true).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str,
    baseline_value: float,
    ratio: float,
    target: str,
    met: bool,
    ratio_is: str = "value / baseline",
    judged: bool = True,
    note: str | None = None,
) -> dict[str, Any]:
    """One figure; ``ratio_is`` says which way the ratio is taken (e.g. a speedup is baseline / value)."""
    return {
        "name": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 4),
        "ratio": round(ratio, 3),
        "ratio_is": ratio_is,
        "target": target,
        "met": bool(met) if judged else True,
        "judged": judged,
        "note": note,
    }


def emit(json_out: str | None, *, figures: list[dict[str, Any]], sizes: dict[str, Any], **extra: Any) -> None:
    """Write the result (atomically) when ``--json-out`` was given."""
    if not json_out:
        return
    path = Path(json_out)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"figures": figures, "sizes": sizes, **extra}, indent=2), encoding="utf-8")
    os.replace(tmp, path)
