"""``python -m include.cli``: one subcommand per step of the chain.

Every module ``include/cli/cmd_*.py`` registers its subcommands with ``register(subparsers)``.
Handlers return an exit code, print results to stdout as JSON and errors to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from include.errors import LeanAirflowError

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
        return 1
