"""The consistency check on a real local-engine run whose events file was tampered with before
ingestion (issue #18, "the check fails what it must"): a late fill after "filled" fails the task
under the default policy, naming the order; the untouched run passes."""

from __future__ import annotations

import json

import pytest

from include.contracts.report import ConsistencyReport
from include.errors import ConsistencyCheckFailed
from tests.faults.helpers import check, ingest, prepare_run, run_engine


def test_a_late_fill_after_filled_fails_the_check_of_a_real_run(lean_env: dict[str, str]) -> None:
    run = prepare_run()
    run_engine(run)
    (path,) = run.order_event_files()
    events = json.loads(path.read_bytes())
    filled = next(e for e in events if e["status"] == "filled")
    late = {
        **filled,
        "id": f"{filled['algorithmId']}-{filled['orderId']}-99",
        "orderEventId": 99,
        "fillQuantity": 1.0 if filled["fillQuantity"] > 0 else -1.0,
        "orderFeeAmount": round(1e-4 * filled["fillPrice"], 8),
    }
    path.write_text(json.dumps([*events, late]), encoding="utf-8")
    ingest(run)
    with pytest.raises(ConsistencyCheckFailed):
        check(run)
    report = ConsistencyReport.model_validate_json(run.report_json_path.read_text(encoding="utf-8"))
    failed = {(c.check, c.symbol): c.message for c in report.checks if c.verdict == "fail"}
    symbol, order = filled["symbolValue"], filled["orderId"]
    assert f"order {order} ({symbol}," in failed[("order_sequence", symbol)]
    assert "event 99 filled after the order was filled" in failed[("order_sequence", symbol)]
    assert f"order {order} ({symbol}," in failed[("overfill", symbol)]


def test_the_untouched_real_run_passes(lean_env: dict[str, str]) -> None:
    run = prepare_run()
    run_engine(run)
    ingest(run)
    assert check(run)["verdict"] in ("pass", "warn")
    report = ConsistencyReport.model_validate_json(run.report_json_path.read_text(encoding="utf-8"))
    assert {c.verdict for c in report.checks if c.check in ("order_sequence", "overfill", "unexpected_date")} == {
        "pass"
    }
