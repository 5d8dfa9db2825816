"""``python -m include.cli``: one subcommand per step of the chain.

Every module ``include/cli/cmd_*.py`` registers its subcommands with ``register(subparsers)``.
Handlers return an exit code, print results to stdout as JSON and errors to stderr: one line,
``error: <ErrorName>: <what failed, where, what to do>``, no traceback.

Exit codes (one home, :data:`EXIT_CODES`):

* 0 ``EXIT_OK``: done;
* 1 ``EXIT_FAILED``: a named failure of the inputs or of the run (an invalid contract, Lean or the
  algorithm failed, the consistency check failed);
* 2 ``EXIT_USAGE``: bad command line (argparse);
* 3 ``EXIT_ENVIRONMENT``: the environment failed, not the algorithm: the audit database is
  unavailable, read-only, locked or full, an input file cannot be read (missing, a directory or
  FIFO, no permission), a snapshot provider's source is unusable, or an OS error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from include.errors import (
    AuditDatabaseFullError,
    AuditDatabaseLockedError,
    AuditDatabaseReadOnlyError,
    AuditDatabaseUnavailableError,
    InputFileError,
    LeanAirflowError,
    SnapshotSourceError,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_CODES = {"ok": EXIT_OK, "failed": EXIT_FAILED, "usage": EXIT_USAGE, "environment": EXIT_ENVIRONMENT}
# Errors of the environment rather than of the inputs or the algorithm. (The audit DB's plain
# AuditDatabaseError, "run not ingested", is a step missing: EXIT_FAILED.)
ENVIRONMENT_ERRORS: tuple[type[LeanAirflowError], ...] = (
    AuditDatabaseUnavailableError,
    AuditDatabaseReadOnlyError,
    AuditDatabaseLockedError,
    AuditDatabaseFullError,
    InputFileError,
    SnapshotSourceError,
)

Handler = Callable[[argparse.Namespace], int]


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.cli", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    package = importlib.import_module("include.cli")
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("cmd_"):
            module = importlib.import_module(f"include.cli.{module_info.name}")
            module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LeanAirflowError as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return exit_code_of(exc)
    except OSError as exc:  # a file or folder the command needs (its output folder, say): named, no traceback
        where = f" {exc.filename}" if exc.filename is not None else ""
        sys.stderr.write(f"error: {type(exc).__name__}:{where}: {exc.strerror or exc}\n")
        return EXIT_ENVIRONMENT


def exit_code_of(exc: LeanAirflowError) -> int:
    """:data:`EXIT_ENVIRONMENT` for the environment's errors (:data:`ENVIRONMENT_ERRORS`), else :data:`EXIT_FAILED`."""
    return EXIT_ENVIRONMENT if isinstance(exc, ENVIRONMENT_ERRORS) else EXIT_FAILED
