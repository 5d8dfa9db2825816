"""Trigger-form fields generated from the contracts' committed JSON Schemas.

The DAG processor builds the form on every parse of a DAG file, so this reads the schema that
``include.contracts.export_schemas`` generated from the pydantic model (a test keeps the committed
file equal to the model's schema) instead of building the models: standard library only.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).with_name("schemas")


@cache
def _committed_schema(stem: str) -> dict[str, Any]:
    """The one committed ``<stem>.v<N>.schema.json``."""
    (path,) = SCHEMA_DIR.glob(f"{stem}.v*.schema.json")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def execution_params_form() -> dict[str, dict[str, Any]]:
    """One JSON Schema per execution param (default, type, bounds, title, description), in the
    contract's field order; a nested model (``risk_overrides``) is a free JSON object in the form.

    The DAG factory wraps each in an Airflow ``Param``; the pydantic model validates again when
    the file is written, so the form can never accept what the writer refuses.
    """
    schema = _committed_schema("execution_params")
    form: dict[str, dict[str, Any]] = {}
    for name in schema["x-field-order"]:
        if name == "schema_version":
            continue
        prop = schema["properties"][name]
        field = copy.deepcopy(prop)
        if "$ref" in field:
            field = {"type": "object", "default": {}, "title": field.get("title", name)}
            if "description" in prop:
                field["description"] = prop["description"]
        form[name] = field
    return form
