"""Named errors of the local runtime."""

from __future__ import annotations

from typing import Any

from include.errors import LeanAirflowError


class LocalRuntimeError(LeanAirflowError):
    """Base class of the errors the local runtime raises on purpose (a LeanAirflowError, so the CLI and the
    operator report them by name like every other named error)."""


class NotSupportedByLocalRuntime(LocalRuntimeError, AttributeError):
    """An algorithm used a Lean API outside the subset the local runtime implements."""

    def __init__(self, name: str) -> None:
        super().__init__(f"not supported by the local runtime: {name}")
        self.name = name  # after AttributeError.__init__, which resets ``name`` to None


class LocalConfigError(LocalRuntimeError, ValueError):
    """The launcher config is unusable: names the key or path that is wrong (exit code 2)."""


class DataFormatError(LocalRuntimeError, ValueError):
    """A Lean data file is malformed: names the file and line."""


class SupportedSubset:
    """Base of Lean objects the runtime implements in part: a member of Lean's class it lacks raises
    NotSupportedByLocalRuntime naming it (``Security.X``), instead of a bare AttributeError; so does any public
    name of a class the catalog does not hold. Another name is Python's AttributeError (the user's error)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        from include.lean_local import catalog
        from include.lean_local.unsupported import missing_attribute

        lean = type(self).__name__
        if catalog.member_shapes(lean) is None:
            raise NotSupportedByLocalRuntime(f"{lean}.{name}")
        raise missing_attribute(self, name, lean)
