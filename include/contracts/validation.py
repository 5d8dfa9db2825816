"""Turn pydantic's ValidationError into our named errors, naming each field and value."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "<root>"
        value: Any = err.get("input")
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        problems.append(f"{where}={shown}: {err['msg']}")
    return problems


def load_json_model(path: str | os.PathLike[str], model: type[M], error: Callable[[list[str]], Exception]) -> M:
    """Read a JSON file and validate it as ``model``; ``error`` names what was wrong and where."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error([f"{path}: cannot read JSON ({exc})"]) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error([f"{path}: {p}" for p in describe_validation_error(exc)]) from None
