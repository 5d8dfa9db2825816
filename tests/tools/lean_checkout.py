"""The Lean and lean-cli commits the project pins, and the checkouts the tools read them from.

A tool reads a checkout from ``LEAN_REPO_DIR`` (``LEAN_CLI_REPO_DIR`` for lean-cli): a plain directory
(``git archive`` of the commit will do) or a git work tree. A git work tree must be at the pinned commit;
a plain directory cannot say which commit it holds, so the caller is trusted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

LEAN_REPOSITORY = "QuantConnect/Lean"
LEAN_COMMIT = "24863901deffa9ec7985e21ef8fbdb0258efb9e4"
LEAN_COMMIT_DATE = "2026-08-21T12:46:53-03:00"
LEAN_CLI_REPOSITORY = "QuantConnect/lean-cli"
LEAN_CLI_COMMIT = "5277bb669507adb172b0a8ddabab728d1b0dab91"
LEAN_CLI_COMMIT_DATE = "2026-08-12T15:36:59-04:00"


class CheckoutError(RuntimeError):
    """A checkout is missing, unreadable or at another commit than the pinned one."""


def checkout_from_env(variable: str) -> Path | None:
    """The directory named by ``variable``, or None when it is unset or empty."""
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def check_checkout(root: Path, commit: str, *, variable: str) -> None:
    """Refuse a missing directory, or a git work tree whose HEAD is not ``commit``."""
    if not root.is_dir():
        raise CheckoutError(f"{variable}={root}: not a directory")
    if not (root / ".git").exists():
        return
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=60
    )
    head = done.stdout.strip()
    if done.returncode != 0:
        raise CheckoutError(f"{variable}={root}: git rev-parse HEAD failed: {done.stderr.strip()}")
    if head != commit:
        raise CheckoutError(f"{variable}={root}: HEAD is {head}, the pinned commit is {commit}")


def read_text(root: Path, relative: str, *, variable: str) -> str:
    """A text file of the checkout, exactly as stored (no newline translation)."""
    path = root / relative
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CheckoutError(f"{variable}={root}: {relative} is missing from the checkout") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckoutError(f"{variable}={root}: {relative} cannot be read as UTF-8 ({exc})") from None
