"""Sampling a process: psutil figures of it and its children, and the engine figures a dhlive
process serves as Prometheus text (dhlive_cli.metrics), found through its discovery file.

Memory in MB (2**20 bytes), CPU in percent of one core, times in seconds.
"""

from __future__ import annotations

import time

MB = 2**20


class TargetGone(Exception):
    """The watched process exited (or its pid now belongs to another process)."""


class ProcessProbe:
    """psutil figures of one process and its children, with per-child CPU % kept across samples."""

    def __init__(self, pid: int):
        import psutil

        from dhlive_cli.errors import InputError

        self._psutil = psutil
        try:
            self.proc = psutil.Process(pid)
            with self.proc.oneshot():
                if self.proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(pid)
                self.name = self.proc.name()
                if self.proc.memory_info().vms == 0 and not self.proc.cmdline():
                    raise InputError(f"--pid {pid}: {self.name} is a kernel thread: it has no memory of its "
                                     "own to watch")
                self.proc.cpu_percent(None)  # primes the counter: the first sample's CPU % is real
                self.proc.num_threads()
        except psutil.AccessDenied:
            raise InputError(f"--pid {pid}: permission denied (watch it as its owner or as root)") from None
        except psutil.NoSuchProcess:
            raise InputError(f"--pid {pid}: no such process") from None
        try:
            # shown on the panel and in --json: a stream key on the watched command line stays hidden
            from dhlive_cli.redact import redact_text
            self.cmdline = redact_text(" ".join(self.proc.cmdline()))
        except psutil.Error:
            self.cmdline = ""
        self.uss_ok = True
        self.fds_ok = True
        self._kids: dict[int, object] = {}

    def sample(self) -> dict:
        """One reading: rss_mb, uss_mb (None without ptrace rights), cpu_pct (since the last
        reading; 100 = one core), threads, fds (None when denied), children (list of pid, name,
        rss_mb, cpu_pct) and children_rss_mb (their sum). Raises TargetGone when the process
        exited or its pid was reused."""
        psutil = self._psutil
        p = self.proc
        try:
            if not p.is_running():  # also false when the pid was reused by a newer process
                raise TargetGone
            with p.oneshot():
                if p.status() == psutil.STATUS_ZOMBIE:
                    raise TargetGone
                rss = p.memory_info().rss / MB
                cpu = p.cpu_percent(None)
                threads = p.num_threads()
                fds = None
                if self.fds_ok:
                    try:
                        fds = p.num_fds()
                    except psutil.AccessDenied:
                        self.fds_ok = False
                uss = None
                if self.uss_ok:
                    try:
                        uss = p.memory_full_info().uss / MB
                    except psutil.AccessDenied:
                        self.uss_ok = False  # smaps needs ptrace rights; stop asking every second
            # a running process always has resident pages: 0 MB is one that exits between the
            # status read and the memory read, a zombie by then or still tearing down (its memory
            # already released, its state not yet Z: seen under load, recorded as a 0 MB sample)
            if rss == 0:
                raise TargetGone
            children = p.children(recursive=True)
        except (psutil.NoSuchProcess, ProcessLookupError):
            raise TargetGone from None
        kids, kids_rss = [], 0.0
        seen = set()
        for c in children:
            c = self._kids.setdefault(c.pid, c)  # the same object, so cpu_percent has a baseline
            seen.add(c.pid)
            try:
                with c.oneshot():
                    k = {"pid": c.pid, "name": c.name(), "rss_mb": round(c.memory_info().rss / MB, 3),
                         "cpu_pct": round(c.cpu_percent(None), 1)}
            except psutil.Error:
                continue
            kids.append(k)
            kids_rss += k["rss_mb"]
        for gone in set(self._kids) - seen:
            del self._kids[gone]
        return {"rss_mb": round(rss, 3), "uss_mb": None if uss is None else round(uss, 3),
                "cpu_pct": round(cpu, 1), "threads": threads, "fds": fds,
                "children": kids, "children_rss_mb": round(kids_rss, 3)}


_BATCH_GAUGES = {"dhlive_batch_jobs_per_minute": "jobs_per_min", "dhlive_batch_eta_seconds": "eta_s",
                 "dhlive_batch_workers": "workers"}  # metric name -> key of parse_metrics()["batch"]


