"""BatchRun: hands jobs to a pool, records each result as it arrives, keeps the tallies.

The tallies are read as one lock-guarded snapshot by the progress bar and by the driver's
/metrics endpoint (dhlive_batch_jobs{state}, dhlive_batch_jobs_per_minute,
dhlive_batch_eta_seconds, dhlive_frames_total of finished jobs).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from dhlive_cli.farm.jobs import Job
from dhlive_cli.farm.results import ResultsLog


@dataclass
class Tally:
    """Job counts of one run; `skipped` are complete from an earlier run (--resume)."""

    total: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    running: int = 0
    workers: int = 0
    frames: int = 0
    started_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict:
        """Counts, jobs per minute over this run's finished jobs, ETA in seconds (None until
        a job has finished), frames of finished jobs (at the jobs' fps)."""
        with self._lock:
            elapsed = max(time.monotonic() - self.started_at, 1e-9)
            finished = self.ok + self.failed
            pending = self.total - self.skipped - finished - self.running
            rate = finished / elapsed * 60.0
            left = self.total - self.skipped - finished
            return {
                "jobs": {"total": self.total, "skipped": self.skipped, "ok": self.ok, "failed": self.failed,
                         "running": self.running, "pending": max(0, pending)},
                "jobs_per_min": rate, "eta_s": (left / rate * 60.0) if finished else None,
                "frames": self.frames, "fps": self.frames / elapsed, "elapsed_s": elapsed,
                "workers": self.workers,
            }


class BatchRun:
    """Runs `jobs` on `pool` (LocalPool or RayPool), writing each result to `log` as it arrives.

    `skip` holds output names already complete (from ResultsLog.open); they are not rendered.
    run() returns the records of this run in finishing order; KeyboardInterrupt aborts the
    pool (running jobs are stopped, their work files removed) and propagates.
    """

    def __init__(self, jobs: list[Job], pool, log: ResultsLog, skip: set[str] = frozenset()):
        self.jobs = jobs
        self.pool = pool
        self.log = log
        self.todo = [j for j in jobs if j.output not in skip]
        self.tally = Tally(total=len(jobs), skipped=len(jobs) - len(self.todo))
        self.records: list[dict] = []
        self.overheads_s: list[float] = []

    def run(self, on_tick=None, tick_s: float = 0.25) -> list[dict]:
        pending = deque(j.to_dict() for j in self.todo)
        pool, tally = self.pool, self.tally
        seen: set[tuple] = set()
        try:
            while pending or pool.running():
                while pending and pool.free_slots() > 0:
                    pool.submit(pending.popleft())
                for rec, round_trip in pool.wait(tick_s):
                    self._record(rec, round_trip, seen)
                with tally._lock:
                    tally.running = pool.running()
                    tally.workers = pool.live_workers()
                if on_tick is not None:
                    on_tick(tally.snapshot())
        except BaseException:
            # a job that finished just before the stop is written down, not left as an output
            # without a result line; then the rest is stopped (work files removed)
            try:
                for rec, round_trip in pool.finished():
                    self._record(rec, round_trip, seen)
            except Exception:  # noqa: BLE001 - the stop goes on; what cannot be read is rendered on --resume
                pass
            finally:
                pool.abort()
            raise
        return self.records

    def _record(self, rec: dict, round_trip: float, seen: set) -> None:
        tally = self.tally
        self.log.write(rec)
        self.records.append(rec)
        worker = (rec.get("node"), rec.get("pid"))
        # a worker's first job also waited for the worker to start: not per-job overhead
        if rec["status"] == "ok" and round_trip > 0 and worker in seen:
            self.overheads_s.append(max(0.0, round_trip - rec["seconds"]))
        seen.add(worker)
        with tally._lock:
            if rec["status"] == "ok":
                tally.ok += 1
                tally.frames += rec["frames"]
            else:
                tally.failed += 1

    def overhead_ms(self) -> float | None:
        """Median of (round trip seen by the driver - render time on the worker) over ok jobs,
        a worker's first job left out: what the pool adds per job (transport, result), in ms."""
        return round(statistics.median(self.overheads_s) * 1000.0, 1) if self.overheads_s else None


__all__ = ["BatchRun", "Tally"]
