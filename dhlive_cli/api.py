"""Live ingest API: HTTP + WebSocket speech input for running LiveSessions (aiohttp).

    POST /v1/speak       an audio file (any format ffmpeg reads) or raw s16le PCM -> 202 / 413 / 415 / 400 / 429
    GET  /v1/stream      WebSocket: binary s16le 16 kHz mono chunks, text {"type": "interrupt"}
    POST /v1/interrupt   drop the queued speech
    GET  /v1/status      session.snapshot() plus the API's own counters
    GET  /metrics        Prometheus text exposition
    /v1/sessions/{name}/{speak,stream,interrupt,status}: the same for a named session
    GET /v1/sessions                 the sessions' names and states
    POST /v1/sessions                (with a Studio) create a session: JSON {"name", "rtmp", "output",
                                     "avatar", "input", "loop", "size"} -> 201 / 400 / 409 / 503
    DELETE /v1/sessions/{name}       (with a Studio) stop it and free what it held -> 200 / 404

The server runs its own asyncio loop in one daemon thread ("dhlive-api"), so the engine's
threads never share a loop with it. Nothing it holds grows with load: bodies are capped, file
uploads are spooled to disk and decoded into one buffer no larger than the session's speech
buffer, uploads in flight and WebSocket clients are counted against fixed limits, and a full
speech buffer is answered (429, or a backpressure notice) instead of queued.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import math
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Union

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from dhlive_cli.errors import InputError
from dhlive_cli.sources import FileAudioSource
from dhlive_cli.timebase import SAMPLE_RATE

if TYPE_CHECKING:
    from dhlive_cli.live import LiveSession

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 2**20
WS_MAX_MSG_BYTES = 256 * 2**10
MAX_WS_CLIENTS = 32
MAX_SPEAK_IN_FLIGHT = 64  # uploads being received/decoded at once; more -> 503
DECODE_WORKERS = 4  # ffmpeg children at once; also bounds the decode buffers alive at once
SPOOL_FLUSH_BYTES = 2**20  # an upload is held in memory at most this much before it goes to disk
NOTICE_INTERVAL_S = 1.0  # at most one backpressure notice per WebSocket client per second
PCM_TYPES = ("audio/l16", "audio/pcm")
THREAD_NAME = "dhlive-api"


class _ApiError(Exception):
    """Answered as {"error": message} with this status (and headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def is_loopback(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere: treat it as public


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


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    mime, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        k, eq, v = part.partition("=")
        if eq:
            params[k.strip().lower()] = v.strip().strip('"')
    return mime.strip().lower(), params


def _int_param(params: dict[str, str], key: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = -1
    if not lo <= v <= hi:
        raise _ApiError(400, f"content type parameter {key}={raw!r}: expected an integer {lo}..{hi}")
    return v


def pcm_to_f32(body: bytes | bytearray, rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    """s16le interleaved PCM at any rate -> 16 kHz mono float32."""
    if len(body) % (2 * channels):
        raise _ApiError(400, f"PCM body of {len(body)} bytes is not whole s16le samples x {channels} channel(s)")
    x = np.frombuffer(body, dtype="<i2")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    else:
        x = x.astype(np.float32)
    x *= 1.0 / 32768
    if rate != SAMPLE_RATE and x.shape[0]:
        if rate > SAMPLE_RATE:
            # linear interpolation alone folds everything above 8 kHz back into the band that goes
            # out on the stream; a box filter as wide as the decimation step is a crude low-pass
            taps = round(rate / SAMPLE_RATE)
            if taps > 1:
                x = np.convolve(x, np.full(taps, 1.0 / taps, dtype=np.float32), mode="same")
        n_out = int(round(x.shape[0] * SAMPLE_RATE / rate))
        x = np.interp(np.arange(n_out) * (rate / SAMPLE_RATE), np.arange(x.shape[0]), x).astype(np.float32)
    return x


class ApiServer:
    """HTTP + WebSocket ingest for one LiveSession or a set of named ones.

    sessions: a LiveSession (served as "main"), or a callable returning {name: LiveSession},
    called on the API thread at each request, so it must be safe to call from another thread.
    Counters (`stats()`) are server-wide.
    """

    def __init__(self, sessions: Union[Callable[[], "dict[str, LiveSession]"], "LiveSession"], host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES, metrics_text: Callable[[], str] | None = None,
                 max_ws_clients: int = MAX_WS_CLIENTS, studio=None):
        token = token or None
        if token is None and not is_loopback(host):
            raise InputError(f"binding to {host} requires --token")
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
        # counters: written on the API loop only
        self.requests = 0
        self.rejected_429 = 0
        self.ws_clients = 0
        self.ws_dropped_chunks = 0
        self._speak_in_flight = 0
        self._ws: dict[asyncio.Task, web.BaseRequest] = {}
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
                "ws_dropped_chunks": self.ws_dropped_chunks}

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
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _serve(self) -> None:
        self._stop_evt = asyncio.Event()
        app = web.Application(middlewares=[self._errors_mw, self._auth_mw], client_max_size=self.max_body_bytes)
        for prefix in ("/v1", "/v1/sessions/{name}"):
            app.router.add_post(f"{prefix}/speak", self._speak)
            app.router.add_get(f"{prefix}/stream", self._stream)
            app.router.add_post(f"{prefix}/interrupt", self._interrupt)
            app.router.add_get(f"{prefix}/status", self._status)
        app.router.add_get("/v1/sessions", self._list_sessions)
        app.router.add_post("/v1/sessions", self._create_session)
        app.router.add_delete("/v1/sessions/{name}", self._delete_session)
        app.router.add_get("/metrics", self._metrics)
        # a short shutdown timeout: stop() must return within its 2 s, stuck uploads or not
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.3)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=128)
            await site.start()
            addrs = runner.addresses
            if addrs and self.port == 0:
                self.port = addrs[0][1]
            log.info("live API listening on %s", self.url)
            self._ready.set()
            await self._stop_evt.wait()
            # WebSocket handlers may sit in a send to a client that never reads: abort them
            # rather than wait for a close handshake that will not come
            for task, req in list(self._ws.items()):
                task.cancel()
                if req.transport is not None:
                    req.transport.abort()
        finally:
            await runner.cleanup()

    # ------------------------------------------------------------------ middlewares
    @web.middleware
    async def _errors_mw(self, request: web.Request, handler):
        self.requests += 1
        try:
            return await handler(request)
        except _ApiError as e:
            return web.json_response({"error": e.message}, status=e.status, headers=e.headers)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            headers = {k: v for k, v in e.headers.items() if k.lower() not in ("content-type", "content-length")}
            return web.json_response({"error": (e.reason or "error").lower()}, status=e.status, headers=headers)
        except ConnectionError:
            # the client left (mid-body, or a WebSocket that stopped reading): nobody reads this
            # answer, and it is no server fault
            log.debug("API %s %s: client disconnected", request.method, request.path)
            return web.json_response({"error": "connection lost"}, status=400)
        except Exception as e:  # noqa: BLE001 - one bad request must not take the server down
            log.exception("API %s %s failed", request.method, request.path)
            return web.json_response({"error": f"internal error: {type(e).__name__}"}, status=500)

    @web.middleware
    async def _auth_mw(self, request: web.Request, handler):
        if self._token is not None:
            given = ""
            scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                given = cred.strip()
            elif request.headers.get("Upgrade", "").lower() == "websocket":
                # browsers cannot set headers on a WebSocket: the token may come in the query
                given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self._token):
                raise _ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="dhlive"'})
        return await handler(request)

    # ------------------------------------------------------------------ helpers
    def _session(self, request: web.Request):
        name = request.match_info.get("name", "main")
        s = self._sessions().get(name)
        if s is None:
            raise _ApiError(404, f"no session named {name!r}")
        return s

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _check_length(self, request: web.Request, limit: int, too_long: str) -> None:
        cl = request.content_length
        if cl is not None and cl > self.max_body_bytes:
            raise _ApiError(413, f"body of {cl} bytes is over the {self.max_body_bytes} byte limit")
        if cl is not None and cl > limit:
            raise _ApiError(413, too_long)

    async def _read_body(self, request: web.Request, limit: int, too_long: str) -> bytearray:
        self._check_length(request, limit, too_long)
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                raise _ApiError(413, too_long if limit < self.max_body_bytes
                                else f"body is over the {self.max_body_bytes} byte limit")
        return body

    async def _spool(self, request: web.Request) -> str:
        """The body in a temp file (ffmpeg needs a seekable input for many containers)."""
        self._check_length(request, self.max_body_bytes, "")
        fd, path = tempfile.mkstemp(prefix="dhlive-api-", suffix=".upload")
        f = os.fdopen(fd, "wb")
        try:
            total = 0
            pending = bytearray()
            async for chunk in request.content.iter_chunked(65536):
                total += len(chunk)
                if total > self.max_body_bytes:
                    raise _ApiError(413, f"body is over the {self.max_body_bytes} byte limit")
                pending += chunk
                if len(pending) >= SPOOL_FLUSH_BYTES:
                    await self._run(f.write, pending)
                    pending = bytearray()
            if pending:
                await self._run(f.write, pending)
            if total == 0:
                raise _ApiError(400, "empty body: send an audio file or PCM")
            f.close()
            return path
        except BaseException:
            f.close()
            os.unlink(path)
            raise

    def _push(self, session, samples: np.ndarray) -> int:
        """The whole utterance or nothing: a half-pushed sentence would play cut off."""
        if self._closing.is_set():
            raise _ApiError(503, "API server is stopping")
        n = samples.shape[0]
        if n == 0:
            raise _ApiError(400, "the body holds no audio samples")
        if not session.speech.push(samples):
            # the buffer drains at 1 s of speech per second: this is when it would fit
            wait = max(1, math.ceil((n - session.speech.free()) / SAMPLE_RATE))
            raise _ApiError(429, f"speech buffer full: {session.speech.queued() / SAMPLE_RATE:.1f} s queued, "
                                 f"this utterance needs {n / SAMPLE_RATE:.1f} s", {"Retry-After": str(wait)})
        return n

    def _too_long(self, session) -> str:
        return f"utterance longer than the speech buffer ({session.speech.capacity / SAMPLE_RATE:g} s)"

    def _decode_push(self, path: str, session) -> int:
        """Worker thread: decode a spooled upload into one capacity-sized buffer, then push it."""
        cap = session.speech.capacity
        try:
            try:
                src = FileAudioSource(path)
                est = src.info.estimated_samples
                # a container that states its length spares decoding what would be refused anyway
                if est is not None and est > cap * 1.02 + SAMPLE_RATE // 2:
                    raise _ApiError(413, self._too_long(session))
                buf = np.empty(cap, dtype=np.float32)
                with src:
                    n = src.read_into(buf)
                    if n == cap and src.read_into(np.empty(64, dtype=np.float32)) > 0:
                        raise _ApiError(413, self._too_long(session))
            except InputError as e:
                raise _ApiError(400, str(e).replace(path, "request body")) from None
        finally:
            _unlink_quiet(path)
        return self._push(session, buf[:n])

    def _pcm_push(self, body: bytearray, rate: int, channels: int, session) -> int:
        x = pcm_to_f32(body, rate, channels)
        if x.shape[0] > session.speech.capacity:
            raise _ApiError(413, self._too_long(session))
        return self._push(session, x)

    # ------------------------------------------------------------------ handlers
    async def _speak(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session.cancel.is_set():
            raise _ApiError(503, "session is not running")
        mime, params = _parse_content_type(request.headers.get("Content-Type", "application/octet-stream"))
        if mime in PCM_TYPES:
            rate = _int_param(params, "rate", SAMPLE_RATE, 4000, 192000)
            channels = _int_param(params, "channels", 1, 1, 8)
        elif not (mime.startswith("audio/") or mime == "application/octet-stream"):
            raise _ApiError(415, f"unsupported content type {mime!r}: send audio/* or application/octet-stream "
                                 "(an audio file), or audio/L16; rate=16000 (s16le PCM)")
        if self._speak_in_flight >= MAX_SPEAK_IN_FLIGHT:
            raise _ApiError(503, "too many uploads in progress", {"Retry-After": "1"})
        self._speak_in_flight += 1
        try:
            if mime in PCM_TYPES:
                cap = session.speech.capacity
                # a PCM body longer than the buffer is refused as it arrives, before it is all held
                limit = min(self.max_body_bytes, (math.ceil(cap * rate / SAMPLE_RATE) + 1) * 2 * channels)
                body = await self._read_body(request, limit, self._too_long(session))
                if not body:
                    raise _ApiError(400, "empty body: send an audio file or PCM")
                n = await self._run(self._pcm_push, body, rate, channels, session)
            else:
                path = await self._spool(request)
                try:
                    n = await self._run(self._decode_push, path, session)
                except (asyncio.CancelledError, RuntimeError):
                    # stop(): the job may never run to remove its file (it does in every other case)
                    _unlink_quiet(path)
                    raise
        except _ApiError as e:
            if e.status == 429:
                self.rejected_429 += 1
            raise
        finally:
            self._speak_in_flight -= 1
        return web.json_response({"queued_s": round(session.speech.queued() / SAMPLE_RATE, 3),
                                  "utterance_s": round(n / SAMPLE_RATE, 3)}, status=202)

    async def _interrupt(self, request: web.Request) -> web.Response:
        session = self._session(request)
        dropped = session.interrupt()
        return web.json_response({"dropped_s": round(dropped / SAMPLE_RATE, 3)})

    async def _status(self, request: web.Request) -> web.Response:
        snap = dict(self._session(request).snapshot())
        snap["api"] = self.stats()
        return web.json_response(snap)

    async def _list_sessions(self, request: web.Request) -> web.Response:
        sessions = self._sessions()
        states = {}
        for name, s in sessions.items():
            snap = s.snapshot()
            states[name] = {"state": snap["state"], "fps": round(snap["fps"], 3), "frames": snap["frames"],
                            "late_frames": snap["late_frames"], "size": snap.get("size")}
        return web.json_response({"sessions": sorted(sessions), "status": states})

    def _need_studio(self):
        if self._studio is None:
            raise _ApiError(405, "this server runs a fixed set of sessions (start `dhlive live --listen` "
                                 "to create them at run time)")
        return self._studio

    async def _create_session(self, request: web.Request) -> web.Response:
        from pathlib import Path

        from dhlive_cli.errors import DhliveError, EngineError
        from dhlive_cli.studio import SessionSpec

        studio = self._need_studio()
        body = await self._read_body(request, 64 * 2**10, "session spec over 64 KiB")
        try:
            obj = json.loads(body or b"null")
        except ValueError:
            raise _ApiError(400, "body must be a JSON object describing the session") from None
        try:
            spec = SessionSpec.from_dict(obj, base=Path.cwd(), where="session", local_inputs=False)
        except InputError as e:
            raise _ApiError(400, str(e)) from None
        if studio.get(spec.name) is not None:
            raise _ApiError(409, f"a session named {spec.name!r} already exists")
        try:
            session = await self._run(studio.create, spec)
        except EngineError as e:
            raise _ApiError(503, str(e)) from None
        except DhliveError as e:
            status = 409 if "already" in str(e) else 400
            raise _ApiError(status, str(e)) from None
        return web.json_response({"created": spec.name, "size": f"{session.avatar.width}x{session.avatar.height}",
                                  "outputs": len(session.outputs)}, status=201)

    async def _delete_session(self, request: web.Request) -> web.Response:
        studio = self._need_studio()
        name = request.match_info["name"]
        try:
            snap = await self._run(studio.remove, name)
        except KeyError:
            raise _ApiError(404, f"no session named {name!r}") from None
        return web.json_response({"stopped": name, "frames": snap["frames"], "late_frames": snap["late_frames"]})

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._metrics_text is not None:
            text = await self._run(self._metrics_text)  # the caller's code: keep it off the loop
        else:
            text = self._exposition()
        return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def _exposition(self) -> str:
        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        sessions = self._sessions()
        snaps = [(name, s.snapshot()) for name, s in sorted(sessions.items())
                 if name == "main" or s is not sessions.get("main")]  # the single session once, as "main"
        out = []

        def family(name: str, kind: str, help_: str, rows: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{labels} {value:g}" for labels, value in rows)

        family("dhlive_frames_total", "counter", "Frames produced by the live clock.",
               [(f'{{session="{esc(n)}"}}', s["frames"]) for n, s in snaps])
        family("dhlive_late_frames_total", "counter", "Frames repeated because drawing fell behind.",
               [(f'{{session="{esc(n)}"}}', s["late_frames"]) for n, s in snaps])
        family("dhlive_queued_speech_seconds", "gauge", "Speech waiting in the session's buffer.",
               [(f'{{session="{esc(n)}"}}', s["queued_speech_s"]) for n, s in snaps])
        family("dhlive_talking", "gauge", "1 while the avatar is talking.",
               [(f'{{session="{esc(n)}"}}', 1.0 if s["state"] == "talking" else 0.0) for n, s in snaps])
        family("dhlive_fps", "gauge", "Frames per second delivered by the live clock since start.",
               [(f'{{session="{esc(n)}"}}', s["fps"]) for n, s in snaps])
        family("dhlive_reconnects_total", "counter", "Times an output (RTMP) was lost and restarted.",
               [(f'{{session="{esc(n)}",target="{esc(o["target"])}"}}', o["reconnects"])
                for n, s in snaps for o in s.get("outputs", [])])
        family("dhlive_output_connected", "gauge", "1 while the output's encoder is running.",
               [(f'{{session="{esc(n)}",target="{esc(o["target"])}"}}', 1.0 if o["connected"] else 0.0)
                for n, s in snaps for o in s.get("outputs", [])])
        family("dhlive_api_requests_total", "counter", "HTTP requests received by the ingest API.",
               [("", self.requests)])
        family("dhlive_api_rejected_total", "counter", "Speech refused because the buffer was full.",
               [('{kind="http_429"}', self.rejected_429), ('{kind="ws_chunk"}', self.ws_dropped_chunks)])
        family("dhlive_api_ws_clients", "gauge", "Connected WebSocket clients.", [("", self.ws_clients)])
        return "\n".join(out) + "\n"

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if self.ws_clients >= self.max_ws_clients:
            raise _ApiError(503, f"too many WebSocket clients (limit {self.max_ws_clients})", {"Retry-After": "5"})
        # compress off: PCM does not deflate, and each deflate context costs memory per client.
        # writer_limit: what we send is tiny and rate-limited; a client that does not read stalls
        # this handler once 16 KiB are buffered instead of piling up more.
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MSG_BYTES, heartbeat=30.0, compress=False,
                                   writer_limit=16 * 2**10)
        await ws.prepare(request)
        task = asyncio.current_task()
        self._ws[task] = request
        self.ws_clients += 1
        cap = session.speech.capacity
        scratch = np.empty(min(cap, WS_MAX_MSG_BYTES // 2), dtype=np.float32)
        last_notice = -math.inf
        try:
            while True:
                msg = await ws.receive()
                if session.cancel.is_set():
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"session stopped")
                    break
                if msg.type == WSMsgType.BINARY:
                    data = msg.data
                    if len(data) % 2:
                        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"odd byte count: not s16le PCM")
                        break
                    n = len(data) // 2
                    if n == 0:
                        continue
                    if n > scratch.shape[0]:
                        self.ws_dropped_chunks += 1
                        await ws.send_str(json.dumps({"type": "error", "error":
                                                      f"chunk of {n} samples exceeds the speech buffer ({cap})"}))
                        continue
                    f = scratch[:n]
                    f[:] = np.frombuffer(data, dtype="<i2")
                    f *= 1.0 / 32768
                    if not session.speech.push(f):
                        self.ws_dropped_chunks += 1
                        now = time.monotonic()
                        if now - last_notice >= NOTICE_INTERVAL_S:
                            last_notice = now
                            await ws.send_str(json.dumps({
                                "type": "backpressure",
                                "queued_s": round(session.speech.queued() / SAMPLE_RATE, 3),
                                "dropped_chunks": self.ws_dropped_chunks}))
                elif msg.type == WSMsgType.TEXT:
                    try:
                        obj = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"text messages must be JSON")
                        break
                    kind = obj.get("type") if isinstance(obj, dict) else None
                    if kind == "interrupt":
                        dropped = session.interrupt()
                        await ws.send_str(json.dumps({"type": "interrupted", "dropped_s": round(dropped / SAMPLE_RATE, 3)}))
                    else:
                        await ws.send_str(json.dumps({"type": "error", "error": f"unknown message type {str(kind)[:40]!r}"}))
                else:  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp has already closed on oversize messages)
                    break
        except ConnectionError:  # the client went away while we were sending to it
            log.debug("API WebSocket client gone")
        finally:
            self.ws_clients -= 1
            self._ws.pop(task, None)
        return ws


__all__ = ["ApiServer", "is_loopback", "MAX_BODY_BYTES", "WS_MAX_MSG_BYTES"]
