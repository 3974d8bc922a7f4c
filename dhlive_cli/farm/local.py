"""LocalPool: farm workers as processes on this machine (concurrent.futures, spawn start).

Each worker process builds one JobRenderer when it starts (model loaded once) and renders the
jobs it is handed one at a time. Workers ignore Ctrl+C (the driver decides) and turn SIGTERM
into a clean stop of the job in hand, so stopping a run leaves no encoder behind; a worker
whose driver was killed outright stops itself the same way (_watch_driver). A worker
that dies (killed, out of memory) breaks the executor: the jobs that were in flight are
started again on a fresh set of workers, each job at most MAX_ATTEMPTS times.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures.process import BrokenProcessPool

from dhlive_cli.farm.worker import JobRenderer

MAX_ATTEMPTS = 3

# The renderer of a worker process, set by the pool's initializer. One per process by design:
# the process is the worker, and the executor gives no other place to keep state between calls.
_renderer: JobRenderer | None = None


_busy = False  # this worker is inside a render (it has an encoder and a work file to clean up)


def _on_term(signum, frame):
    if _busy:
        raise KeyboardInterrupt  # the render stops cleanly and removes its work file
    # idle between jobs, blocked on the executor's queue: nothing to clean up, and an exception
    # there would only print the executor's traceback on the user's terminal
    os._exit(0)


DRIVER_POLL_S = 1.0  # how often a worker looks whether its driver is still there
DRIVER_GONE_GRACE_S = 30.0  # then SIGTERM's clean stop has this long before the worker exits anyway


def _watch_driver(driver: int) -> None:
    """A driver killed outright (SIGKILL, the OOM killer) runs no clean-up: its workers went on
    rendering, then waited for ever on a queue nobody fed (about 95 MB each, beside the workers
    of a `--resume` run). A worker whose parent is no longer the driver (it was re-parented)
    stops itself the SIGTERM way (a render in progress removes its work file), and exits for
    certain DRIVER_GONE_GRACE_S later."""
    while os.getppid() == driver:
        time.sleep(DRIVER_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + DRIVER_GONE_GRACE_S
    while time.monotonic() < deadline:  # the job in hand has stopped and cleaned up: go now
        time.sleep(0.2)
        if not _busy:
            os._exit(0)
    os._exit(1)


def _init_worker(out_dir: str, model: str | None, device: str, threads: int) -> None:
    global _renderer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    threading.Thread(target=_watch_driver, args=(os.getppid(),), name="dhlive-driver-watch", daemon=True).start()
    _renderer = JobRenderer(out_dir, model=model, device=device, threads=threads)
    try:
        _renderer.warm()
    except Exception:  # noqa: BLE001 - reported by the first job, with its one-line message
        pass


def _render(job: dict) -> dict:
    global _busy
    assert _renderer is not None
    _busy = True
    try:
        return _renderer.render(job)
    finally:
        _busy = False


class LocalPool:
    """`workers` processes; submit() at most free_slots() jobs, collect finished ones with wait().

    wait() returns (record, round_trip_s) pairs: the job's result record (see JobRenderer.render,
    plus `attempt`) and the seconds from submit() to the result reaching the driver.
    """

    kind = "local"

    def __init__(self, out_dir, *, workers: int, model: str | None = None, device: str = "auto",
                 threads: int = 1):
        self.workers = max(1, int(workers))
        self._initargs = (str(out_dir), None if model is None else str(model), device, threads)
        self._ctx = multiprocessing.get_context("spawn")  # fork would copy the driver's threads' locks
        self._ex = self._new_executor()
        self._inflight: dict[cf.Future, tuple[dict, int, float]] = {}
        self._retry: deque[tuple[dict, int]] = deque()
        self._settled: list[tuple[dict, float]] = []  # wait()'s next answer, from a recovery in submit()

    def _new_executor(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self._ctx,
                                      initializer=_init_worker, initargs=self._initargs)

    def free_slots(self) -> int:
        return self.workers - len(self._inflight) - len(self._retry)

    def running(self) -> int:
        return len(self._inflight) + len(self._retry) + len(self._settled)

    def live_workers(self) -> int:
        return self.workers

    def submit(self, job: dict, attempt: int = 1) -> None:
        try:
            fut = self._ex.submit(_render, job)
        except BrokenProcessPool:
            # a worker died and the executor knew before the driver saw a failed future: this job
            # never started (same attempt, first in line); the ones in flight are settled now
            self._retry.appendleft((job, attempt))
            self._recover()
            return
        self._inflight[fut] = (job, attempt, time.monotonic())

    def wait(self, timeout: float) -> list[tuple[dict, float]]:
        while self._retry and len(self._inflight) < self.workers and not self._settled:
            self.submit(*self._retry.popleft())
        if self._settled:  # results and failures settled by a recovery inside submit()
            out, self._settled = self._settled, []
            return out
        if not self._inflight:
            return []
        done, _ = cf.wait(list(self._inflight), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        broken = False
        for fut in done:
            job, attempt, t0 = self._inflight.pop(fut)
            try:
                rec = fut.result()
            except BrokenProcessPool:
                broken = True
                self._lost(job, attempt, out)
                continue
            rec["attempt"] = attempt
            out.append((rec, time.monotonic() - t0))
        if broken:
            self._recover()
            out += self._settled
            self._settled = []
        return out

    def _recover(self) -> None:
        """The executor is broken: settle every job in flight (a result that arrived is kept, a
        job that went down with the executor is started again or, at its last attempt, failed)
        into self._settled, and start a fresh executor."""
        # a broken executor fails every future it has not finished: this wait is short
        done, _ = cf.wait(list(self._inflight), timeout=60)
        for fut, (job, attempt, t0) in list(self._inflight.items()):
            try:
                rec = fut.result(timeout=0) if fut in done else None
            except BaseException:  # noqa: BLE001 - BrokenProcessPool, or a call that never ran
                rec = None
            if rec is None:
                self._lost(job, attempt, self._settled)
            else:
                rec["attempt"] = attempt
                self._settled.append((rec, time.monotonic() - t0))
        self._inflight.clear()
        self._ex.shutdown(wait=True, cancel_futures=True)
        self._ex = self._new_executor()

    def _lost(self, job: dict, attempt: int, out: list) -> None:
        if attempt < MAX_ATTEMPTS:
            self._retry.append((job, attempt + 1))
        else:
            out.append(({"job": job["index"], "output": job["output"], "status": "failed", "seconds": 0.0,
                         "frames": 0, "samples": 0, "bytes": 0, "attempt": attempt, "node": None, "pid": None,
                         "error": f"worker process died {attempt} times while rendering this job"}, 0.0))

    def finished(self) -> list[tuple[dict, float]]:
        """Results that reached the driver and were not taken by wait() yet, as wait() returns
        them; jobs that were stopped or lost give none. For a run that is stopping: what
        finished in the meantime is still recorded."""
        out, self._settled = self._settled, []
        for fut in [f for f in self._inflight if f.done()]:
            job, attempt, t0 = self._inflight.pop(fut)
            try:
                rec = fut.result()
            except BaseException:  # noqa: BLE001 - stopped, cancelled or lost: nothing to record
                continue
            rec["attempt"] = attempt
            out.append((rec, time.monotonic() - t0))
        return out

    def close(self) -> None:
        self._ex.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop now: queued jobs are dropped, running ones stopped (their work files removed)."""
        # the executor has no public way to stop a running call (and forgets its processes on
        # shutdown): SIGTERM makes a worker's render stop cleanly (see _on_term)
        procs = list((getattr(self._ex, "_processes", None) or {}).values())
        self._ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except (ProcessLookupError, TypeError):
                pass
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(1)


__all__ = ["LocalPool", "MAX_ATTEMPTS"]
