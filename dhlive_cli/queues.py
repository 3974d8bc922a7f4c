"""Bounded queues with a named policy and fill counters: every link between engine threads.

`block`: the producer waits (render: nothing is lost). `drop_oldest`: the producer never waits;
the oldest item is discarded and counted (live: the stream keeps its clock). Waits poll a
cancel event so stop() is never stuck behind a full or empty queue.
"""

from __future__ import annotations

import collections
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """The queue's cancel event was set while waiting."""


class BoundedQueue(Generic[T]):
    def __init__(self, name: str, maxsize: int, policy: str = "block", cancel: threading.Event | None = None):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        if policy not in ("block", "drop_oldest"):
            raise ValueError(f"unknown queue policy {policy!r}")
        self.name, self.maxsize, self.policy = name, maxsize, policy
        self.cancel = cancel or threading.Event()
        self._items: collections.deque[T] = collections.deque()
        self._cv = threading.Condition(threading.Lock())
        self.dropped = 0
        self.high_water = 0
        self.puts = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, poll: float = 0.1) -> T | None:
        """Add item; returns the item dropped to make room (drop_oldest) or None."""
        dropped = None
        with self._cv:
            if self.policy == "drop_oldest":
                if len(self._items) >= self.maxsize:
                    dropped = self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.maxsize:
                    if self.cancel.is_set():
                        raise Cancelled(self.name)
                    self._cv.wait(poll)
            self._items.append(item)
            self.puts += 1
            if len(self._items) > self.high_water:
                self.high_water = len(self._items)
            self._cv.notify_all()
        return dropped

    def get(self, poll: float = 0.1, timeout: float | None = None) -> T:
        """Next item; waits while empty. Raises Cancelled, or TimeoutError after `timeout`."""
        waited = 0.0
        with self._cv:
            while not self._items:
                if self.cancel.is_set():
                    raise Cancelled(self.name)
                if timeout is not None and waited >= timeout:
                    raise TimeoutError(self.name)
                self._cv.wait(poll)
                waited += poll
            item = self._items.popleft()
            self._cv.notify_all()
            return item

    def get_nowait(self) -> T | None:
        with self._cv:
            if not self._items:
                return None
            item = self._items.popleft()
            self._cv.notify_all()
            return item

    def fill(self) -> tuple[int, int]:
        return len(self._items), self.maxsize

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()
