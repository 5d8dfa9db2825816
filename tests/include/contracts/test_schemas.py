"""The committed JSON Schemas match the models, and the models are frozen and strict."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from include.contracts.export_schemas import CONTRACTS, OPEN_CONTRACTS, SCHEMA_DIR, render_schemas
from include.contracts.params import ExecutionParams
from include.contracts.snapshot import DecisionSnapshot, WeightItem


def test_committed_schemas_are_current() -> None:
    rendered = render_schemas()
    assert len(rendered) == len(CONTRACTS)
    for name, text in rendered.items():
        committed = SCHEMA_DIR / name
        assert committed.exists(), f"{name} is not committed: run python -m include.contracts.export_schemas"
        assert committed.read_text(encoding="utf-8") == text, f"{name} is stale: re-export the schemas"


def test_every_schema_is_versioned_and_closed() -> None:
    import json
    import re

    versions: dict[str, int] = {}
    for name, text in render_schemas().items():
        schema = json.loads(text)
        found = re.fullmatch(r"([a-z_]+)\.v(\d+)\.schema\.json", name)
        assert found is not None, name
        stem, version = found[1], int(found[2])
        versions[stem] = version
        assert schema["$id"] == f"lean-airflow/{name}"
        if stem in OPEN_CONTRACTS:
            continue
        assert schema["properties"]["schema_version"]["const"] == version, name
        assert schema.get("additionalProperties") is False, name
    assert set(versions) == set(CONTRACTS)
    # Version 2 of the order intent names the run "run_key" (version 1 said "run_id").
    assert versions["order_intent"] == 2
    assert not (SCHEMA_DIR / "order_intent.v1.schema.json").exists()


def test_no_stale_schema_is_committed() -> None:
    committed = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert committed == set(render_schemas()), committed ^ set(render_schemas())


def test_models_are_frozen() -> None:
    params = ExecutionParams()
    with pytest.raises(ValidationError):
        params.lot_size = 5  # type: ignore[misc]


def test_snapshot_validation() -> None:
    snap = DecisionSnapshot(as_of=dt.date(2024, 1, 2), source="s", items=(WeightItem(symbol=" spy", weight=0.5),))
    assert snap.items[0].symbol == "SPY"
    with pytest.raises(ValidationError, match="duplicate symbol"):
        DecisionSnapshot(
            as_of=dt.date(2024, 1, 2),
            source="s",
            items=(WeightItem(symbol="SPY", weight=0.5), WeightItem(symbol="spy", weight=0.1)),
        )
    with pytest.raises(ValidationError, match="source"):
        DecisionSnapshot(as_of=dt.date(2024, 1, 2), source="", items=())
