"""Write the committed JSON Schemas of every file contract: ``python -m include.contracts.export_schemas``.

A test regenerates them and fails when the committed copies are stale.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SCHEMA_DIR = Path(__file__).with_name("schemas")

# file stem -> "module:Model"; one model per file format.
CONTRACTS: dict[str, str] = {
    "decision_snapshot": "include.contracts.snapshot:DecisionSnapshot",
    "order_intent": "include.contracts.intent:OrderIntent",
    "execution_params": "include.contracts.params:ExecutionParams",
    "lean_order_event": "include.contracts.lean_events:LeanOrderEvent",
    "consistency_report": "include.contracts.report:ConsistencyReport",
    "parity_report": "include.contracts.report:ParityReport",
    "run_manifest": "include.contracts.manifest:RunManifest",
    "sweep_plan": "include.contracts.sweep:SweepPlan",
    "sweep_comparison": "include.contracts.sweep:SweepComparison",
}
# Lean owns the order-event format: unknown fields a newer Lean adds are kept, not refused.
OPEN_CONTRACTS = frozenset({"lean_order_event"})


def _model(ref: str) -> type[BaseModel]:
    module_name, _, attr = ref.partition(":")
    model = getattr(importlib.import_module(module_name), attr)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def render_schemas() -> dict[str, str]:
    """file name -> JSON text of each contract's schema."""
    rendered: dict[str, str] = {}
    for stem, ref in CONTRACTS.items():
        model = _model(ref)
        schema: dict[str, Any] = model.model_json_schema(mode="validation")
        version = model.model_fields["schema_version"].default
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"lean-airflow/{stem}.v{version}.schema.json"
        rendered[f"{stem}.v{version}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def main() -> int:
    from include.atomic_io import atomic_write_text

    for name, text in render_schemas().items():
        atomic_write_text(SCHEMA_DIR / name, text)
        sys.stdout.write(f"wrote {SCHEMA_DIR.name}/{name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
