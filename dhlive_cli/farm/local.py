"""LocalPool: farm workers as processes on this machine (multiprocessing, spawn start).

Each worker process builds one JobRenderer when it starts (model loaded once) and renders the
jobs it is handed one at a time, over its own pipe. Workers ignore Ctrl+C (the driver decides)
and turn SIGTERM into a clean stop of the job in hand, so stopping a run leaves no encoder
behind; a worker whose driver was killed outright stops itself the same way (_watch_driver).
A worker that dies (killed, out of memory) loses only the job it had: that job is started again
on a fresh worker, at most MAX_ATTEMPTS times, while the other workers go on with theirs.

Why not concurrent.futures.ProcessPoolExecutor (used until 2026-12-02): one dead worker breaks
the whole executor, which terminates the other workers too; their jobs were started again and
counted as attempts, so a job that kept killing its worker (out of memory) could use up the
attempts of good jobs running beside it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import wait as wait_ready

from dhlive_cli.farm.worker import JobRenderer
from dhlive_cli.interrupts import interrupts_held

MAX_ATTEMPTS = 3
CLOSE_S = 10.0  # how long idle workers get to exit at the end of a run
ABORT_S = 5.0  # how long a stopped run's workers get to stop their render cleanly

# The renderer of a worker process, set by _init_worker when it starts. One per process by design:
# the process is the worker, and its job loop (_worker_main) keeps no other state between jobs.
_renderer: JobRenderer | None = None


_busy = False  # this worker is inside a render (it has an encoder and a work file to clean up)


def _on_term(signum, frame):
    if _busy:
        raise KeyboardInterrupt  # the render stops cleanly and removes its work file
    # idle between jobs, blocked on its pipe: nothing to clean up, and an exception
    # there would only print a traceback on the user's terminal
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


def _init_worker(out_dir: str, model: str | None, device: str, threads: int, driver: int) -> None:
    """driver: the driver's pid, as the driver read it (read here, after the spawn's imports, a
    driver killed meanwhile would already read as init's, and the watch would never fire)."""
    global _renderer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    threading.Thread(target=_watch_driver, args=(driver,), name="dhlive-driver-watch", daemon=True).start()
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


def _worker_main(conn, initargs: tuple) -> None:
    """A worker process: jobs arrive on `conn` one at a time (None: stop), each answered with
    its result record. A render that raises (a bug, not a job's own problem: those are results)
    is answered with a failed record naming the error."""
    _init_worker(*initargs)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if job is None:
            return
        try:
            rec = _render(job)
        except KeyboardInterrupt:  # SIGTERM in a render: it stopped and removed its work file
            return
        except Exception as e:  # noqa: BLE001 - reported as the job's failure
            from dhlive_cli.farm.worker import one_line

            rec = _failed(job, f"worker error: {one_line(e)}", None)
            rec["pid"] = os.getpid()
        try:
            conn.send(rec)
        except (BrokenPipeError, OSError):
            return


def _failed(job: dict, error: str, attempt: int | None) -> dict:
    """A result record of a job that produced nothing (see JobRenderer.render)."""
    return {"job": job["index"], "output": job["output"], "status": "failed", "seconds": 0.0, "frames": 0,
            "samples": 0, "bytes": 0, "attempt": attempt, "node": None, "pid": None, "error": error}


class _Worker:
    """The driver's handle on one worker process: its pipe, and the job it has (job, attempt,
    submit time) or None while idle."""

    def __init__(self, ctx, initargs: tuple):
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, initargs), name="dhlive-batch-worker")
        self.proc.start()
        child.close()
        self.job: tuple[dict, int, float] | None = None

    def exited(self) -> bool:
        """The process has ended (its sentinel is ready; is_alive() cannot tell once something
        else reaped it)."""
        return bool(wait_ready([self.proc.sentinel], 0))


