"""Prometheus metrics of a running session, served on loopback, plus a discovery file per process.

    server = MetricsServer(session.snapshot, command="live")   # starts serving at once
    server.url          # http://127.0.0.1:PORT/metrics
    server.close()      # stops the server, removes <runtime_dir>/dhlive/<pid>.json

Each server owns its CollectorRegistry and collector, so several servers (or tests) can live in
one process; nothing here is module-level mutable state. The figures are read from the session's
`snapshot()` at scrape time: no counter is updated on the hot path, and a scrape never takes a
lock the pipeline holds for longer than the snapshot copy.

The discovery file lets `dhlive monitor --pid PID` find the URL without being told the port. One
process normally runs one server (one server can carry all its sessions); if it runs several, the
file points at the most recently started one: closing an older server leaves the newer one's file
in place, closing the newest removes the file even while an older one still serves.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psutil
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

THREAD_NAME = "dhlive-metrics"
# states the live engine reports; any other state a snapshot names is exported too
KNOWN_STATES = ("idle", "talking")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


# ----------------------------------------------------------------------------- discovery files


def _fallback_dir(uid: int) -> Path:
    return Path("/tmp") / f"dhlive-{uid}"


def _usable_xdg() -> Path | None:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK | os.X_OK):
        return Path(xdg)
    return None


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR when set and writable, else /tmp/dhlive-<uid>."""
    return _usable_xdg() or _fallback_dir(os.getuid())


def discovery_path(pid: int) -> Path:
    """Where a process of this user with this environment writes its discovery file."""
    return runtime_dir() / "dhlive" / f"{int(pid)}.json"


def _private_dir(path: Path, uid: int, create: bool) -> bool:
    """True when `path` is a real directory owned by `uid` and closed to others.

    /tmp is shared: another user could pre-create /tmp/dhlive-<uid> (or plant a symlink) to read
    or redirect our files, so a directory we did not make ourselves is not trusted.
    """
    if create:
        try:
            path.mkdir(mode=0o700, parents=False, exist_ok=True)
        except OSError:
            return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not (st.st_mode & 0o022)


def _discovery_dir_for_writing() -> Path | None:
    uid = os.getuid()
    xdg = _usable_xdg()
    if xdg is not None and _private_dir(xdg / "dhlive", uid, create=True):
        return xdg / "dhlive"
    base = _fallback_dir(uid)
    if _private_dir(base, uid, create=True) and _private_dir(base / "dhlive", uid, create=True):
        return base / "dhlive"
    return None


def _candidate_dirs(pid: int) -> list[tuple[Path, int]]:
    """Directories (and the uid that must own them) where `pid` may have left its file.

    The monitor may run with another environment than the engine (an ssh shell with
    XDG_RUNTIME_DIR set, a systemd service without it), so both places are looked at.
    """
    me = os.getuid()
    out: list[tuple[Path, int]] = []
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        out.append((Path(xdg) / "dhlive", me))
    out.append((_fallback_dir(me) / "dhlive", me))
    try:
        owner = psutil.Process(pid).uids().real
    except (psutil.Error, OSError):
        owner = me
    if owner != me:
        out.append((_fallback_dir(owner) / "dhlive", owner))
    return out


def read_discovery(pid: int) -> dict | None:
    """The discovery record of `pid` ({pid, metrics_url, command, started}), or None.

    None also when the file is unreadable, malformed, points off loopback, or predates the
    process now holding that pid (the pid was reused after a crash left the file behind).
    """
    pid = int(pid)
    for d, uid in _candidate_dirs(pid):
        f = d / f"{pid}.json"
        if not f.is_file() or not _private_dir(d, uid, create=False):
            continue
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or rec.get("pid") != pid or not isinstance(rec.get("metrics_url"), str):
            continue
        if not _is_loopback_url(rec["metrics_url"]):
            continue
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            return None
        started = rec.get("started")
        if isinstance(started, (int, float)) and started < created - 2.0:
            continue
        return rec
    return None


