"""Lean's utilities an algorithm uses (``QuantConnect.Util``)."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any


class _EventHook:
    def __init__(self) -> None:
        self.handlers: list[Callable[[Any, Any], None]] = []

    def __iadd__(self, handler: Callable[[Any, Any], None]) -> _EventHook:
        self.handlers.append(handler)
        return self

    def __isub__(self, handler: Callable[[Any, Any], None]) -> _EventHook:
        self.handlers.remove(handler)
        return self


class CircularQueue:
    """Lean's ``CircularQueue<T>`` (``Common/Util/CircularQueue.cs``): ``dequeue`` returns the next item and
    puts it back at the end; dequeuing the first item (the head, the very first time too) raises
    ``circle_completed`` before it returns. ``CircularQueue[T](items)`` as in Lean's Python."""

    def __init__(self, *args: Any, items: Iterable[Any] | None = None) -> None:
        """Lean's ``CircularQueue(items)`` (an iterable) or ``CircularQueue(*items)``."""
        if items is not None:
            args = (*args, items)
        values = list(args[0]) if len(args) == 1 and isinstance(args[0], Iterable) else list(args)
        self._queue: deque[Any] = deque(values)
        self._head = values[0] if values else None
        self._has_head = bool(values)
        self.circle_completed = _EventHook()

    def __class_getitem__(cls, item: Any) -> type[CircularQueue]:
        return cls

    def dequeue(self) -> Any:
        item = self._queue.popleft()
        if self._has_head and item == self._head:
            for handler in list(self.circle_completed.handlers):
                handler(self, None)
        self._queue.append(item)
        return item


class TimeSpan:
    """.NET's ``System.TimeSpan`` factories, which return a Python timedelta (as Python.NET converts one)."""

    @staticmethod
    def from_days(days: float, hours: int = 0, minutes: int = 0, seconds: int = 0) -> dt.timedelta:
        return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)

    @staticmethod
    def from_hours(hours: float, minutes: int = 0, seconds: int = 0) -> dt.timedelta:
        return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)

    @staticmethod
    def from_minutes(minutes: float, seconds: int = 0) -> dt.timedelta:
        return dt.timedelta(minutes=minutes, seconds=seconds)

    @staticmethod
    def from_seconds(seconds: float) -> dt.timedelta:
        return dt.timedelta(seconds=seconds)

    ZERO = dt.timedelta(0)