class LocalPool:
    """`workers` processes; submit() at most free_slots() jobs, collect finished ones with wait().

    wait() returns (record, round_trip_s) pairs: the job's result record (see JobRenderer.render,
    plus `attempt`) and the seconds from submit() to the result reaching the driver. Workers are
    started as jobs need them and kept until close(); one that dies is replaced when a job
    needs it.
    """

    kind = "local"

    def __init__(self, out_dir, *, workers: int, model: str | None = None, device: str = "auto",
                 threads: int = 1):
        self.workers = max(1, int(workers))
        self._initargs = (str(out_dir), None if model is None else str(model), device, threads, os.getpid())
        self._ctx = multiprocessing.get_context("spawn")  # fork would copy the driver's threads' locks
        self._pool: list[_Worker] = []
        self._queue: deque[tuple[dict, int, float]] = deque()  # submitted, not handed to a worker yet
        self._settled: list[tuple[dict, float]] = []  # wait()'s next answer (a job that failed for good)

    def _busy(self) -> list[_Worker]:
        return [w for w in self._pool if w.job is not None]

    def free_slots(self) -> int:
        return self.workers - len(self._busy()) - len(self._queue)

    def running(self) -> int:
        return len(self._busy()) + len(self._queue) + len(self._settled)

    def live_workers(self) -> int:
        return self.workers

    def submit(self, job: dict, attempt: int = 1) -> None:
        self._queue.append((job, attempt, time.monotonic()))
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand queued jobs to idle workers (started as needed, up to `workers`); a worker found
        dead on the way is dropped, and the job it was given goes to the next one."""
        while self._queue:
            w = next((w for w in self._pool if w.job is None), None)
            if w is None:
                if len(self._pool) >= self.workers:
                    return
                w = _Worker(self._ctx, self._initargs)
                self._pool.append(w)
            if w.exited():  # died while idle: its job would be lost at once
                self._drop(w)
                continue
            job, attempt, t0 = self._queue[0]
            try:
                w.conn.send(job)
            except (BrokenPipeError, ConnectionResetError, OSError):  # died while idle
                self._drop(w)
                continue
            self._queue.popleft()
            w.job = (job, attempt, t0)

    def _drop(self, w: _Worker) -> None:
        self._pool.remove(w)
        w.conn.close()
        if not w.exited():  # its pipe broke but it lives on
            try:
                w.proc.kill()
            except ProcessLookupError:  # pragma: no cover
                pass
        w.proc.join(1)

    def _take(self, w: _Worker, out: list) -> bool:
        """Read w's answer into out if one has arrived; False when none is there."""
        try:
            if not w.conn.poll():
                return False
            rec = w.conn.recv()
        except (EOFError, OSError):
            return False
        job, attempt, t0 = w.job
        w.job = None
        rec["attempt"] = attempt
        out.append((rec, time.monotonic() - t0))
        return True

    def wait(self, timeout: float) -> list[tuple[dict, float]]:
        self._dispatch()
        if self._settled:
            out, self._settled = self._settled, []
            return out
        busy = self._busy()
        if not busy:
            return []
        ready = wait_ready([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout)
        out: list[tuple[dict, float]] = []
        for w in busy:
            if (w.conn in ready or w.proc.sentinel in ready) and not self._take(w, out):
                # ready without an answer: its pipe's end was closed or it exited, with this job
                # in hand; only this job starts again
                job, attempt, _ = w.job
                w.job = None
                self._drop(w)
                self._lost(job, attempt, out)
        for w in [w for w in self._pool if w.job is None and w.exited()]:
            self._drop(w)  # died while idle: a new one starts when a job needs it
        self._dispatch()
        return out

    def _lost(self, job: dict, attempt: int, out: list) -> None:
        if attempt < MAX_ATTEMPTS:
            self._queue.append((job, attempt + 1, time.monotonic()))
        else:
            out.append((_failed(job, f"worker process died {attempt} times while rendering this job", attempt), 0.0))

    def finished(self) -> list[tuple[dict, float]]:
        """Results that reached the driver and were not taken by wait() yet, as wait() returns
        them; jobs that were stopped or lost give none. For a run that is stopping: what
        finished in the meantime is still recorded."""
        out, self._settled = self._settled, []
        for w in self._busy():
            self._take(w, out)
        return out

    def close(self) -> None:
        """The workers (idle: the driver has taken every result) exit; one that does not within
        CLOSE_S (stopped, wedged) is killed. Ctrl+C and SIGTERM wait until this is done: cut
        short, it left workers that the interpreter's exit then waited for without end."""
        with interrupts_held():
            for w in self._pool:
                try:
                    w.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            self._reap(CLOSE_S)

    def abort(self) -> None:
        """Stop now: queued jobs are dropped, running ones stopped (their work files removed),
        and a worker still there after ABORT_S (stopped with SIGSTOP, wedged) is killed. A second
        Ctrl+C waits until this is done (it had cut the wait short, before the kill)."""
        with interrupts_held():
            self._queue.clear()
            for w in self._pool:  # SIGTERM: a render stops cleanly (see _on_term)
                try:
                    os.kill(w.proc.pid, signal.SIGTERM)
                except (ProcessLookupError, TypeError):
                    pass
            self._reap(ABORT_S)

    def _reap(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        for w in self._pool:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()  # SIGKILL ends a stopped process too
                w.proc.join(1)
            w.conn.close()
        self._pool.clear()


__all__ = ["LocalPool", "MAX_ATTEMPTS"]
