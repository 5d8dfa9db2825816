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


# Snapshots, intents and params are small (an intent of 10 years x 500 symbols is ~10 MB). A
# larger file is a mistake or an attack: refuse it before reading it into memory.
MAX_CONTRACT_FILE_BYTES = 64 << 20


def check_file_size(
    path: str | os.PathLike[str], error: Callable[[list[str]], Exception], limit: int = MAX_CONTRACT_FILE_BYTES
) -> int:
    """The file's size; ``error`` naming the file when it exceeds ``limit`` (checked before reading)."""
    size = os.stat(path).st_size
    if size > limit:
        raise error([f"{path}: file is {size} bytes, over the {limit}-byte limit for a contract"])
    return size


def read_json_file(path: str | os.PathLike[str], error: Callable[[list[str]], Exception]) -> Any:
    """The decoded JSON of a contract file; ``error`` for a missing, oversized or unparsable file."""
    try:
        check_file_size(path, error)
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error([f"{path}: cannot read JSON ({exc})"]) from None


def load_json_model(path: str | os.PathLike[str], model: type[M], error: Callable[[list[str]], Exception]) -> M:
    """Read a JSON file and validate it as ``model``; ``error`` names what was wrong and where."""
    raw = read_json_file(path, error)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error([f"{path}: {p}" for p in describe_validation_error(exc)]) from None
