"""ApiServer: the aiohttp application on its own thread and loop, and its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Union

from aiohttp import web

from dhlive_cli.api.bodies import MAX_BODY_BYTES, BodyReader, Upload
from dhlive_cli.api.guards import ApiError, Guards, check_origins, check_token, quiet_client_faults
from dhlive_cli.api.page import PAGE_FILES, PageRoutes
from dhlive_cli.api.sessions import SessionRoutes
from dhlive_cli.api.speech import SpeechRoutes
from dhlive_cli.api.stream import MAX_WS_CLIENTS, WS_IDLE_S, StreamRoute, WsClient
from dhlive_cli.api.webrtc import MAX_VIEWERS_TOTAL, Viewer, WebRtcRoutes
from dhlive_cli.errors import InputError
from dhlive_cli.timebase import SAMPLE_RATE

if TYPE_CHECKING:
    from dhlive_cli.live import LiveSession

log = logging.getLogger(__name__)

DECODE_WORKERS = 4  # ffmpeg children at once; also bounds the decode buffers alive at once
THREAD_NAME = "dhlive-api"
ENCODE_WORKERS = 4  # threads encoding WebRTC preview frames and audio (aiortc), over all viewers
HEADER_TIMEOUT_S = 10.0  # a connection's request line and headers, or the next request on it


def check_port_free(host: str, port: int) -> None:
    """InputError when nothing could listen on host:port (in use, or not an address of ours).
    Binds the way the server will (SO_REUSEADDR, as aiohttp does on POSIX) and lets go."""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
            s.listen(1)
        except OSError as e:
            raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None



def _quiet_hangups(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """A viewer that hangs up while its connection is being set up, or whose offer aiortc only
    rejects once connecting, leaves aiortc tasks that end with an exception nobody awaits:
    expected, logged at debug level; anything else goes to asyncio's default handler."""
    exc = context.get("exception")
    coro = getattr(context.get("future"), "get_coro", lambda: None)()
    where = getattr(getattr(coro, "cr_code", None), "co_filename", "")
    if exc is not None and (type(exc).__module__.startswith(("aiortc", "aioice")) or isinstance(exc, ConnectionError)
                            or "aiortc" in where or "aioice" in where):
        log.debug("background task ended: %s: %s", type(exc).__name__, exc)
        return
    loop.default_exception_handler(context)


