"""Shared building blocks of the file contracts: frozen strict models and validated scalars."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

# Lean tickers: an upper-case letter, then letters, digits, '.' or '-' (BRK.B), at most 12 chars.
# The pattern also keeps symbols safe as file-name parts (no '/', '..', spaces or unicode).
SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,11}$"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
# Run keys and run ids become folder and file-name parts, so no separators or dots first.
RUN_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


class FrozenModel(BaseModel):
    """Immutable, strict about unknown fields, and never accepting NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=False)


def _normalise_symbol(value: object) -> object:
    if isinstance(value, str):
        return value.strip().upper()
    return value


def _check_symbol(value: str) -> str:
    if not _SYMBOL_RE.match(value):
        raise ValueError(f"symbol {value!r} is not a ticker (expected {SYMBOL_PATTERN})")
    return value


def _check_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


Symbol = Annotated[str, BeforeValidator(_normalise_symbol), AfterValidator(_check_symbol)]
FiniteFloat = Annotated[float, AfterValidator(_check_finite)]


def check_run_key(value: object, what: str = "run key") -> str:
    """A run key or run id that is safe as a single path component, else ArtifactPathError."""
    from include.errors import ArtifactPathError

    if not isinstance(value, str) or not re.match(RUN_KEY_PATTERN, value) or ".." in value:
        raise ArtifactPathError(f"{what} {value!r} is not a safe path component (expected {RUN_KEY_PATTERN})")
    return value