def _is_loopback_url(url: str) -> bool:
    if not url.startswith("http://"):
        return False
    hostport = url[len("http://"):].split("/", 1)[0]
    host = hostport.rsplit(":", 1)[0] if not hostport.startswith("[") else hostport.split("]")[0] + "]"
    return host in _LOOPBACK_HOSTS


def _prune_stale(d: Path) -> None:
    """Remove files of processes that died without close() (kill -9): the dir stays small."""
    try:
        entries = list(d.glob("*.json"))
    except OSError:
        return
    for f in entries:
        try:
            if not psutil.pid_exists(int(f.stem)):
                f.unlink()
        except (ValueError, OSError):
            pass


# ----------------------------------------------------------------------------- collector


def _num(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


class SnapshotCollector(Collector):
    """Turns one snapshot dict (live or render) into metric families at scrape time."""

    def __init__(self, snapshot: Callable[[], dict], command: str):
        self._snapshot = snapshot
        self._command = command
        self._proc = psutil.Process()

    def describe(self):
        # no names up front: registering must not call snapshot() before the session is ready
        return []

    def collect(self) -> Iterator:
        info = InfoMetricFamily("dhlive", "dhlive process and session", labels=None)
        try:
            s = self._snapshot() or {}
        except Exception:  # a scrape must never take the server down; say so in the figures
            log.warning("metrics snapshot failed", exc_info=True)
            s = {}
            up = 0.0
        else:
            up = 1.0
        info.add_metric([], {"command": self._command, "session": str(s.get("session", ""))})
        yield info
        yield GaugeMetricFamily("dhlive_snapshot_ok", "1 when the session snapshot was read", value=up)

        frames = _num(s.get("frames", s.get("frames_done")))
        if frames is not None:
            yield CounterMetricFamily("dhlive_frames", "Frames produced since start", value=frames)
        planned = _num(s.get("frames_total"))
        if planned is not None:
            yield GaugeMetricFamily("dhlive_render_frames_planned", "Frames the render will produce", value=planned)
        late = _num(s.get("late_frames"))
        if late is not None:
            yield CounterMetricFamily("dhlive_late_frames", "Frames that missed their deadline", value=late)
        fps = _num(s.get("fps"))
        if fps is not None:
            yield GaugeMetricFamily("dhlive_fps", "Frames per second since start", value=fps)

        # a gauge, not a summary: the quantiles come from the engine's rolling window, and a
        # summary would promise cumulative _sum/_count we do not have
        q = GaugeMetricFamily("dhlive_frame_seconds", "Frame time quantile over the recent window",
                              labels=["quantile"])
        have_q = False
        for key, label in (("frame_ms_p50", "0.5"), ("frame_ms_p99", "0.99")):
            v = _num(s.get(key))
            if v is not None:
                q.add_metric([label], v / 1000.0)
                have_q = True
        if have_q:
            yield q

        yield from self._queues(s)
        yield from self._state(s)
        yield from self._outputs(s)
        yield from self._sessions(s)
        yield from self._batch(s)

        queued = _num(s.get("queued_speech_s"))
        if queued is not None:
            yield GaugeMetricFamily("dhlive_queued_speech_seconds", "Speech waiting to be spoken", value=queued)
        lat = _num(s.get("latency_ms_median"))
        if lat is not None:
            yield GaugeMetricFamily("dhlive_latency_seconds", "Median push-to-first-frame latency", value=lat / 1000.0)

        rss = _num(s.get("rss_mb"))
        if rss is not None:
            rss_bytes = rss * 2**20
        else:
            try:
                rss_bytes = float(self._proc.memory_info().rss)
            except psutil.Error:
                rss_bytes = None
        if rss_bytes is not None:
            yield GaugeMetricFamily("dhlive_resident_memory_bytes", "Resident memory of the process",
                                    value=rss_bytes)

    @staticmethod
    def _queues(s: dict):
        fill = GaugeMetricFamily("dhlive_queue_fill", "Items in a bounded queue", labels=["queue"])
        cap = GaugeMetricFamily("dhlive_queue_capacity", "Capacity of a bounded queue", labels=["queue"])
        n_fill = n_cap = 0
        qf = s.get("queue_fill")
        if isinstance(qf, dict):  # render: {name: (fill, max)}
            for name, v in qf.items():
                if isinstance(v, (tuple, list)) and len(v) == 2:
                    f, m = _num(v[0]), _num(v[1])
                else:
                    f, m = _num(v), None
                if f is not None:
                    fill.add_metric([str(name)], f)
                    n_fill += 1
                if m is not None:
                    cap.add_metric([str(name)], m)
                    n_cap += 1
        for i, o in enumerate(_outputs_of(s)):
            f = _num(o.get("queue_fill"))
            if f is not None:
                fill.add_metric([f"output{i}"], f)
                n_fill += 1
        if n_fill:
            yield fill
        if n_cap:
            yield cap

    @staticmethod
    def _state(s: dict):
        state = s.get("state")
        if not isinstance(state, str):
            return
        g = GaugeMetricFamily("dhlive_state", "1 for the state the session is in", labels=["state"])
        names = list(KNOWN_STATES) + ([state] if state not in KNOWN_STATES else [])
        for name in names:
            g.add_metric([name], 1.0 if name == state else 0.0)
        yield g

    @staticmethod
    def _sessions(s: dict):
        """Live with several sessions: each one's figures, labelled by session name, and the
        shared clock's (ticks, inference calls: one call per tick however many sessions)."""
        snaps = s.get("sessions")
        if isinstance(snaps, (list, tuple)):
            fams = (
                (CounterMetricFamily, "dhlive_session_frames", "Frames a session produced", "frames"),
                (CounterMetricFamily, "dhlive_session_late_frames", "Frames a session repeated because drawing fell behind", "late_frames"),
                (GaugeMetricFamily, "dhlive_session_fps", "A session's frames per second since it started", "fps"),
                (GaugeMetricFamily, "dhlive_session_queued_speech_seconds", "Speech waiting in a session's buffer", "queued_speech_s"),
            )
            yield GaugeMetricFamily("dhlive_sessions", "Live sessions running", value=len(snaps))
            for cls, name, help_, key in fams:
                fam = cls(name, help_, labels=["session"])
                for x in snaps:
                    v = _num(x.get(key)) if isinstance(x, dict) else None
                    if v is not None:
                        fam.add_metric([str(x.get("session", ""))], v)
                yield fam
            talking = GaugeMetricFamily("dhlive_session_talking", "1 while a session's avatar is talking", labels=["session"])
            for x in snaps:
                if isinstance(x, dict):
                    talking.add_metric([str(x.get("session", ""))], 1.0 if x.get("state") == "talking" else 0.0)
            yield talking
        clock = s.get("clock")
        if isinstance(clock, dict):
            for cls, name, help_, key in (
                (CounterMetricFamily, "dhlive_ticks", "Ticks of the live clock", "ticks"),
                (CounterMetricFamily, "dhlive_inference_calls", "Inference calls made by the live clock (all sessions batched)", "inference_calls"),
                (CounterMetricFamily, "dhlive_late_ticks", "Ticks that started over a frame late", "late_ticks"),
            ):
                v = _num(clock.get(key))
                if v is not None:
                    yield cls(name, help_, value=v)

    @staticmethod
    def _batch(s: dict):
        """`dhlive batch`: job counts by state, throughput, ETA and live workers."""
        jobs = s.get("jobs")
        if not isinstance(jobs, dict):
            return
        g = GaugeMetricFamily("dhlive_batch_jobs", "Jobs of the batch run by state", labels=["state"])
        for state in ("total", "skipped", "ok", "failed", "running", "pending"):
            v = _num(jobs.get(state))
            if v is not None:
                g.add_metric([state], v)
        yield g
        for name, help_, key in (
            ("dhlive_batch_jobs_per_minute", "Jobs finished per minute since the run started", "jobs_per_min"),
            ("dhlive_batch_eta_seconds", "Estimated seconds until every job has finished", "eta_s"),
            ("dhlive_batch_workers", "Workers ready or busy", "workers"),
        ):
            v = _num(s.get(key))
            if v is not None:
                yield GaugeMetricFamily(name, help_, value=v)

    @staticmethod
    def _outputs(s: dict):
        outs = _outputs_of(s)
        if not outs:
            return
        # outputs are labelled by index, never by target: an RTMP URL carries the stream key
        rec = CounterMetricFamily("dhlive_reconnects", "Reconnects of an output", labels=["output"])
        con = GaugeMetricFamily("dhlive_output_connected", "1 while an output is connected", labels=["output"])
        wr = CounterMetricFamily("dhlive_output_frames_written", "Frames written to an output", labels=["output"])
        dr = CounterMetricFamily("dhlive_output_frames_dropped", "Frames an output dropped", labels=["output"])
        ref = CounterMetricFamily("dhlive_output_publish_refused", "Publishes an RTMP server refused (stream key "
                                  "refused, already publishing)", labels=["output"])
        for i, o in enumerate(outs):
            lab = [str(i)]
            for fam, key in ((rec, "reconnects"), (con, "connected"), (wr, "frames_written"), (dr, "frames_dropped"),
                             (ref, "publish_refusals")):
                v = _num(o.get(key))
                if v is not None:
                    fam.add_metric(lab, v)
        yield from (rec, con, wr, dr, ref)


def _outputs_of(s: dict) -> list[dict]:
    outs = s.get("outputs")
    if not isinstance(outs, (list, tuple)):
        return []
    return [o for o in outs if isinstance(o, dict)]


# ----------------------------------------------------------------------------- server


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape on stderr would drown the CLI
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class MetricsServer:
    """Serves `snapshot()` as Prometheus text on http://HOST:PORT/metrics until close()."""

    def __init__(self, snapshot: Callable[[], dict], host: str = "127.0.0.1", port: int = 0,
                 command: str = "live"):
        self.registry = CollectorRegistry()
        self.collector = SnapshotCollector(snapshot, command)
        self.registry.register(self.collector)
        self.command = command
        self.pid = os.getpid()

        server_cls = type("_Server", (_ThreadingWSGIServer,),
                          {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        self._httpd = make_server(host.strip("[]"), port, make_wsgi_app(self.registry), server_cls,
                                  handler_class=_QuietHandler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host.strip('[]')}]" if ":" in host else host)
        self.url = f"http://{url_host}:{self.port}/metrics"
        self._closed = False
        self._lock = threading.Lock()
        # short poll so close() returns quickly; an idle select() 10 times a second costs nothing
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=THREAD_NAME, daemon=True)
        self._thread.start()
        self.started = time.time()
        self.discovery_file = self._write_discovery()

    def _write_discovery(self) -> Path | None:
        d = _discovery_dir_for_writing()
        if d is None:
            log.warning("no private runtime directory: `dhlive monitor` will not find the metrics URL %s", self.url)
            return None
        _prune_stale(d)
        rec = {"pid": self.pid, "metrics_url": self.url, "command": self.command, "started": self.started}
        path = d / f"{self.pid}.json"
        tmp = d / f".{self.pid}.{self.port}.tmp"
        try:
            # write-then-rename: a reader sees the old file or the new one, never half of one
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(rec, f)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("cannot write discovery file %s: %s", path, e)
            try:
                tmp.unlink()
            except OSError:
                pass
            return None
        return path

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        f = self.discovery_file
        if f is not None:
            try:
                if json.loads(f.read_text()).get("metrics_url") == self.url:
                    f.unlink()
            except (OSError, ValueError):
                pass

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r}, command={self.command!r}{', closed' if self._closed else ''})"


__all__ = ["MetricsServer", "SnapshotCollector", "discovery_path", "read_discovery", "runtime_dir"]
