"""The speech buffer: what every input (file, stdin, mic, API) pushes into and the clock pulls from."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from dhlive_cli.timebase import SAMPLE_RATE


class SpeechBuffer:
    """Queued speech, at most max_seconds: a preallocated ring. push() never grows memory.

    Positions are absolute sample indices (16 kHz) since the buffer was made: sample i of the
    stream of pushed speech is pulled once, at read position i, or dropped by clear()/trim_to()
    (the last DROP_HISTORY such ranges are kept, so a listener can tell played from dropped)."""

    DROP_HISTORY = 64

    def __init__(self, max_seconds: float):
        self._buf = np.zeros(int(max_seconds * SAMPLE_RATE), dtype=np.float32)
        self._r = 0  # read position (absolute samples)
        self._w = 0  # write position
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self.pushed_samples = 0
        self.rejected = 0
        # (sample index, monotonic ns) of the first push into an empty buffer: an utterance
        # start, from which the clock measures input -> first talking frame latency
        self.utterance_start: tuple[int, int] | None = None
        self.last_pull_end = 0  # read position after the latest pull (the puller's own thread reads it)
        self._dropped: deque[tuple[int, int]] = deque(maxlen=self.DROP_HISTORY)  # [from, to) ranges

    @property
    def capacity(self) -> int:
        return self._buf.shape[0]

    def queued(self) -> int:
        with self._lock:
            return self._w - self._r

    def free(self) -> int:
        return self.capacity - self.queued()

    def push(self, samples: np.ndarray, block: bool = False, cancel: threading.Event | None = None) -> bool:
        """Append samples. Non-blocking: False (and nothing written) when they do not fit."""
        return self.push_end(samples, block, cancel) is not None

    def push_end(self, samples: np.ndarray, block: bool = False, cancel: threading.Event | None = None) -> int | None:
        """push(), returning the absolute position just after the samples written (they hold
        positions [end - len(samples), end)), or None when nothing was written."""
        n = samples.shape[0]
        if n > self.capacity:
            raise ValueError(f"{n} samples exceed the speech buffer ({self.capacity})")
        with self._lock:
            while self.capacity - (self._w - self._r) < n:
                if not block:
                    self.rejected += 1
                    return None
                if cancel is not None and cancel.is_set():
                    return None
                self._space.wait(0.1)
            cap = self.capacity
            if self._w == self._r and self.utterance_start is None:
                self.utterance_start = (self._w, time.monotonic_ns())
            i = self._w % cap
            first = min(n, cap - i)
            self._buf[i : i + first] = samples[:first]
            if first < n:
                self._buf[: n - first] = samples[first:]
            self._w += n
            self.pushed_samples += n
            return self._w

    @property
    def read_pos(self) -> int:
        return self._r

    def pull(self, out: np.ndarray) -> int:
        """Fill out with the next queued samples, zeros after them; returns how many were speech."""
        want = out.shape[0]
        with self._lock:
            n = min(want, self._w - self._r)
            cap = self.capacity
            i = self._r % cap
            first = min(n, cap - i)
            out[:first] = self._buf[i : i + first]
            if first < n:
                out[first:n] = self._buf[: n - first]
            self._r += n
            self.last_pull_end = self._r
            if n:
                self._space.notify_all()
        out[n:] = 0.0
        return n

    def dropped(self, pos: int) -> bool:
        """True when the sample at absolute position `pos` was dropped (clear, trim) rather than
        pulled -- as far as the last DROP_HISTORY drops tell."""
        with self._lock:
            return any(a <= pos < b for a, b in self._dropped)

    def trim_to(self, keep: int) -> int:
        """Drop the oldest queued samples beyond `keep` (a live mic must not build up latency)."""
        with self._lock:
            excess = (self._w - self._r) - keep
            if excess <= 0:
                return 0
            self._dropped.append((self._r, self._r + excess))
            self._r += excess
            self._space.notify_all()
            return excess

    def clear(self) -> int:
        """Interrupt: drop everything queued; returns the samples dropped."""
        with self._lock:
            n = self._w - self._r
            if n:
                self._dropped.append((self._r, self._w))
            self._r = self._w
            self._space.notify_all()
            return n
