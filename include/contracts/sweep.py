"""The sweep's files: its plan (the form and the points it expands into) and its comparison.

A sweep (DAG ``lean_backtest_sweep``, ``include.sweep``) runs one complete chain per point; its plan and
its comparison live under ``<artifact store>/lean_backtest_sweep/_sweeps/<sweep hash>/``. Both models are
frozen and refuse unknown fields, like every file contract; each file carries its version.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from pydantic import Field, JsonValue, model_validator

from include.contracts._base import RUN_KEY_PATTERN, FrozenModel

SWEEP_SCHEMA_VERSION: Final = 1
# The sweep's id in paths and URLs: the first 8 hex digits of the sha256 of its canonical plan.
SWEEP_HASH_PATTERN: Final = r"^[0-9a-f]{8}$"
DEFAULT_RANK_BY: Final = "Sharpe Ratio"


class WalkForward(FrozenModel):
    """Walk-forward windows: ``window_sessions`` trading sessions each, a new window every ``step_sessions``."""

    window_sessions: int = Field(ge=1, le=10_000, strict=True)
    step_sessions: int = Field(ge=1, le=10_000, strict=True)


class SweepForm(FrozenModel):
    """What the sweep's trigger form asks for, besides the strategy and execution fields every run has."""

    start_date: dt.date
    end_date: dt.date
    # name -> the values to try; names are execution params, top_n or lookback_days (include.sweep).
    grid: dict[str, tuple[JsonValue, ...]] = Field(default_factory=dict)
    walk_forward: WalkForward | None = None
    rank_by: str = Field(default=DEFAULT_RANK_BY, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _range_in_order(self) -> SweepForm:
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class SweepPoint(FrozenModel):
    """One point: its own run (run key), its dates (a walk-forward window, else the sweep's range) and the
    form values it overrides."""

    index: int = Field(ge=0)
    run_key: str = Field(pattern=RUN_KEY_PATTERN)
    start_date: dt.date
    end_date: dt.date
    overrides: dict[str, JsonValue] = Field(default_factory=dict)


class SweepPlan(FrozenModel):
    """``plan.json``: the form, the values shared by every point (``base``) and the points, in order."""

    schema_version: Literal[1] = SWEEP_SCHEMA_VERSION
    sweep_hash: str = Field(pattern=SWEEP_HASH_PATTERN)
    dag_id: str = Field(min_length=1, max_length=250)
    form: SweepForm
    base: dict[str, JsonValue] = Field(default_factory=dict)
    points: tuple[SweepPoint, ...] = Field(min_length=1)


PointStatus = Literal["ok", "failed"]


class ComparisonRow(FrozenModel):
    """One point in the comparison: its Lean statistics as Lean printed them, or why it has none."""

    index: int = Field(ge=0)
    run_key: str = Field(pattern=RUN_KEY_PATTERN)
    start_date: dt.date
    end_date: dt.date
    overrides: dict[str, JsonValue] = Field(default_factory=dict)
    status: PointStatus
    verdict: str | None = None  # the consistency report's, when the point has a current one
    failed_task: str | None = None  # the first task of the point's chain that did not succeed
    problem: str | None = None
    statistics: dict[str, str] = Field(default_factory=dict)
    rank_value: float | None = None  # the ranking statistic as a number (None: failed or not printed)
    rank: int | None = Field(default=None, ge=1)


class SweepComparison(FrozenModel):
    """``comparison.json``: every point (failed ones marked, never dropped), ranked by ``rank_by``."""

    schema_version: Literal[1] = SWEEP_SCHEMA_VERSION
    sweep_hash: str = Field(pattern=SWEEP_HASH_PATTERN)
    dag_id: str = Field(min_length=1, max_length=250)
    start_date: dt.date
    end_date: dt.date
    rank_by: str = Field(min_length=1, max_length=100)
    higher_is_better: bool
    grid_names: tuple[str, ...] = ()
    rows: tuple[ComparisonRow, ...]
