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
import selectors
import socket
import stat
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psutil

from dhlive_cli.hostnames import header_host, is_loopback

log = logging.getLogger(__name__)

THREAD_NAME = "dhlive-metrics"
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


# ----------------------------------------------------------------------------- server


METRICS_MAX_CONNECTIONS = 16  # connections served at once; more are closed unanswered
METRICS_READ_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed
METRICS_DEADLINE_S = 10.0  # and one still there this long after it was accepted (a drip-fed request)
METRICS_MAX_REQUEST_BYTES = 16384  # request line and headers; a scrape sends a few hundred


class _Capped:
    """A connection's read side that ends (reads b"") after `left` bytes: http.server allows 100
    header lines of 64 KiB each, so 16 held connections could pin 100 MB."""

    def __init__(self, f, left: int):
        self._f, self._left = f, left

    def readline(self, limit: int = -1) -> bytes:
        n = self._left if limit is None or limit < 0 else min(limit, self._left)
        line = self._f.readline(n) if n > 0 else b""
        self._left -= len(line)
        return line

    def read(self, size: int = -1) -> bytes:
        n = self._left if size is None or size < 0 else min(size, self._left)
        data = self._f.read(n) if n > 0 else b""
        self._left -= len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._f, name)


class _QuietHandler(WSGIRequestHandler):
    timeout = METRICS_READ_TIMEOUT_S  # socket timeout: a half-sent request does not hold a thread for ever

    def setup(self):
        super().setup()
        self.rfile = _Capped(self.rfile, METRICS_MAX_REQUEST_BYTES)

    def log_message(self, format, *args):  # one line per scrape on stderr would drown the CLI
        pass


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A thread per connection, at most METRICS_MAX_CONNECTIONS at once: 1000 idle half-sent
    requests held 736 threads (+16 MB) until their clients left."""

    daemon_threads = True
    # the listen backlog (socketserver's default 5): a burst of scrapes beyond it waited for a
    # SYN retransmit, 1 s, past monitor's 0.1 s timeout
    request_queue_size = 64

    def __init__(self, *args, **kwargs):
        self._slots = threading.BoundedSemaphore(METRICS_MAX_CONNECTIONS)
        # connections being served -> when they must be gone (one reaper thread for all of them)
        self._deadlines: dict[socket.socket, float] = {}
        self._reaper_wake = threading.Condition()
        self._reaper: threading.Thread | None = None
        self._closing = False
        super().__init__(*args, **kwargs)

    def _reap(self) -> None:
        """Shut each served connection's socket once its deadline passes: the read timeout is
        per read, and a client sending a byte every few seconds kept its slot for ever (16 of
        them kept every scrape out). The handler's next read or write then fails and its slot
        comes back."""
        with self._reaper_wake:
            while not self._closing:
                now = time.monotonic()
                for sock, due in list(self._deadlines.items()):
                    if due <= now:
                        del self._deadlines[sock]
                        _shut(sock)
                nxt = min(self._deadlines.values(), default=None)
                self._reaper_wake.wait(None if nxt is None else max(0.0, nxt - now))

    def server_close(self):
        with self._reaper_wake:
            self._closing = True
            self._reaper_wake.notify()
        if self._reaper is not None:  # gone when close() returns, as the serving thread is
            self._reaper.join(timeout=5)
        super().server_close()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: closed at once, the scraper tries again
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        with self._reaper_wake:
            self._deadlines[request] = time.monotonic() + METRICS_DEADLINE_S
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name=f"{THREAD_NAME}-deadline", daemon=True)
                self._reaper.start()
            self._reaper_wake.notify()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._reaper_wake:
                self._deadlines.pop(request, None)
            self._slots.release()

    def handle_error(self, request, client_address):
        # socketserver printed a traceback on stderr for every connection that timed out or
        # broke off mid-request: the client's doing, worth a debug line at most
        log.debug("metrics connection from %s ended early", client_address[0], exc_info=True)


class MetricsServer:
    """Serves `snapshot()` as Prometheus text on http://HOST:PORT/metrics until close().

    The socket listens when the constructor returns (OSError when it cannot). prometheus_client
    and the collector (metrics_families) are imported before the discovery file is written, so
    the first scrape `dhlive monitor` makes answers as fast as the next (left to that scrape,
    the import took 0.05-0.2 s under load, past monitor's 0.1 s timeout at --interval 0.2, and
    monitor then looked again only 5 s later); with build_now=False they are imported at the
    first scrape instead (a render's port named on the command line: a short render does not
    pay for them). close() returns at once: the serving thread waits on the listening socket
    and on a wake-up pipe together, no poll interval."""

    def __init__(self, snapshot: Callable[[], dict], host: str = "127.0.0.1", port: int = 0,
                 command: str = "live", build_now: bool = True):
        self._snapshot = snapshot
        self._registry = None  # built now (build_now) or at the first scrape
        self._wsgi = None
        self.command = command
        self.pid = os.getpid()

        server_cls = type("_Server", (_ThreadingWSGIServer,),
                          {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        self._httpd = make_server(host.strip("[]"), port, self._app, server_cls, handler_class=_QuietHandler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host.strip('[]')}]" if ":" in host else host)
        self.url = f"http://{url_host}:{self.port}/metrics"
        self._closed = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self._thread.start()
        self.started = time.time()
        if build_now:
            self.registry  # noqa: B018 - builds the registry and its WSGI app
        self.discovery_file = self._write_discovery()

    @property
    def registry(self):
        """The prometheus_client CollectorRegistry holding this server's collector (built on first use)."""
        with self._lock:
            if self._registry is None:
                from prometheus_client import CollectorRegistry, make_wsgi_app

                from dhlive_cli.metrics_families import SnapshotCollector

                reg = CollectorRegistry()
                reg.register(SnapshotCollector(self._snapshot, self.command))
                self._wsgi = make_wsgi_app(reg)
                self._registry = reg
            return self._registry

    def text(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of one scrape, as /metrics serves it."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    def _app(self, environ, start_response):
        if not is_loopback(header_host(environ.get("HTTP_HOST", "127.0.0.1"))):
            # a page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding)
            # reaches this port with its own name as Host: it is not this server's
            start_response("421 Misdirected Request", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"this server answers only for loopback names (127.0.0.1, localhost, [::1])\n"]
        if self._wsgi is None:
            self.registry  # noqa: B018 - builds the registry and its WSGI app
        return self._wsgi(environ, start_response)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._httpd.socket, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in sel.select()]
                if self._wake_r in ready:
                    return
                self._httpd.handle_request()  # a connection waits: accept it, serve it on its own thread

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
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._httpd.server_close()  # also waits for scrapes still being answered
        os.close(self._wake_r)
        os.close(self._wake_w)
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


def __getattr__(name: str):
    # the collector lives in metrics_families (imported on first use, see MetricsServer)
    if name in ("SnapshotCollector", "KNOWN_STATES"):
        from dhlive_cli import metrics_families

        return getattr(metrics_families, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MetricsServer", "discovery_path", "read_discovery", "runtime_dir"]
