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


class LeanOrderEventError(ContractValidationError):
    """A Lean order event (``<id>-order-events.json`` item) breaks the serialization contract."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("lean order event", problems)


class UnknownEnumValueError(LeanOrderEventError):
    """An enum field of a Lean order event (``status``, ``direction``) has a value Lean never writes."""

    def __init__(self, field: str, value: object, allowed: list[str] | tuple[str, ...]) -> None:
        self.field = field
        self.value = value
        self.allowed = tuple(allowed)
        super().__init__([f"{field}={value!r}: unknown value, expected one of {', '.join(self.allowed)}"])


class OrderEventsFileError(LeanAirflowError, ValueError):
    """An order-events file is not a complete JSON array of valid events; names file and byte offset."""

    def __init__(self, path: str, byte_offset: int | None, reason: str) -> None:
        self.path = path
        self.byte_offset = byte_offset
        self.reason = reason
        where = f" at byte offset {byte_offset}" if byte_offset is not None else ""
        super().__init__(f"order-events file {path}{where}: {reason}")


class OrderEventsMissingError(LeanAirflowError, FileNotFoundError):
    """No order-events file although the intent asked for a non-zero target delta."""


class AuditDatabaseError(LeanAirflowError, RuntimeError):
    """The audit database is unreachable, not migrated, or refused a write."""


class RunFolderError(ContractValidationError):
    """A run folder lacks a file the audit needs (intent, params, config, results)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("run folder", problems)


class ConsistencyCheckFailed(LeanAirflowError, AssertionError):
    """The consistency check found hard failures and the policy is ``fail``."""

    def __init__(self, report_path: str | None, failures: list[str]) -> None:
        self.report_path = report_path
        self.failures = list(failures)
        more = f"; ... ({len(self.failures) - 10} more)" if len(failures) > 10 else ""
        shown = "; ".join(self.failures[:10]) + more
        super().__init__(f"consistency check failed ({len(self.failures)} failures, report {report_path}): {shown}")


class LeanRunError(LeanAirflowError, RuntimeError):
    """Lean (Docker or local) exited non-zero; carries the exit code and the log tail."""

    def __init__(self, runtime: str, exit_code: int, log_tail: str) -> None:
        self.runtime = runtime
        self.exit_code = exit_code
        self.log_tail = log_tail
        super().__init__(
            f"Lean ({runtime}) exited with code {exit_code}{_signal_note(exit_code)}. Last log lines:\n{log_tail}"
        )


def _signal_note(exit_code: int) -> str:
    """Names the signal behind an exit code: -N (subprocess) or 128+N (a shell or container's init)."""
    import signal

    number = -exit_code if exit_code < 0 else exit_code - 128 if 128 < exit_code < 160 else None
    if number is None:
        return ""
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f" (killed by signal {number})"
    return f" (killed by signal {name})"


class LeanStoppedError(LeanRunError):
    """Lean was stopped before it finished (the task was killed, timed out or failed): its results
    are partial even when it exited 0, so the task fails and the retry starts a fresh run."""

    def __init__(self, runtime: str, reason: str, exit_code: int, log_tail: str, container: str | None = None) -> None:
        self.reason = reason
        self.container = container
        super().__init__(runtime, exit_code, log_tail)
        kept = f" The container is kept for inspection as {container} (docker logs {container})." if container else ""
        self.args = (
            f"Lean ({runtime}) was stopped before it finished: {reason}. It exited with code {exit_code}"
            f"{_signal_note(exit_code)}; its results are partial and are not used.{kept} "
            f"Last log lines:\n{log_tail}",
        )


class LeanEngineTimeoutError(LeanStoppedError):
    """Lean ran longer than its engine timeout and was stopped (SIGINT, then SIGKILL after the grace)."""


class LeanImageTooOldError(LeanAirflowError, ValueError):
    """The Lean image was built before a Lean change the audit depends on."""

    def __init__(self, image: str, created: str, required_after: str, why: str) -> None:
        self.image = image
        self.created = created
        self.required_after = required_after
        super().__init__(
            f"Lean image {image} was built {created}, before {required_after}: {why}. Pull a newer "
            'quantconnect/lean image and pin its digest in LEAN_IMAGE (README, "Running the full stack").'
        )


class LeanDockerError(LeanAirflowError, RuntimeError):
    """The Docker daemon refused or failed a request of the Lean container's lifecycle."""

    def __init__(self, action: str, detail: str) -> None:
        self.action = action
        super().__init__(f"Docker could not {action}: {detail}")


class RunFolderNotWritableError(LeanAirflowError, PermissionError):
    """A run folder's output cannot be deleted before a re-run (it belongs to another user)."""

    def __init__(self, path: str, owner: str, user: str, folder: str) -> None:
        self.path = path
        self.owner = owner
        self.user = user
        super().__init__(
            f"cannot delete {path} before re-running: its folder belongs to uid:gid {owner}, this process "
            f"runs as {user} (a Lean container from before the ownership hand-back wrote it as root). "
            f"Fix: sudo chown -R {user} {folder} (or restart airflow-init, which gives the artifact root back), "
            "then re-run; Docker runs now hand their files back when Lean exits."
        )


class ParityError(LeanAirflowError, ValueError):
    """Two runs cannot be compared (missing results, no algorithm id, unreadable orders)."""
