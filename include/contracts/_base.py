"""Shared building blocks of the file contracts: frozen strict models and validated scalars."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from include.run_folder import RUN_KEY_PATTERN as RUN_KEY_PATTERN

# Lean tickers: an upper-case letter, then letters, digits, '.' or '-' (BRK.B), at most 12 chars.
# The pattern also keeps symbols safe as file-name parts (no '/', '..', spaces or unicode).
SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,11}$"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


class FrozenModel(BaseModel):
    """Immutable, strict about unknown fields, and never accepting NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=False)


def _normalise_symbol(value: object) -> object:
    if isinstance(value, str):
        return value.strip().upper()
    return value


def _check_symbol(value: str) -> str:
    # fullmatch: "$" alone would accept a trailing newline
    if not _SYMBOL_RE.fullmatch(value):
        raise ValueError(f"symbol {value!r} is not a ticker (expected {SYMBOL_PATTERN})")
    return value


def _check_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def check_no_nul(value: str) -> str:
    """``value`` unless it holds a NUL character, which PostgreSQL text refuses (SQLite would store it)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\x00), which the audit database (PostgreSQL) cannot store")
    return value


Symbol = Annotated[str, BeforeValidator(_normalise_symbol), AfterValidator(_check_symbol)]
# Free text that ends up in the audit database: no NUL character.
Text = Annotated[str, AfterValidator(check_no_nul)]
FiniteFloat = Annotated[float, AfterValidator(_check_finite)]