class ApiServer(Guards, BodyReader, SpeechRoutes, StreamRoute, SessionRoutes, WebRtcRoutes, PageRoutes):
    """HTTP + WebSocket ingest for one LiveSession or a set of named ones.

    sessions: a LiveSession (served as "main"), or a callable returning {name: LiveSession},
    called on the API thread at each request, so it must be safe to call from another thread.
    Counters (`stats()`) are server-wide.
    """

    def __init__(self, sessions: Union[Callable[[], "dict[str, LiveSession]"], "LiveSession"], host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES, metrics_text: Callable[[], str] | None = None,
                 max_ws_clients: int = MAX_WS_CLIENTS, studio=None, allow_origins: tuple[str, ...] = (),
                 ws_idle_s: float = WS_IDLE_S, max_viewers_total: int = MAX_VIEWERS_TOTAL):
        """host/port: where to listen (port 0: any free one, read back from .port). token: the
        bearer token (checked by check_token: required, 16+ characters, off loopback).
        allow_origins: browser origins ("http://host:port") allowed besides our own.
        studio: a Studio to create/remove sessions at run time (its grants and pixel budget
        apply); None serves a fixed set. ws_idle_s: quiet WebSocket clients are closed after
        this long. max_viewers_total: WebRTC previews at once over all sessions (each session
        also has its own LiveOptions.max_viewers). Raises InputError for a bad token or origin."""
        token = check_token(token, host)
        self.allow_origins = check_origins(allow_origins)
        self.ws_idle_s = float(ws_idle_s)
        if callable(sessions) and not hasattr(sessions, "speech"):
            self._sessions: Callable[[], dict] = sessions
        else:
            single = {"main": sessions}
            name = getattr(sessions, "name", "main")
            single.setdefault(name, sessions)
            self._sessions = lambda: single
        self.host, self.port = host, port
        self._token = token.encode() if token else None
        self.max_body_bytes = int(max_body_bytes)
        self.max_ws_clients = max_ws_clients
        self._metrics_text = metrics_text
        self._studio = studio  # creates and removes sessions at run time; None: a fixed set
        self._on_remove = None
        # counters: written on the API loop only
        self.requests = 0
        self.rejected_429 = 0
        self.ws_clients = 0
        self.ws_dropped_chunks = 0
        self.dropped_slow = 0  # clients dropped for sending a body too slowly
        self._uploads: set[Upload] = set()
        self._ws: dict[asyncio.Task, WsClient] = {}
        self._viewers: dict[str, Viewer] = {}  # WebRTC previews by id (API loop only)
        self.mic_samples = 0  # speech pushed from browser microphones (16 kHz samples)
        self.max_viewers_total = int(max_viewers_total)
        self.public_paths = frozenset(PAGE_FILES) | {"/healthz"}  # a probe needs no secret either
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_evt: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closing = threading.Event()  # tells decode workers still running not to push any more
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "ApiServer":
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("ApiServer already started")
            quiet_client_faults()  # malformed requests: a 400 for the client, no traceback in the log
            self._pool = ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix=f"{THREAD_NAME}-io")
            self._thread = threading.Thread(target=self._thread_main, name=THREAD_NAME, daemon=True)
            self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join(2.0)
            self._pool.shutdown(wait=False, cancel_futures=True)
            err = self._start_error
            if isinstance(err, OSError):
                raise InputError(f"cannot listen on {self.host}:{self.port}: {err.strerror or err}") from err
            raise err
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Close every connection and end the API thread. Idempotent."""
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or not thread.is_alive() or loop is None:
                return
            self._closing.set()
            deadline = time.monotonic() + timeout
            try:
                loop.call_soon_threadsafe(self._stop_evt.set)
            except RuntimeError:  # loop already closed
                pass
            thread.join(max(0.0, deadline - time.monotonic()))
            if self._pool is not None:
                # a decode already running finishes on its own (it pushes nothing now); idle
                # workers leave at once
                self._pool.shutdown(wait=False, cancel_futures=True)
                for w in list(getattr(self._pool, "_threads", ())):
                    w.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("API thread did not stop within %.1f s", timeout)

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}"

    def stats(self) -> dict:
        return {"requests": self.requests, "rejected_429": self.rejected_429, "ws_clients": self.ws_clients,
                "ws_dropped_chunks": self.ws_dropped_chunks, "dropped_slow_clients": self.dropped_slow,
                "uploads_in_progress": len(self._uploads), "webrtc_viewers": len(self._viewers),
                "webrtc_mic_seconds": round(self.mic_samples / SAMPLE_RATE, 3)}

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - startup failures are re-raised by start()
            if not self._ready.is_set():
                self._start_error = e
            else:
                log.exception("API server loop failed")
        finally:
            self._ready.set()
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=0.5))
                loop.run_until_complete(loop.shutdown_asyncgens())
                # the threads aiortc's encoders ran on (the loop's default executor) end with it
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _serve(self) -> None:
        self._stop_evt = asyncio.Event()
        # aiortc encodes each viewer's frames on the loop's default executor: a bounded, named one,
        # ended with the loop (_thread_main)
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(ENCODE_WORKERS, thread_name_prefix=f"{THREAD_NAME}-rtc"))
        loop.set_exception_handler(_quiet_hangups)
        app = web.Application(middlewares=[self._errors_mw, self._browser_mw, self._auth_mw],
                              client_max_size=self.max_body_bytes)
        app.on_response_prepare.append(self._cors_headers)
        for method, path, handler in self.routes():
            if method == "GET":
                app.router.add_get(path, handler)  # HEAD too, as aiohttp does for GET
            else:
                app.router.add_route(method, path, handler)
        # a short shutdown timeout: stop() must return within its 2 s, stuck uploads or not
        # keepalive_timeout also bounds how long a connection may take to send its request line
        # and headers (aiohttp arms it when the connection opens): slow-header clients go
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.3, keepalive_timeout=HEADER_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=128)
            await site.start()
            addrs = runner.addresses
            if addrs and self.port == 0:
                self.port = addrs[0][1]
            log.info("live API listening on %s", self.url)
            if self._studio is not None:
                loop = asyncio.get_running_loop()
                self._on_remove = lambda name: self._session_gone(loop, name)
                self._studio.on_remove.append(self._on_remove)
            self._ready.set()
            await self._stop_evt.wait()
            # WebSocket handlers may sit in a send to a client that never reads: abort them
            # rather than wait for a close handshake that will not come
            for task in list(self._ws):
                self._ws_drop(task)
            await self._hang_up_all()
        finally:
            if self._studio is not None and self._on_remove in self._studio.on_remove:
                self._studio.on_remove.remove(self._on_remove)
            await runner.cleanup()

    def _session_gone(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        """Any thread: a session stopped; its sockets close now (they would within WS_POLL_S)."""
        def close():
            for task, c in list(self._ws.items()):
                if c.session.cancel.is_set():
                    self._ws_drop(task)
            for vid, v in list(self._viewers.items()):
                if v.session.cancel.is_set():
                    asyncio.ensure_future(self._hang_up(vid))
        try:
            loop.call_soon_threadsafe(close)
        except RuntimeError:  # the loop is closed: nothing left to close
            pass

    def routes(self) -> list[tuple[str, str, Callable]]:
        """(method, path, handler) of every route; api/openapi.py describes each of them."""
        out = []
        for prefix in ("/v1", "/v1/sessions/{name}"):
            out += [("POST", f"{prefix}/speak", self._speak), ("GET", f"{prefix}/stream", self._stream),
                    ("POST", f"{prefix}/interrupt", self._interrupt), ("GET", f"{prefix}/status", self._status)]
        return out + [
            ("GET", "/v1/sessions", self._list_sessions), ("POST", "/v1/sessions", self._create_session),
            ("GET", "/v1/sessions/{name}", self._status),  # where a 201's Location points
            ("DELETE", "/v1/sessions/{name}", self._delete_session),
            ("GET", "/metrics", self._metrics), ("GET", "/healthz", self._healthz),
            ("GET", "/openapi.json", self._openapi),
            ("POST", "/v1/webrtc", self._webrtc_offer), ("POST", "/v1/sessions/{name}/webrtc", self._webrtc_offer),
            ("DELETE", "/v1/webrtc/{vid}", self._webrtc_delete),
            ("DELETE", "/v1/sessions/{name}/webrtc/{vid}", self._webrtc_delete),
            *(("GET", path, self._page) for path in PAGE_FILES)]

    # ------------------------------------------------------------------ helpers
    def _session(self, request: web.Request):
        name = request.match_info.get("name", "main")
        s = self._sessions().get(name)
        if s is None:
            raise ApiError(404, f"no session named {name!r}")
        return s

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
