"""How much of a time window a process spent starved of CPU, to scale late-frame bounds.

A live session repeats a frame (and counts it late) when its draw thread misses a 40 ms tick.
On a quiet machine that must (almost) never happen; on a shared CI machine other work takes the
cores and some ticks are missed through no fault of dhlive. Instead of a bound that holds only
on an idle machine, tests measure the starvation itself: Linux accounts, per thread, the time
it spent runnable but waiting for a CPU (`/proc/PID/task/TID/schedstat`, second field, in ns;
kernel documentation "scheduler statistics"). Every full tick a thread of the process waited
for a CPU may explain one late frame, so a bound becomes

    late <= base + ceil(waiting_seconds * fps)

which is the strict `base` when nothing waited. In-process tests watch only the threads that
make frames on time (the clock and the draw threads); for another process every thread is
summed, which over-counts and only makes the allowance generous on a loaded machine: it stays
zero-width on an idle one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _run_delay_ns(tasks: list[Path]) -> dict[str, int]:
    out = {}
    for f in tasks:
        try:
            out[str(f)] = int(f.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended while we read
    return out


def _schedstat_files(pid: int) -> list[Path]:
    """/proc/PID/task/*/schedstat of every thread of pid; none when the process has ended (a
    child listed a moment ago may be gone before its task folder is read)."""
    try:
        return list(Path(f"/proc/{pid}/task").glob("*/schedstat"))
    except OSError:
        return []


def run_delay_seconds(pid: int | None = None) -> float:
    """Total seconds the live threads of `pid` (default: this process) have waited on a run
    queue since they started; 0.0 where schedstat is not available."""
    return sum(_run_delay_ns(_schedstat_files(pid or os.getpid())).values()) / 1e9


class Starvation:
    """Seconds of CPU a process was denied over a window: `with Starvation() as s: ...`, then
    `s.seconds`, or `s = Starvation(...).start()` ... `s.stop()`.

    pid: watch another process (every thread; `children=True` adds its descendants, e.g. the
    ffmpeg encoders); threads: instead watch these name prefixes of this process's Python threads
    (e.g. ("dhlive-tick", "dhlive-draw")), the tight measure for in-process sessions.
    poll_s: sample in a background thread this often, so time of threads and processes that end
    inside the window (a process being stopped) is kept up to their last sample.
    `allowed(base, fps)` is the late-frame bound of the module docstring.
    """

    def __init__(self, pid: int | None = None, threads: tuple[str, ...] | None = None,
                 children: bool = False, poll_s: float | None = None):
        self.pid = pid or os.getpid()
        self.threads = threads
        self.children = children
        self.poll_s = poll_s
        self.seconds = 0.0
        self._base: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._tids: list[int] | None = None
        self._done = None
        self._poller = None

    def _tasks(self) -> list[Path]:
        if self._tids is not None:
            return [Path(f"/proc/{self.pid}/task/{t}/schedstat") for t in self._tids]
        pids = [self.pid]
        if self.children:
            import psutil

            try:
                pids += [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
            except psutil.Error:
                pass
        return [f for p in pids for f in _schedstat_files(p)]

    def _sample(self) -> None:
        self._seen.update(_run_delay_ns(self._tasks()))

    def __enter__(self) -> "Starvation":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Starvation":
        """Open the window now (what `with` does)."""
        import threading

        if self.threads is not None:
            self._tids = [t.native_id for t in threading.enumerate()
                          if t.name.startswith(self.threads) and t.native_id is not None]
        self._base = _run_delay_ns(self._tasks())
        self._seen = dict(self._base)
        if self.poll_s:
            self._done = threading.Event()

            def poll():
                while not self._done.wait(self.poll_s):
                    self._sample()

            self._poller = threading.Thread(target=poll, name="test-starvation-poll", daemon=True)
            self._poller.start()
        return self

    def stop(self) -> float:
        """End the window now; returns the seconds waited (tasks that started inside the window
        count from zero)."""
        if self._poller is not None:
            self._done.set()
            self._poller.join()
            self._poller = None
        self._sample()
        self.seconds = sum(v - self._base.get(k, 0) for k, v in self._seen.items()) / 1e9
        return self.seconds

    def allowed(self, base: float, fps: int = 25) -> float:
        return base + math.ceil(self.seconds * fps)
