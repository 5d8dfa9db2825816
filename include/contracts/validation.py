"""Turn pydantic's ValidationError into our named errors, naming each field and value."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


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
