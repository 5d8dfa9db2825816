"""Lean's ``SecurityChanges`` (``QuantConnect.Data.UniverseSelection``) and their delivery to the algorithm.

Lean reports every security a universe adds or removes in ``OnSecuritiesChanged``; a security added by
``add_equity``/``add_security`` belongs to Lean's user-defined universe (``QCAlgorithm.AddToUserDefinedUniverse``
queues it in ``_pendingUserDefinedUniverseSecurityChanges``; ``UniverseSelection.ApplyUniverseSelection`` then
reports it), so it is reported too:

- added in ``initialize``: in the first time slice of the run (the start date, or the warm-up's start, at
  midnight), before any data, scheduled event or ``on_data`` of that day;
- added later (in ``on_data``, a scheduled event...): in the next time slice, i.e. at the start of the runtime's
  next step.

``AlgorithmManager`` calls ``OnSecuritiesChanged`` then ``OnFrameworkSecuritiesChanged`` (the framework models),
with a copy that filters custom (``SecurityType.Base``) and internal securities; the lists are ordered by ticker
(``SecurityChanges.GetFilteredList``). :class:`SecurityChangeNotifier` is that hook: the engine queues
additions/removals and calls :meth:`SecurityChangeNotifier.deliver` at the start of each step; framework code
registers listeners called after the algorithm's own handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from include.lean_local.enums import SecurityType

__all__ = ["SecurityChangeNotifier", "SecurityChanges", "SecurityChangesConstructor"]


def _is_custom(security: Any) -> bool:
    symbol = getattr(security, "symbol", None)
    sec_type = getattr(symbol, "security_type", None)
    return sec_type is not None and int(sec_type) == int(SecurityType.BASE)


def _ticker(security: Any) -> str:
    symbol = getattr(security, "symbol", None)
    return str(getattr(symbol, "value", symbol))


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[int] = set()
    out: list[Any] = []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out


class SecurityChanges:
    """Lean's ``SecurityChanges``: the securities a time slice added and removed.

    ``SecurityChanges(changes)`` is Lean's shallow clone; the runtime also builds one from four lists
    (Lean's internal constructor, used by :meth:`create`)."""

    NONE: SecurityChanges

    def __init__(
        self,
        changes: Any = None,
        removals: Iterable[Any] | None = None,
        internal_additions: Iterable[Any] | None = None,
        internal_removals: Iterable[Any] | None = None,
    ) -> None:
        if isinstance(changes, SecurityChanges):
            self._added: list[Any] = changes._added
            self._removed: list[Any] = changes._removed
            self._internal_added: list[Any] = changes._internal_added
            self._internal_removed: list[Any] = changes._internal_removed
        else:
            self._added = _unique(changes or [])
            self._removed = _unique(removals or [])
            self._internal_added = _unique(internal_additions or [])
            self._internal_removed = _unique(internal_removals or [])
        self.filter_custom_securities = False
        self.filter_internal_securities = False

    @staticmethod
    def create(
        additions: Sequence[Any] | None,
        removals: Sequence[Any] | None,
        internal_additions: Sequence[Any] | None,
        internal_removals: Sequence[Any] | None,
    ) -> SecurityChanges:
        lists = [additions or [], removals or [], internal_additions or [], internal_removals or []]
        if sum(len(x) for x in lists) == 0:
            return SecurityChanges.NONE
        return SecurityChanges(*lists)

    @property
    def count(self) -> int:
        return len(self._added) + len(self._removed) + len(self._internal_added) + len(self._internal_removed)

    def _filtered(self, source: list[Any], internal: list[Any]) -> list[Any]:
        items = source if self.filter_internal_securities else _unique([*source, *internal])
        if self.filter_custom_securities:
            items = [s for s in items if not _is_custom(s)]
        return sorted(items, key=_ticker)  # Lean: OrderBy(security => security.Symbol.Value), a stable sort

    @property
    def added_securities(self) -> list[Any]:
        return self._filtered(self._added, self._internal_added)

    @property
    def removed_securities(self) -> list[Any]:
        """The securities removed by universe selection (they may still receive data while held)."""
        return self._filtered(self._removed, self._internal_removed)

    def __add__(self, right: SecurityChanges) -> SecurityChanges:
        """Lean's ``operator +``: additions take precedence over removals."""
        additions = _unique([*self._added, *right._added])
        internal_additions = _unique([*self._internal_added, *right._internal_added])
        added_ids = {id(s) for s in [*additions, *internal_additions]}
        removals = [s for s in _unique([*self._removed, *right._removed]) if id(s) not in added_ids]
        internal_removals = [
            s for s in _unique([*self._internal_removed, *right._internal_removed]) if id(s) not in added_ids
        ]
        return SecurityChanges(additions, removals, internal_additions, internal_removals)

    def __iadd__(self, right: SecurityChanges) -> SecurityChanges:
        return self + right

    def __str__(self) -> str:
        if self.count == 0:
            return "SecurityChanges: None"
        added = self.added_securities
        removed = self.removed_securities
        text_added = f" Added: {','.join(_symbol_id(s) for s in added)}" if added else ""
        text_removed = f" Removed: {','.join(_symbol_id(s) for s in removed)}" if removed else ""
        return f"SecurityChanges: {text_added}{text_removed}"

    def to_string(self) -> str:
        return str(self)

    __repr__ = __str__


def _symbol_id(security: Any) -> str:
    symbol = getattr(security, "symbol", None)
    return str(getattr(symbol, "id", symbol))


SecurityChanges.NONE = SecurityChanges()


class SecurityChangesConstructor:
    """Lean's ``SecurityChangesConstructor``: collects additions and removals, :meth:`flush` makes the changes."""

    def __init__(self) -> None:
        self._additions: list[Any] = []
        self._removals: list[Any] = []
        self._internal_additions: list[Any] = []
        self._internal_removals: list[Any] = []

    def add(self, security: Any, is_internal: bool) -> None:
        (self._internal_additions if is_internal else self._additions).append(security)

    def remove(self, security: Any, is_internal: bool) -> None:
        (self._internal_removals if is_internal else self._removals).append(security)

    def flush(self) -> SecurityChanges:
        result = SecurityChanges.create(
            self._additions, self._removals, self._internal_additions, self._internal_removals
        )
        self._additions = []
        self._removals = []
        self._internal_additions = []
        self._internal_removals = []
        return result


Listener = Callable[[SecurityChanges], None]


class SecurityChangeNotifier:
    """The engine's side of ``OnSecuritiesChanged``: securities queued as added/removed since the last step are
    delivered at the start of the next one to the algorithm's ``on_securities_changed`` and then to the listeners
    (Lean's ``OnFrameworkSecuritiesChanged``: the framework models), each with Lean's user-code filtering."""

    def __init__(self) -> None:
        self._pending = SecurityChangesConstructor()
        self._listeners: list[Listener] = []

    def added(self, security: Any, is_internal: bool = False) -> None:
        self._pending.add(security, is_internal)

    def removed(self, security: Any, is_internal: bool = False) -> None:
        self._pending.remove(security, is_internal)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def pending(self) -> bool:
        p = self._pending
        return bool(p._additions or p._removals or p._internal_additions or p._internal_removals)

    def has_receivers(self, algorithm: Any) -> bool:
        return bool(self._listeners) or getattr(type(algorithm), "on_securities_changed", None) is not None

    def deliver(self, algorithm: Any) -> SecurityChanges:
        """Flush the queued changes to the algorithm and the listeners (nothing when there are none)."""
        changes = self._pending.flush()
        if changes.count == 0:
            return changes
        user = SecurityChanges(changes)
        user.filter_custom_securities = True
        user.filter_internal_securities = True
        if getattr(type(algorithm), "on_securities_changed", None) is not None:
            algorithm.on_securities_changed(user)
        for listener in list(self._listeners):
            listener(user)
        return user
