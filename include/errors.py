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


class OrderEventConflictError(LeanAirflowError, ValueError):
    """Two versions of one order event (same run attempt, order id and event id) differ; names both."""

    def __init__(self, path: str, order_id: int, order_event_id: int, stored: str, incoming: str) -> None:
        self.path = path
        self.order_id = order_id
        self.order_event_id = order_event_id
        super().__init__(
            f"order-events file {path}: event (orderId={order_id}, orderEventId={order_event_id}) conflicts with "
            f"another version of the same ids: {stored} vs {incoming}. Lean's ids name one event; re-run the "
            "attempt from its inputs (a changed input makes a new attempt) instead of editing its results"
        )


class OrderEventsMissingError(LeanAirflowError, FileNotFoundError):
    """No order-events file although the intent asked for a non-zero target delta."""


class AuditDatabaseError(LeanAirflowError, RuntimeError):
    """The audit database is unreachable, not migrated, or refused a write."""


class _NamedAuditDatabaseError(AuditDatabaseError):
    """An audit DB failure of the environment: names the URL (password hidden) and what to do."""

    problem = "cannot be used"
    fix = "check LEAN_AIRFLOW_DB_URL and the database server"

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"audit database {url} {self.problem}: {detail}. Fix: {self.fix}")


class AuditDatabaseUnavailableError(_NamedAuditDatabaseError):
    """The audit DB cannot be reached or opened: server down, unknown host, no such database, bad URL."""

    problem = "is unavailable"
    fix = (
        "start the database server or correct LEAN_AIRFLOW_DB_URL (host, port, database name, user), "
        "then re-run; `python -m include.cli db upgrade` creates the schema"
    )


class AuditDatabaseReadOnlyError(_NamedAuditDatabaseError):
    """The audit DB refused a write: a read-only file or folder, or a read-only server/transaction."""

    problem = "is read-only"
    fix = (
        "give this user write access to the database (for SQLite both the file and its folder, which holds "
        "the -wal and -journal files), or point LEAN_AIRFLOW_DB_URL at a writable database (not a replica)"
    )


class AuditDatabaseLockedError(_NamedAuditDatabaseError):
    """Another connection holds the lock the audit DB write needs (SQLite ``database is locked``)."""

    problem = "is locked by another connection"
    fix = (
        "wait for the other writer (another ingestion or an open sqlite3 shell) to finish and re-run; "
        "many concurrent writers need PostgreSQL"
    )


class AuditDatabaseFullError(_NamedAuditDatabaseError):
    """The audit DB's disk (or its size limit) is full."""

    problem = "is full"
    fix = "free disk space where the database lives (or raise its size limit), then re-run: nothing was written"


class InputFileError(ContractValidationError):
    """An input file cannot be read at all: missing, not a regular file (a directory, a FIFO, a
    device) or not readable by this user. Names the file, what is wrong and what to do. (A file
    that is read but holds bad content, bad JSON or non-UTF-8 bytes, gets its contract's error.)"""

    def __init__(self, what: str, path: str, reason: str, fix: str) -> None:
        self.path = path
        self.reason = reason
        ContractValidationError.__init__(self, what, [f"{path}: {reason}. Fix: {fix}"])


class SnapshotFileError(InputFileError, SnapshotError):
    """A snapshot or weights file cannot be read (it is still a ``SnapshotError``)."""


class OrderIntentFileError(InputFileError, OrderIntentError):
    """An order-intent file cannot be read (it is still an ``OrderIntentError``)."""


class ExecutionParamsFileError(InputFileError, ExecutionParamsError):
    """An execution-params file cannot be read (it is still an ``ExecutionParamsError``)."""


class WeightsFileLocationError(SnapshotError):
    """A weights file (the file provider's ``weights_file``) lies outside every configured base folder
    (``LEAN_AIRFLOW_WEIGHTS_DIRS``), after resolving ``..`` and symlinks. Names the path, where it
    resolves to and the base folders; the file is not read."""

    def __init__(self, path: str, resolved: str, bases: list[str]) -> None:
        self.path = path
        self.resolved = resolved
        self.bases = list(bases)
        SnapshotError.__init__(
            self,
            [
                f"weights file {path!r} resolves to {resolved}, outside every weights base folder "
                f"({', '.join(self.bases)}). Fix: put the file under one of them, or add its folder to "
                "LEAN_AIRFLOW_WEIGHTS_DIRS (os.pathsep-separated)"
            ],
        )


class SnapshotSourceError(SnapshotError):
    """A snapshot provider's source cannot be used: a bad or unreachable SQL URL, an unknown driver,
    a missing table or column. Names the source (password hidden) and what to do."""


class MarketDataMissingError(ContractValidationError):
    """Missing or stale market data: a symbol the run trades or holds has no daily bar on the session
    the run sizes on (``include.data_coverage``). Raised before Lean starts, so nothing is traded; names
    each symbol, the session it needed and the last date its data has (or that it has no data file)."""

    def __init__(self, data_folder: str, problems: list[str], symbols: list[str]) -> None:
        self.data_folder = data_folder
        self.symbols = list(symbols)
        ContractValidationError.__init__(self, "market data", problems)
        self.args = (
            f"missing or stale market data in {data_folder}: nothing was traded, Lean was not started. "
            + "; ".join(self.problems)
            + ". Fix: add the missing bars to the data folder, or run a date its data covers",
        )


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


class BrokerConnectionError(LeanAirflowError, ValueError):
    """A broker connection (an Airflow connection's fields) names an unknown broker or data provider, lacks
    a field the selection needs, or has a field it does not know; says which field of which connection,
    and what is allowed. Never carries a secret value."""

    def __init__(self, conn_id: str | None, problems: list[str]) -> None:
        self.conn_id = conn_id
        self.problems = list(problems)
        where = f"broker connection {conn_id!r}" if conn_id else "the default broker selection"
        super().__init__(f"{where}: " + "; ".join(self.problems))


class BrokerRuntimeError(LeanAirflowError, ValueError):
    """The selected broker or data provider cannot run on the chosen runtime (the local runtime trades only
    its paper broker on the Lean data folder; the real Lean image has no local-data-folder feed)."""

    def __init__(self, conn_id: str | None, what: str, runtime: str, allowed: list[str], fix: str) -> None:
        self.conn_id = conn_id
        self.runtime = runtime
        where = f" (broker connection {conn_id!r})" if conn_id else " (no broker connection: the default)"
        super().__init__(f"{what}{where} cannot run on runtime={runtime!r}; it runs on: {', '.join(allowed)}. {fix}")


class LeanConfigRulesError(LeanConfigError):
    """A launcher config breaks Lean's pinned keys or live rules (``include.launch.lean_rules``); refused
    before any Lean process or container starts."""


class LiveDataQueueMissingError(LeanConfigRulesError):
    """A live environment without ``data-queue-handler``: the real Lean would fall back to its stub
    ``LiveDataQueue``, whose Subscribe throws, and stop with a runtime error (Lean ``Queues/JobQueue.cs``
    L158-166, ``Engine/DataFeeds/Queues/DataQueue.cs`` L27-34). Refused before any container is created."""


class ArtifactStoreError(LeanAirflowError, ValueError):
    """The artifact store's setting is malformed or names a store this machine cannot reach
    (``LEAN_AIRFLOW_ARTIFACT_STORE``: unknown protocol, a relative ``file`` path, a missing fsspec package)."""

    def __init__(self, setting: str, value: str, problem: str, expected: str) -> None:
        self.setting = setting
        self.value = value
        super().__init__(f"{setting}={value!r}: {problem} (expected {expected})")
