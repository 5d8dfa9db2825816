"""Extract, once, Lean's known launcher-config keys and its live-environment rules, with their provenance.

    LEAN_REPO_DIR=<Lean checkout at the pinned commit> python -m tests.tools.extract_lean_config_rules

writes ``include/launch/lean_config_keys.json`` (``--out`` to change it), which
``include/launch/lean_rules.py`` checks every generated launcher config against:

* ``keys``: every key of Lean's ``Launcher/config.json`` (top level, and inside each ``environments`` block;
  the ``parameters`` block holds the algorithm's own names, not config keys) and every literal key the C#
  sources read through ``Config.Get``, ``GetBool``, ``GetInt``, ``GetDouble``, ``GetValue<T>``,
  ``TryGetValue<T>`` or ``GetToken`` (``code_keys``: which file reads which key). Comments are skipped;
  a call whose key is not a string literal is counted in ``sources``, not guessed.
* ``environments``: the environment blocks of ``Launcher/config.json`` as Lean ships them.
* ``live_environment_rule``: lean-cli's rule for a live environment (``lean/commands/live/deploy.py``), as data.
  Read from ``LEAN_CLI_REPO_DIR`` when it is set (the line is checked); otherwise the pinned line is written.
* ``transaction_handler_convention``: ``Launcher/config.json``'s convention (a real brokerage runs with the
  ``BrokerageTransactionHandler``, the paper brokerage with the ``BacktestingTransactionHandler``), with the
  comment lines that state it, checked against every live environment of the file.
* ``defaults``: the values Lean uses when the config leaves ``live-mode-brokerage`` or ``transaction-handler`` out.

The checkout must be complete for ``keys`` to be (a partial one yields fewer keys; the run prints how the
keys differ from the committed file). ``tests/include/launch/test_lean_rules.py`` re-runs :func:`extract`
on ``LEAN_REPO_DIR`` when it is set and compares, file by file for the files the checkout has.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from include.launch.config import strip_json_comments
from tests.tools.lean_checkout import (
    LEAN_CLI_COMMIT,
    LEAN_CLI_COMMIT_DATE,
    LEAN_CLI_REPOSITORY,
    LEAN_COMMIT,
    LEAN_COMMIT_DATE,
    LEAN_REPOSITORY,
    CheckoutError,
    check_checkout,
    checkout_from_env,
    read_text,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "include" / "launch" / "lean_config_keys.json"
GENERATOR = "tests/tools/extract_lean_config_rules.py"

LAUNCHER_CONFIG = "Launcher/config.json"
CONFIG_METHODS = ("Get", "GetBool", "GetInt", "GetDouble", "GetValue", "TryGetValue", "GetToken")
# Lean's keys are lower-case words joined by '-' (a few carry '.' or '_' or upper case: 'iqfeed-productName').
KEY_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# C# tokens that can hide or fake a call: comments, and string and char literals (whose content is masked
# so that text like 'Config.Get(' inside a log message is not taken for a call). Raw strings first.
_CS_TOKENS = re.compile(
    r'"""[\s\S]*?"""'  # raw string literal (C# 11)
    r"|//[^\n]*"  # line comment
    r"|/\*[\s\S]*?\*/"  # block comment
    r'|\$?@"(?:[^"]|"")*"|@\$"(?:[^"]|"")*"'  # verbatim (and interpolated verbatim) string
    r'|\$?"(?:\\.|[^"\\\n])*"'  # regular (and interpolated) string
    r"|'(?:\\.|[^'\\\n])+'"  # char literal
)
_CALL = re.compile(
    r"\bConfig\.(?P<method>" + "|".join(CONFIG_METHODS) + r")\s*(?:<[^()\";]*>)?\s*\(\s*(?P<arg>\x00(?P<n>\d+)\x00|\S)"
)

# lean-cli at the pinned commit: a live environment must define these three keys.
LEAN_CLI_DEPLOY = "lean/commands/live/deploy.py"
LEAN_CLI_RULE_LINE = 190
LEAN_CLI_RULE_TEXT = 'for key in ["live-mode-brokerage", "data-queue-handler", "history-provider"]:'
LEAN_CLI_RULE_LINES = (188, 193)  # from 'if environment_name in lean_config["environments"]' to the raise

PAPER_COMMENT = "the paper brokerage requires the BacktestingTransactionHandler"
BROKERAGE_COMMENT = "real brokerage implementations require the BrokerageTransactionHandler"
PAPER_HANDLER = "BacktestingTransactionHandler"
BROKERAGE_HANDLER = "BrokerageTransactionHandler"
PAPER_BROKERAGE = "PaperBrokerage"

# The defaults Lean falls back to: (file, the line's text as a pattern, the default captured).
DEFAULTS: dict[str, tuple[str, str]] = {
    "live-mode-brokerage": ("Queues/JobQueue.cs", r'private const string PaperBrokerageTypeName = "(?P<value>[^"]+)";'),
    "transaction-handler": (
        "Engine/LeanEngineAlgorithmHandlers.cs",
        r'Config\.Get\("transaction-handler", "(?P<value>[^"]+)"\)',
    ),
}


def short_name(type_name: object) -> str:
    """A handler's type name without its namespace, as Lean's Composer matches either form."""
    return str(type_name).rsplit(".", 1)[-1]


def code_keys_of(text: str) -> tuple[list[str], int]:
    """The literal keys ``text`` (C#) reads through ``Config``, sorted; and how many calls had no literal key."""
    literals: list[str] = []

    def mask(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith(("//", "/*")):
            return "\n" * token.count("\n")  # keep line numbers
        if token.startswith('"') and not token.startswith('"""'):
            literals.append(ast.literal_eval(token) if "\\" in token else token[1:-1])
            return f"\x00{len(literals) - 1}\x00"
        if token.startswith('@"'):
            literals.append(token[2:-1].replace('""', '"'))
            return f"\x00{len(literals) - 1}\x00"
        return "\x01"  # any other literal: not a key

    masked = _CS_TOKENS.sub(mask, text)
    keys: set[str] = set()
    non_literal = 0
    for call in _CALL.finditer(masked):
        if call.group("n") is None:
            non_literal += 1
            continue
        key = literals[int(call.group("n"))]
        if not KEY_SHAPE.fullmatch(key):
            raise ValueError(f"Config.{call.group('method')}({key!r}): not the shape of a Lean config key")
        keys.add(key)
    return sorted(keys), non_literal


def _cs_files(lean: Path) -> Iterable[Path]:
    return sorted(p for p in lean.rglob("*.cs") if p.is_file() and ".git" not in p.relative_to(lean).parts)


def _line_numbers(text: str, needle: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]


def _live_rule(variable: str = "LEAN_CLI_REPO_DIR") -> dict[str, Any]:
    """lean-cli's rule; checked against a lean-cli checkout when ``LEAN_CLI_REPO_DIR`` is set."""
    cli = checkout_from_env(variable)
    if cli is not None:
        check_checkout(cli, LEAN_CLI_COMMIT, variable=variable)
        lines = read_text(cli, LEAN_CLI_DEPLOY, variable=variable).splitlines()
        if len(lines) < LEAN_CLI_RULE_LINE or lines[LEAN_CLI_RULE_LINE - 1].strip() != LEAN_CLI_RULE_TEXT:
            raise CheckoutError(
                f"{variable}={cli}: {LEAN_CLI_DEPLOY}:{LEAN_CLI_RULE_LINE} is not {LEAN_CLI_RULE_TEXT!r}"
            )
    required = ast.literal_eval(LEAN_CLI_RULE_TEXT.removeprefix("for key in ").removesuffix(":"))
    return {
        "required_keys": required,
        "applies_to": "the environment block lean-cli deploys (its own keys, not the top level)",
        "source": {
            "repository": LEAN_CLI_REPOSITORY,
            "commit": LEAN_CLI_COMMIT,
            "commit_date": LEAN_CLI_COMMIT_DATE,
            "path": LEAN_CLI_DEPLOY,
            "lines": list(LEAN_CLI_RULE_LINES),
            "text": LEAN_CLI_RULE_TEXT,
        },
    }


def _convention(config_text: str, environments: dict[str, Any]) -> dict[str, Any]:
    paper_lines = _line_numbers(config_text, PAPER_COMMENT)
    brokerage_lines = _line_numbers(config_text, BROKERAGE_COMMENT)
    if not paper_lines or not brokerage_lines:
        raise ValueError(f"{LAUNCHER_CONFIG}: the comments stating the transaction-handler convention are gone")
    live = {name: block for name, block in environments.items() if block.get("live-mode") is True}
    for name, block in live.items():
        paper = short_name(block.get("live-mode-brokerage", PAPER_BROKERAGE)) == PAPER_BROKERAGE
        expected = PAPER_HANDLER if paper else BROKERAGE_HANDLER
        if short_name(block.get("transaction-handler")) != expected:
            raise ValueError(f"{LAUNCHER_CONFIG}: environment {name!r} breaks the convention (expected {expected})")
    return {
        "paper_brokerages": [PAPER_BROKERAGE],
        "paper_transaction_handler": PAPER_HANDLER,
        "brokerage_transaction_handler": BROKERAGE_HANDLER,
        "source": {
            "repository": LEAN_REPOSITORY,
            "commit": LEAN_COMMIT,
            "path": LAUNCHER_CONFIG,
            "paper_comment": {"text": PAPER_COMMENT, "lines": paper_lines},
            "brokerage_comment": {"text": BROKERAGE_COMMENT, "lines": brokerage_lines},
        },
        "holds_in_environments": sorted(live),
    }


def _defaults(lean: Path, variable: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, (path, pattern) in DEFAULTS.items():
        text = read_text(lean, path, variable=variable)
        matches = [(n, m) for n, line in enumerate(text.splitlines(), 1) if (m := re.search(pattern, line))]
        if len(matches) != 1:
            raise ValueError(f"{path}: expected one line matching {pattern!r} (the default of {key!r})")
        number, match = matches[0]
        found[key] = {"value": match.group("value"), "source": f"{path}:{number}"}
    return found


def extract(lean: Path, *, variable: str = "LEAN_REPO_DIR") -> dict[str, Any]:
    """The pinned data, from the checkout at ``lean`` (see the module doc)."""
    config_text = read_text(lean, LAUNCHER_CONFIG, variable=variable)
    config = json.loads(strip_json_comments(config_text))
    environments: dict[str, Any] = config["environments"]
    config_keys = set(config)
    for name, block in environments.items():
        if not isinstance(block, dict):
            raise ValueError(f"{LAUNCHER_CONFIG}: environments.{name} is not an object")
        config_keys.update(block)
    code_keys: dict[str, list[str]] = {}
    files_read = non_literal = 0
    for path in _cs_files(lean):
        files_read += 1
        keys, skipped = code_keys_of(path.read_bytes().decode("utf-8-sig", errors="replace"))
        non_literal += skipped
        if keys:
            code_keys[path.relative_to(lean).as_posix()] = keys
    all_keys = config_keys.union(*code_keys.values())
    rule = _live_rule()
    methods = ", ".join(f"Config.{method}" for method in CONFIG_METHODS)
    return {
        "generated_by": GENERATOR,
        "lean_repository": LEAN_REPOSITORY,
        "lean_commit": LEAN_COMMIT,
        "lean_commit_date": LEAN_COMMIT_DATE,
        "sources": [
            {
                "repository": LEAN_REPOSITORY,
                "path": LAUNCHER_CONFIG,
                "read": "top-level keys and the keys of every environments.<name> block (comments stripped)",
                "keys": len(config_keys),
            },
            {
                "repository": LEAN_REPOSITORY,
                "path": "**/*.cs",
                "read": f"the literal first argument of {methods} (comments skipped)",
                "files_read": files_read,
                "files_with_keys": len(code_keys),
                "calls_without_a_literal_key": non_literal,
                "keys": len(set().union(*code_keys.values())),
            },
            {"repository": LEAN_CLI_REPOSITORY, "commit": LEAN_CLI_COMMIT, "path": LEAN_CLI_DEPLOY},
        ],
        "keys": sorted(all_keys),
        "environments": environments,
        "code_keys": code_keys,
        "live_environment_rule": rule,
        "launcher_environments_breaking_live_rule": {
            name: missing
            for name, block in environments.items()
            if block.get("live-mode") is True and (missing := [k for k in rule["required_keys"] if k not in block])
        },
        "transaction_handler_convention": _convention(config_text, environments),
        "defaults": _defaults(lean, variable),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    args = parser.parse_args(argv)
    lean = checkout_from_env("LEAN_REPO_DIR")
    if lean is None:
        print("set LEAN_REPO_DIR to a (complete) Lean checkout at commit " + LEAN_COMMIT, file=sys.stderr)
        return 2
    try:
        check_checkout(lean, LEAN_COMMIT, variable="LEAN_REPO_DIR")
        data = extract(lean)
    except (CheckoutError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out.exists():
        before = set(json.loads(args.out.read_text(encoding="utf-8")).get("keys", []))
        after = set(data["keys"])
        print(f"keys: {len(before)} -> {len(after)}; added {sorted(after - before)}; removed {sorted(before - after)}")
    args.out.write_text(render(data), encoding="utf-8")
    source = data["sources"][1]
    print(f"wrote {args.out}: {len(data['keys'])} keys ({source['files_read']} C# files read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
