"""The clock of every live session in a process."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from dhlive_cli.errors import EngineError
from dhlive_cli.inference import InferencePool
from dhlive_cli.timebase import MODEL_FRAME, Timebase

if TYPE_CHECKING:
    from dhlive_cli.live.session import LiveSession

log = logging.getLogger(__name__)


class TickConductor:
    """The clock of every live session in a process: one thread, one tick grid, one inference.

    Tick k is due at t0 + floor(k * 1e9 / fps) ns (never "sleep one frame", never a sum of
    rounded frame lengths: at 30 fps tick 30 is due exactly 1 s after tick 0). At each tick
    every session pulls one frame of audio and assembles its model windows (0, 1 or, below
    25 fps, several: the model runs at 25 Hz); the windows of all sessions go to
    the shared InferencePool in ONE call; each session then smooths its mouth and hands the tick
    to its own draw thread. Heavy work (drawing, encoding) stays in the sessions' threads, so a
    slow session repeats its own frames while the others keep their pace. Sessions join at the
    next tick and keep their own frame count from there.
    """

    def __init__(self, pool: InferencePool, tb: Timebase, max_sessions: int = 32):
        self.pool, self.tb = pool, tb
        self.max_sessions = max_sessions
        self.max_windows = -(-tb.max_frame_samples() // MODEL_FRAME) + 1  # per session per tick
        self._batch = np.zeros((max_sessions * self.max_windows, pool.window, pool.n_mels), dtype=np.float32)
        self._raw = np.zeros((max_sessions * self.max_windows, 4), dtype=np.float32)
        self._counts = np.zeros(max_sessions, dtype=np.int64)
        self._active: tuple[LiveSession, ...] = ()  # replaced whole on add/remove: the tick reads it lock-free
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.ticks = 0  # ticks run with at least one session
        self.infer_calls = 0  # inference calls made by the conductor
        self.late_ticks = 0  # ticks that started more than a frame after their due time
        self.infer_errors = 0

    @property
    def sessions(self) -> tuple["LiveSession", ...]:
        return self._active

    def add(self, session: LiveSession) -> None:
        with self._lock:
            if self._closed:
                raise EngineError("the live clock is closed")
            if len(self._active) >= self.max_sessions:
                raise EngineError(f"at most {self.max_sessions} live sessions per process")
            self._active = self._active + (session,)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dhlive-tick", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def remove(self, session: LiveSession) -> None:
        with self._lock:
            self._active = tuple(s for s in self._active if s is not session)

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._closed = True
            self._active = ()
            self._lock.notify_all()
            t = self._thread
        if t is not None:
            t.join(timeout)

    def snapshot(self) -> dict:
        return {"sessions": len(self._active), "ticks": self.ticks, "inference_calls": self.infer_calls,
                "inference_calls_per_tick": self.infer_calls / self.ticks if self.ticks else 0.0,
                "late_ticks": self.late_ticks}

    def _run(self) -> None:
        frame_ns = self.tb.frame_ns
        at = self.tb.frame_time_ns
        wmax = self.max_windows
        batch, raw, counts = self._batch, self._raw, self._counts
        t0 = None
        k = 0
        while True:
            active = self._active
            if not active:
                with self._lock:
                    while not self._active and not self._closed:
                        self._lock.wait(1.0)
                    if self._closed:
                        return
                t0 = None  # idle in between: the grid restarts with the next session
                continue
            if self._closed:
                return
            now = time.monotonic_ns()
            if t0 is None:
                t0, k = now, 0
            deadline = t0 + at(k)
            if deadline > now:
                time.sleep((deadline - now) / 1e9)
            elif now - deadline > frame_ns:
                self.late_ticks += 1
            active = self._active  # sessions added while sleeping join this tick
            n = 0
            for i, s in enumerate(active):
                try:
                    c = s._tick_collect(batch[n : n + wmax])
                except Exception:  # one broken session must not stop the others' clock
                    log.exception("live session %s failed; stopping it", s.name)
                    s._fail()
                    c = 0
                counts[i] = c
                n += c
            if n:
                try:
                    self.pool.infer(batch[:n], raw[:n])
                except Exception:  # e.g. a GPU gone away: keep every stream going with a closed mouth
                    if not self.infer_errors:
                        log.exception("inference failed; mouths stay closed until it works again")
                    self.infer_errors += 1
                    raw[:n] = 0.0
                self.infer_calls += 1
            j = 0
            for i, s in enumerate(active):
                c = int(counts[i])
                try:
                    going = s._tick_post(raw[j : j + c], c)
                except Exception:
                    log.exception("live session %s failed; stopping it", s.name)
                    s._fail()
                    going = False
                if not going:
                    self.remove(s)
                j += c
            self.ticks += 1
            k += 1
