"""RayPool: farm workers as Ray actors, on this machine (`--ray local`) or on a cluster.

Each actor holds one JobRenderer (model and avatars loaded once) and renders one job at a
time; the driver hands a job only to an actor that said it is ready, so a worker that cannot
be placed (no node with the CPUs/GPU it asks for) holds no job. Only job descriptions and
result records (a few hundred bytes) pass through Ray; audio and video go by path.

Faults: actors are restarted by Ray (`max_restarts`) wherever the cluster has room, and the job
a lost actor was rendering is handed by the driver to any ready actor (up to MAX_ATTEMPTS
attempts). Ray's own actor-task retry is not used because a retried call waits for its own
actor's restart, which never comes when the lost node's capacity is gone; a lost job must go
to the workers that are still there. A job is recorded once, from the attempt that returned,
and its output appears only by an atomic rename of a finished file, so a job rendered twice
(a lost reply) still yields one identical file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections import deque

from dhlive_cli.errors import DependencyError, EngineError, InputError
from dhlive_cli.farm.worker import JobRenderer, one_line

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
ACTOR_RESTARTS = 3
START_TIMEOUT_S = 180.0  # no worker ready for this long (and none busy): the cluster has no room
LOCAL_OBJECT_STORE_MB = 100  # --ray local: only small records use the object store


def import_ray():
    try:
        import ray
    except ImportError:
        raise DependencyError("--ray needs the Ray package: pip install 'dhlive[farm]'") from None
    return ray


class RenderActor:
    """The actor body (wrapped with ray.remote at run time, so importing this needs no Ray)."""

    def __init__(self, out_dir: str, model: str | None, device: str, threads: int):
        import ray

        self._r = JobRenderer(out_dir, model=model, device=device, threads=threads)
        # several nodes may share a host name (containers, or a test cluster on one machine)
        self._r.node = f"{self._r.node}/{ray.get_runtime_context().get_node_id()[:12]}"

    def ready(self) -> dict:
        import ray

        info = self._r.warm()
        info["restarted"] = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        return info

    def render(self, job: dict) -> dict:
        return self._r.render(job)


class RayPool:
    """`workers` actors of `cpus` CPUs (and one GPU each with device="cuda").

    address: "local" starts a private single-node Ray for this run (stopped by close());
    anything else is passed to ray.init (a "ray://" client URL, HOST:PORT of a head, "auto").
    wait() returns (record, round_trip_s) pairs like LocalPool.
    """

    kind = "ray"

    def __init__(self, address: str, out_dir, *, workers: int | None, cpus: float = 1.0,
                 model: str | None = None, device: str = "auto", threads: int = 1):
        ray = self.ray = import_ray()
        import logging as _logging

        held = _Held()  # what Ray wrote to stderr while connecting (read for a hint on failure)
        self._own = address == "local"
        self.cpus = float(cpus)
        if self.cpus <= 0:
            raise InputError("--cpus-per-worker must be positive")
        gpus = 1 if device == "cuda" else 0
        try:
            if self._own:
                n = workers or os.cpu_count() or 1
                # a private one-node cluster: small object store (only records pass), no
                # dashboard, and every Ray port on loopback
                ray.init(num_cpus=max(1, math.ceil(n * self.cpus)), num_gpus=n * gpus or None,
                         include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_MB * 2**20,
                         _node_ip_address="127.0.0.1", log_to_driver=False,
                         logging_level=_logging.ERROR)  # a private cluster: its notices are ours to keep
            else:
                _check_reachable(address)
                with _stderr_held() as held:
                    ray.init(address=address, log_to_driver=False, logging_level=_logging.WARNING)
        except EngineError:
            raise
        except Exception as e:  # noqa: BLE001 - ray.init raises bare Exception too (a node slow to start)
            with contextlib.suppress(Exception):
                ray.shutdown()  # whatever part of a private cluster did start
            if self._own:
                raise EngineError(f"--ray local: cannot start Ray on this machine: {one_line(e)}") from None
            hint = ""
            if "InvalidAuthToken" in held.text:
                hint = (" (the cluster uses token authentication: set RAY_AUTH_MODE=token and give this "
                        "machine the cluster's token, see `ray get-auth-token`)")
            raise EngineError(f"--ray {address}: cannot connect: {one_line(e)}{hint}") from None
        if workers is None:  # an existing cluster: as many workers as its CPUs hold
            total = ray.cluster_resources().get("CPU", 1.0)
            workers = max(1, int(total // self.cpus))
        self.workers = int(workers)
        self._actor_cls = ray.remote(RenderActor).options(
            num_cpus=self.cpus, num_gpus=gpus, max_restarts=ACTOR_RESTARTS, max_task_retries=0,
            scheduling_strategy="SPREAD")
        self._args = (str(out_dir), None if model is None else str(model), device, int(threads))
        self._actors: dict[int, object] = {}
        self._idle: deque[int] = deque()
        self._starting: dict[object, int] = {}  # ready() ref -> actor id
        self._inflight: dict[object, tuple[int, dict, int, float]] = {}  # render ref -> (actor, job, attempt, t0)
        self._retry: deque[tuple[dict, int]] = deque()
        self._next_id = 0
        self._spawns_left = 3 * self.workers  # replacements for workers lost at start
        self._start_error: str | None = None
        self._waiting_since = time.monotonic()
        self.nodes: set[str] = set()
        for _ in range(self.workers):
            self._spawn()

    # ------------------------------------------------------------------ actors
    def _spawn(self) -> None:
        aid = self._next_id
        self._next_id += 1
        actor = self._actor_cls.remote(*self._args)
        self._actors[aid] = actor
        self._starting[actor.ready.remote()] = aid

    def _drop(self, aid: int) -> None:
        actor = self._actors.pop(aid, None)
        if aid in self._idle:
            self._idle.remove(aid)
        if actor is not None:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def free_slots(self) -> int:
        return len(self._idle) - len(self._retry)

    def running(self) -> int:
        return len(self._inflight) + len(self._retry)

    def live_workers(self) -> int:
        return len(self._idle) + len(self._inflight)

    def submit(self, job: dict, attempt: int = 1) -> None:
        aid = self._idle.popleft()
        ref = self._actors[aid].render.remote(job)
        self._inflight[ref] = (aid, job, attempt, time.monotonic())

    # ------------------------------------------------------------------ events
    def wait(self, timeout: float) -> list[tuple[dict, float]]:
        ray = self.ray
        while self._retry and self._idle:
            self.submit(*self._retry.popleft())
        refs = list(self._starting) + list(self._inflight)
        out: list[tuple[dict, float]] = []
        if not refs:
            self._check_stalled()
            return out
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # take everything that is done by now, not just the first
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref in self._starting:
                self._on_ready(ref)
            else:
                self._on_done(ref, out)
        if self._idle or self._inflight:
            self._waiting_since = time.monotonic()
        else:
            self._check_stalled()
        return out

    def _on_ready(self, ref) -> None:
        ray = self.ray
        aid = self._starting.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.RayActorError as e:  # lost while starting: Ray restarts it or it is gone
            self._drop(aid)
            if self._spawns_left > 0:
                self._spawns_left -= 1
                self._spawn()
            else:  # the same failure again and again (dhlive missing on a node, out of memory)
                self._start_error = one_line(e)
            log.warning("a worker was lost while starting: %s", one_line(e))
            return
        except ray.exceptions.RayTaskError as e:  # its __init__/warm failed: the same will fail everywhere
            self._start_error = one_line(e.cause if getattr(e, "cause", None) else e)
            self._drop(aid)
            return
        self.nodes.add(info.get("node", "?"))
        self._idle.append(aid)

    def _on_done(self, ref, out: list) -> None:
        ray = self.ray
        aid, job, attempt, t0 = self._inflight.pop(ref)
        try:
            rec = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # an exception that escaped render(): a bug, not the input's
            rec = _failed(job, attempt, one_line(e.cause if getattr(e, "cause", None) else e))
            self._idle.append(aid)
        except ray.exceptions.RayError as e:  # the actor or its node was lost mid-job
            log.warning("job %s: worker lost (%s); starting it again", job["index"], one_line(e))
            # Ray restarts the actor where there is room; until it says ready it gets no job
            self._starting[self._actors[aid].ready.remote()] = aid
            if attempt < MAX_ATTEMPTS:
                self._retry.append((job, attempt + 1))
            else:
                out.append((_failed(job, attempt, f"worker lost {attempt} times while rendering this job"), 0.0))
            return
        else:
            self._idle.append(aid)
        rec["attempt"] = attempt
        out.append((rec, time.monotonic() - t0))

    def _check_stalled(self) -> None:
        if self._idle or self._inflight:
            return
        if self._start_error is not None and not self._starting:
            raise EngineError(f"no Ray worker could start: {self._start_error}")
        if time.monotonic() - self._waiting_since > START_TIMEOUT_S:
            raise EngineError(f"no Ray worker became ready in {START_TIMEOUT_S:.0f} s: no node has "
                              f"{self.cpus:g} free CPU(s){' and a GPU' if self._args[2] == 'cuda' else ''} "
                              "(see `ray status`)")

    def finished(self) -> list[tuple[dict, float]]:
        """Results of jobs that are done by now and were not taken by wait() yet (for a run that
        is stopping); jobs still running give none."""
        refs = list(self._inflight)
        out: list[tuple[dict, float]] = []
        if refs:
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                self._on_done(ref, out)
        return out

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        for aid in list(self._actors):
            self._drop(aid)
        if self._own or self.ray.is_initialized():
            self.ray.shutdown()

    def abort(self) -> None:
        """Stop now: running jobs are killed with their workers (work files are swept by the
        results log), queued ones are dropped."""
        self.close()


class _Held:
    text = ""


@contextlib.contextmanager
def _stderr_held():
    """Keep what is written to file descriptor 2 (by Ray's C++ core too) inside the block; let it
    through afterwards when the block succeeds, drop it when it raises.

    ray.init to a head that does not answer as expected logs one warning line a second for about
    20 s before it gives up; the one `error:` line we print says it instead (see RayPool)."""
    import tempfile

    held = _Held()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        ok = False
        try:
            yield held
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            held.text = f.read().decode("utf-8", "replace")
            if ok and held.text:
                sys.stderr.write(held.text)
                sys.stderr.flush()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT head that does not answer is an error now (ray.init would retry for minutes)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray:// client URLs: Ray resolves those itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise EngineError(f"--ray {address}: cannot connect: {e.strerror or e}") from None


def _failed(job: dict, attempt: int, error: str) -> dict:
    return {"job": job["index"], "output": job["output"], "status": "failed", "seconds": 0.0, "frames": 0,
            "samples": 0, "bytes": 0, "error": error, "node": None, "pid": None, "attempt": attempt}


__all__ = ["RayPool", "RenderActor", "import_ray"]
