"""The machine-readable result every benchmark writes with ``--json-out``: named figures, each a
value against a baseline measured in the same run, with the target it is judged by."""

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
) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 4),
        "ratio": round(ratio, 3),
        "target": target,
        "met": bool(met),
    }


def emit(json_out: str | None, *, figures: list[dict[str, Any]], sizes: dict[str, Any], **extra: Any) -> None:
    """Write the result (atomically) when ``--json-out`` was given."""
    if not json_out:
        return
    path = Path(json_out)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"figures": figures, "sizes": sizes, **extra}, indent=2), encoding="utf-8")
    os.replace(tmp, path)
