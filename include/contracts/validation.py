"""Turn pydantic's ValidationError into our named errors, naming each field and value."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from include.errors import (
    ExecutionParamsError,
    ExecutionParamsFileError,
    InputFileError,
    OrderIntentError,
    OrderIntentFileError,
    SnapshotError,
    SnapshotFileError,
)

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
    """The file's size; ``error`` naming the file when it exceeds ``limit`` (checked before reading)
    or is not a regular file (a FIFO would block its reader)."""
    st = os.stat(path)
    for test, reason in _NOT_REGULAR:
        if test(st.st_mode):
            raise file_error(error, path, reason, "give the path of a regular file")
    size = st.st_size
    if size > limit:
        raise error([f"{path}: file is {size} bytes, over the {limit}-byte limit for a contract"])
    return size


# The named "cannot read the file" error of each contract error (an instance of both) and what it names.
# A reader of another format adds its own pair (include/cli/cmd_data.py).
FILE_ERRORS: dict[Any, tuple[type[InputFileError], str]] = {
    SnapshotError: (SnapshotFileError, "decision snapshot"),
    OrderIntentError: (OrderIntentFileError, "order intent"),
    ExecutionParamsError: (ExecutionParamsFileError, "execution params"),
}
_NOT_REGULAR = (
    (stat.S_ISDIR, "is a directory, not a file"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file: reading it could block forever"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
)


def file_error(
    error: Callable[[list[str]], Exception], path: str | os.PathLike[str], reason: str, fix: str
) -> Exception:
    """The named error for a file that cannot be read: the contract's ``InputFileError`` subclass
    (``SnapshotFileError``...) when it has one, else ``error`` itself, naming the path, what is wrong and what to do."""
    named = FILE_ERRORS.get(error)
    if named is not None:
        kind, what = named
        return kind(what, os.fspath(path), reason, fix)
    return error([f"{os.fspath(path)}: {reason}. Fix: {fix}"])


def open_input_file(path: str | os.PathLike[str], error: Callable[[list[str]], Exception]) -> BinaryIO:
    """``path`` opened for binary reading, only if it is a regular file (the one check every reader makes).

    Opened non-blocking, then checked with ``fstat``: a FIFO is refused without waiting for a
    writer, and a file swapped for a FIFO between a check and the open cannot slip through.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise file_error(error, path, "does not exist", "check the path (and the working directory)") from None
    except PermissionError:
        raise file_error(
            error, path, "is not readable by this user (permission denied)", "fix the file's permissions or owner"
        ) from None
    except OSError as exc:
        raise file_error(error, path, f"cannot be opened ({exc.strerror})", "give the path of a regular file") from None
    try:
        mode = os.fstat(fd).st_mode
        for test, reason in _NOT_REGULAR:
            if test(mode):
                raise file_error(error, path, reason, "give the path of a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input_bytes(
    path: str | os.PathLike[str], error: Callable[[list[str]], Exception], limit: int | None = MAX_CONTRACT_FILE_BYTES
) -> bytes:
    """The bytes of a regular file no larger than ``limit``; named errors otherwise."""
    with open_input_file(path, error) as handle:
        size = os.fstat(handle.fileno()).st_size
        if limit is not None and size > limit:
            raise error([f"{path}: file is {size} bytes, over the {limit}-byte limit for a contract"])
        try:
            data = handle.read() if limit is None else handle.read(limit + 1)
        except OSError as exc:
            raise file_error(error, path, f"cannot be read ({exc.strerror})", "check the disk and the file") from None
    if limit is not None and len(data) > limit:  # it grew while we read it
        raise error([f"{path}: file is over the {limit}-byte limit for a contract"])
    return data


def decode_utf8(data: bytes, path: str | os.PathLike[str], error: Callable[[list[str]], Exception]) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); ``error`` naming the file and the first bad byte otherwise.

    Not an ``InputFileError``: the file was read, its content is wrong (as bad JSON is).
    """
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error([f"{path}: not UTF-8 text (byte offset {start + exc.start}). Fix: save it as UTF-8"]) from None


def read_text_file(
    path: str | os.PathLike[str], error: Callable[[list[str]], Exception], limit: int | None = MAX_CONTRACT_FILE_BYTES
) -> str:
    """The UTF-8 text of a regular file; named errors for a missing, non-regular, oversized,
    unreadable or non-UTF-8 file."""
    return decode_utf8(read_input_bytes(path, error, limit), path, error)


def read_json_file(path: str | os.PathLike[str], error: Callable[[list[str]], Exception]) -> Any:
    """The decoded JSON of a contract file; named errors for a file that cannot be read or parsed."""
    text = read_text_file(path, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error([f"{path}: cannot read JSON ({exc})"]) from None


def load_json_model(path: str | os.PathLike[str], model: type[M], error: Callable[[list[str]], Exception]) -> M:
    """Read a JSON file and validate it as ``model``; ``error`` names what was wrong and where."""
    raw = read_json_file(path, error)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error([f"{path}: {p}" for p in describe_validation_error(exc)]) from None
