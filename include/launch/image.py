"""Which Lean ran: the image (pulled by digest when absent, refused when older than the Lean the
audit assumes) and the Lean version the engine prints in its banner.

The audit's fill checks assume that a market order on daily data becomes a MarketOnClose order in
a backtest (Lean ``Algorithm/QCAlgorithm.Trading.cs``, ``MarketOrder``: ``!LiveMode &&
IsDailyResolutionOnly`` -> ``MarketOnCloseOrder``). Lean gained that in commit 62d63010a (PR #9534,
merged 2026-06-16T16:08:57Z); an image built earlier fills those orders at the previous close,
so every consistency verdict on it would be wrong. Hence the refusal by the image's ``Created``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from include.errors import LeanDockerError, LeanImageTooOldError

REQUIRED_LEAN_CHANGE = "Lean commit 62d63010a (PR #9534, merged 2026-06-16T16:08:57Z)"
REQUIRED_AFTER = dt.datetime(2026, 6, 16, 16, 8, 57, tzinfo=dt.UTC)
WHY_REQUIRED = (
    "that commit makes Lean turn market orders on daily data into MarketOnClose orders in backtests, "
    "which the consistency check assumes; an older Lean fills them at the previous close"
)
# Engine/Initializer.cs: Log.Trace($"Engine.Main(): LEAN ALGORITHMIC TRADING ENGINE v{Globals.Version} Mode: ...")
BANNER_RE = re.compile(r"LEAN ALGORITHMIC TRADING ENGINE v(?P<version>[0-9A-Za-z.\-+]+)")
# The banner is among the first lines of log.txt: never read a whole (possibly huge) log for it.
BANNER_SEARCH_BYTES = 1 << 16


class ImageAPI(Protocol):
    """The part of docker-py's ``APIClient`` this module uses."""

    def inspect_image(self, image: str) -> dict[str, Any]: ...

    def pull(self, repository: str, tag: str | None = None, stream: bool = False, decode: bool = False) -> Any: ...


@dataclass(frozen=True)
class ImageIdentity:
    """The image a run used, as the daemon reports it."""

    reference: str
    image_id: str
    digest: str | None
    created: str

    def engine_fields(self) -> dict[str, str]:
        fields = {"image_id": self.image_id, "image_created": self.created}
        if self.digest:
            fields["image_digest"] = self.digest
        return fields


def parse_created(text: str) -> dt.datetime:
    """Docker's RFC 3339 timestamp (nanoseconds are cut to microseconds) as an aware datetime."""
    match = re.fullmatch(r"(?P<base>[^.]+?)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d{2}:\d{2})", text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    return dt.datetime.fromisoformat(f"{match['base']}.{fraction}{zone}")


def identity_from_inspect(reference: str, inspected: Mapping[str, Any]) -> ImageIdentity:
    digests = [str(d) for d in inspected.get("RepoDigests") or []]
    pinned = reference.rsplit("@", 1)[1] if "@" in reference else None
    matching = [d for d in digests if pinned and d.endswith("@" + pinned)]
    digest = matching[0] if matching else (digests[0] if digests else None)
    return ImageIdentity(
        reference=reference, image_id=str(inspected.get("Id") or ""), digest=digest, created=str(inspected["Created"])
    )


def check_image_age(identity: ImageIdentity) -> None:
    """LeanImageTooOldError for an image built before the Lean change the audit relies on."""
    try:
        created = parse_created(identity.created)
    except ValueError:
        raise LeanImageTooOldError(
            identity.reference, f"at an unreadable time ({identity.created!r})", REQUIRED_LEAN_CHANGE, WHY_REQUIRED
        ) from None
    if created < REQUIRED_AFTER:
        raise LeanImageTooOldError(identity.reference, identity.created, REQUIRED_LEAN_CHANGE, WHY_REQUIRED)


def ensure_image(client: ImageAPI, reference: str, on_line: Callable[[str], None]) -> ImageIdentity:
    """Inspect the image (pulling it by its digest when the daemon lacks it) and refuse an old one."""
    from docker.errors import APIError, NotFound  # type: ignore[import-untyped]

    try:
        inspected = client.inspect_image(reference)
    except NotFound:
        on_line(f"Pulling {reference} (not on the Docker host yet; pre-pull it to keep task time short)")
        _pull(client, reference, on_line)
        try:
            inspected = client.inspect_image(reference)
        except APIError as exc:
            raise LeanDockerError(f"inspect the image {reference} after pulling it", str(exc)) from None
    except APIError as exc:
        raise LeanDockerError(f"inspect the image {reference}", str(exc)) from None
    identity = identity_from_inspect(reference, inspected)
    check_image_age(identity)
    return identity


def _pull(client: ImageAPI, reference: str, on_line: Callable[[str], None]) -> None:
    from docker.errors import APIError

    last: dict[str, str] = {}
    try:
        for event in client.pull(reference, stream=True, decode=True):
            if not isinstance(event, dict):
                continue
            if event.get("error"):
                raise LeanDockerError(f"pull {reference}", str(event["error"]))
            status, layer = str(event.get("status", "")), str(event.get("id", ""))
            # One line per layer and state, not one per progress tick.
            if status and last.get(layer) != status:
                last[layer] = status
                on_line(f"pull {reference}: {layer + ': ' if layer else ''}{status}")
    except APIError as exc:
        raise LeanDockerError(f"pull {reference}", str(exc)) from None


def lean_version_from_log(path: Path) -> str | None:
    """The version in Lean's start banner (``log.txt``), or None when the log has no banner."""
    try:
        with path.open("rb") as handle:
            head = handle.read(BANNER_SEARCH_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    found = BANNER_RE.search(head)
    return found["version"] if found else None
