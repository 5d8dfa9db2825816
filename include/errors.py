"""Named errors of lean-airflow. Each says what was wrong and where."""

from __future__ import annotations


class LeanAirflowError(Exception):
    """Base class of every error this package raises on purpose."""


class ContractValidationError(LeanAirflowError, ValueError):
    """A file or payload does not satisfy its contract (snapshot, intent, params, events...)."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.what = what
        self.problems = list(problems)
        super().__init__(f"invalid {what}: " + "; ".join(self.problems))


class ExecutionParamsError(ContractValidationError):
    """Execution params are invalid; names the field and the value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("execution params", problems)


class OrderIntentError(ContractValidationError):
    """The order intent (or the weights it is built from) is invalid."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("order intent", problems)


class SnapshotError(ContractValidationError):
    """A decision snapshot is invalid."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("decision snapshot", problems)


class LeanConfigError(ContractValidationError):
    """A Lean launcher config is missing keys or has bad values."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("lean launcher config", problems)


class ArtifactPathError(LeanAirflowError, ValueError):
    """A path or path component escapes the artifact root or is malformed."""