def parse_metrics(text: str) -> dict:
    """Engine figures from dhlive's Prometheus text exposition (names from dhlive_cli.metrics).
    A batch driver's adds "batch": job counts by state (total, skipped, ok, failed, running,
    pending) and jobs_per_min, eta_s (seconds), workers."""
    from prometheus_client.parser import text_string_to_metric_families

    e: dict = {"queues": {}, "queue_capacity": {}}
    reconnects = None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name, labels, v = s.name, s.labels, s.value
            if name == "dhlive_info":
                e["command"] = labels.get("command")
                e["session"] = labels.get("session") or None
            elif name == "dhlive_fps":
                e["fps"] = v
            elif name == "dhlive_frames_total":
                e["frames"] = int(v)
            elif name == "dhlive_render_frames_planned":
                e["frames_planned"] = int(v)
            elif name == "dhlive_late_frames_total":
                e["late_frames"] = int(v)
            elif name == "dhlive_frame_seconds":
                q = labels.get("quantile")
                if q == "0.5":
                    e["frame_ms_p50"] = v * 1000.0
                elif q == "0.99":
                    e["frame_ms_p99"] = v * 1000.0
            elif name == "dhlive_queue_fill":
                e["queues"][labels.get("queue", "")] = v
            elif name == "dhlive_queue_capacity":
                e["queue_capacity"][labels.get("queue", "")] = v
            elif name == "dhlive_state" and v >= 0.5:
                e["state"] = labels.get("state")
            elif name == "dhlive_reconnects_total":
                reconnects = (reconnects or 0) + int(v)
            elif name == "dhlive_queued_speech_seconds":
                e["queued_speech_s"] = v
            elif name == "dhlive_latency_seconds":
                e["latency_ms"] = v * 1000.0
            elif name == "dhlive_snapshot_monotonic_seconds":
                e["snapshot_t"] = v
            elif name == "dhlive_resident_memory_bytes":
                e["rss_mb"] = v / MB
            elif name == "dhlive_batch_jobs":  # `dhlive batch`: jobs by state (total, ok, failed, ...)
                e.setdefault("batch", {})[labels.get("state", "")] = int(v)
            elif name in _BATCH_GAUGES:
                e.setdefault("batch", {})[_BATCH_GAUGES[name]] = v
    if reconnects is not None:
        e["reconnects"] = reconnects
    return e


class EngineScraper:
    """Finds a pid's metrics URL through its discovery file and scrapes it; None when it has none."""

    LOOKUP_EVERY_S = 5.0  # a session may start serving after the watch began

    def __init__(self, pid: int, timeout_s: float):
        import urllib.request

        self.pid = pid
        self.timeout_s = timeout_s
        self.url: str | None = None
        self.error: str | None = None
        self._next_lookup = 0.0
        # no proxies: $http_proxy must not route a loopback scrape through another host
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def scrape(self) -> dict | None:
        now = time.monotonic()
        if self.url is None:
            if now < self._next_lookup:
                return None
            self._next_lookup = now + self.LOOKUP_EVERY_S
            from dhlive_cli.metrics import read_discovery

            rec = read_discovery(self.pid)
            if rec is None:
                return None
            self.url = rec["metrics_url"]
        try:
            with self._opener.open(self.url, timeout=self.timeout_s) as r:
                text = r.read(4 * MB).decode("utf-8", "replace")
            e = parse_metrics(text)
        except Exception as ex:  # a dying or restarting server: show it, keep the process figures
            self.error = f"{type(ex).__name__}: {ex}"
            self.url = None  # look the file up again: it is gone if the server closed
            return None
        self.error = None
        return e



class FpsMeter:
    """Frames per second over the last sample interval, from the engine's frame counter.

    The engine's own `dhlive_fps` gauge is an average since its start: a render that slows
    down late shows it long after. add(t, frames) with t in seconds (monotonic) and the
    counter's value returns the rate since the previous call (None for the first, or when the
    counter went backwards: a restarted process).
    """

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None

    def add(self, t: float, frames: int | None) -> float | None:
        if frames is None:
            self._last = None
            return None
        last, self._last = self._last, (t, frames)
        if last is None or t <= last[0] or frames < last[1]:
            return None
        return (frames - last[1]) / (t - last[0])
