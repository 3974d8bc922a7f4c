"""How far a live session's speech has been played: the position (in its SpeechBuffer) of the
audio that has gone out with its frames, and callbacks when it passes a given position."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

Callback = Callable[[int, int], None]


class PlaybackWatch:
    """Speech positions of one session that have been played.

    A sample at absolute SpeechBuffer position i (16 kHz) counts as played when the frame that
    carries it is handed to the session's outputs: that is its presentation time in the session
    (what reaches a viewer then depends only on the encoder and the network). The draw thread
    calls advance() once per frame with the buffer's read position after that frame's tick; any
    thread may ask to be called back once the position reaches `pos` (notify_at).

    advance() costs an int compare per frame and allocates nothing unless a callback is due.
    Callbacks run on the draw thread: they must only hand the news on (e.g. to an event loop
    with call_soon_threadsafe), never block.
    """

    def __init__(self) -> None:
        self.position = 0  # speech samples [0, position) have been played
        self.played_ns = 0  # time.monotonic_ns() of the latest advance
        self._lock = threading.Lock()
        self._due: list[tuple[int, int, Callback]] = []  # heap of (position, order, callback)
        self._order = itertools.count()

    def advance(self, pos: int) -> None:
        """Draw thread: the frame just handed to the outputs carries speech up to `pos`."""
        if pos <= self.position:
            return
        self.position = pos
        self.played_ns = now = time.monotonic_ns()
        due = self._due
        if not due or due[0][0] > pos:  # unlocked peek: a stale answer is checked again below
            return
        ready = []
        with self._lock:
            while due and due[0][0] <= pos:
                ready.append(heapq.heappop(due)[2])
        for cb in ready:
            cb(pos, now)

    def notify_at(self, pos: int, callback: Callback) -> None:
        """Call callback(position, monotonic ns) once the played position reaches `pos` (at
        once, on this thread, if it already has)."""
        with self._lock:
            if pos > self.position:
                heapq.heappush(self._due, (pos, next(self._order), callback))
                return
        callback(self.position, self.played_ns)

    def forget(self, callbacks: set) -> None:
        """Drop the pending callbacks in `callbacks` (their listener went away)."""
        with self._lock:
            self._due[:] = [d for d in self._due if d[2] not in callbacks]
            heapq.heapify(self._due)

    def pending(self) -> int:
        with self._lock:
            return len(self._due)
