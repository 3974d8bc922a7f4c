"""GET /v1/stream: a WebSocket of s16le PCM chunks into a session's speech buffer.

Protocol (also in README and /openapi.json): `GET /v1/stream?rate=24000&channels=1` upgrades to
a WebSocket. Binary messages: s16le interleaved PCM at `rate` Hz (8000..192000, default 16000)
with `channels` channels (1..8, default 1), any length up to 256 KiB. Text messages, JSON:
`{"type": "start", "id": "..."}` (optional: names the next utterance), `{"type": "end"}` (the
utterance is complete), `{"type": "interrupt"}`. The server sends JSON text: events
`utterance_started` / `utterance_finished` {id, duration_s[, interrupted]}, `interrupted`
{dropped_s}, and `backpressure` / `error` notices."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from dhlive_cli.api.guards import ApiError
from dhlive_cli.api.utterances import MAX_CHANNELS, MAX_RATE, MIN_RATE, WsSpeech
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)

WS_MAX_MSG_BYTES = 256 * 2**10  # the largest binary message taken (aiohttp refuses max_msg_size itself: + 1)
MAX_WS_CLIENTS = 32
MAX_WS_PER_SESSION = 8
WS_IDLE_S = 30.0  # a client that sends no audio bytes this long is closed (empty frames and text do not count)
WS_EVICT_IDLE_S = 2.0  # at a limit, a client idle this long gives its place to a new one
WS_POLL_S = 0.5  # how often a quiet socket checks its session and its idle time
NOTICE_INTERVAL_S = 1.0  # at most one backpressure notice per WebSocket client per second
MAX_QUEUED_EVENTS = 64  # events waiting for a client that does not read: the oldest are dropped


def _query_int(request: web.Request, key: str, default: int, lo: int, hi: int) -> int:
    given = request.query.getall(key, [])
    if not given:
        return default
    if len(given) > 1:  # which one counts would depend on the parser (ours takes the first, others the last)
        raise ApiError(400, f"query parameter {key} given {len(given)} times: give it once")
    raw = given[0]
    if not (raw.isascii() and raw.isdigit() and lo <= int(raw) <= hi):
        raise ApiError(400, f"query parameter {key}={raw[:20]!r}: expected an integer {lo}..{hi}")
    return int(raw)


async def _send_events(ws: web.WebSocketResponse, events: asyncio.Queue) -> None:
    """The connection's event sender: one JSON text message per event, in order."""
    try:
        while True:
            event = await events.get()
            await ws.send_str(json.dumps(event))
    except ConnectionError:  # the client left: the handler's receive loop ends too
        pass


class WsClient:
    """A connected WebSocket: which session it feeds and when it last sent something."""

    __slots__ = ("request", "session", "last_active")

    def __init__(self, request: web.BaseRequest, session, now: float):
        self.request, self.session, self.last_active = request, session, now


class StreamRoute:
    """The WebSocket handler of ApiServer (a mixin).

    Sockets are a bounded resource: at most max_ws_clients in all and MAX_WS_PER_SESSION per
    session. A client that sends no audio bytes for ws_idle_s is closed (empty binary frames,
    pings and text messages do not count as activity); when a limit is reached, a new
    client takes the place of the one idle longest (if idle over WS_EVICT_IDLE_S), so idle
    clients cannot lock ingest out. A session's sockets close when the session stops."""

    def _ws_make_room(self, session) -> None:
        now = time.monotonic()
        mine = [(t, c) for t, c in self._ws.items() if c.session is session]
        for pool, limit, what in ((mine, MAX_WS_PER_SESSION, "for this session"),
                                  (list(self._ws.items()), self.max_ws_clients, "")):
            if len(pool) < limit:
                continue
            idle = [(t, c) for t, c in pool if now - c.last_active >= WS_EVICT_IDLE_S]
            if not idle:
                raise ApiError(503, f"too many WebSocket clients {what} (limit {limit})".replace("  ", " "),
                               {"Retry-After": "5"})
            task, _ = min(idle, key=lambda tc: tc[1].last_active)
            self._ws_drop(task)

    def _ws_drop(self, task: asyncio.Task) -> None:
        client = self._ws.pop(task, None)
        task.cancel()
        if client is not None and client.request.transport is not None:
            client.request.transport.abort()

    def _ws_close_session(self, session) -> None:
        """Loop thread: close every socket of a session that stopped."""
        for task, c in list(self._ws.items()):
            if c.session is session:
                self._ws_drop(task)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session.cancel.is_set():
            raise ApiError(503, "session is not running")
        rate = _query_int(request, "rate", SAMPLE_RATE, MIN_RATE, MAX_RATE)
        channels = _query_int(request, "channels", 1, 1, MAX_CHANNELS)
        self._ws_make_room(session)
        # compress off: PCM does not deflate, and each deflate context costs memory per client.
        # writer_limit: what we send is tiny and rate-limited; a client that does not read stalls
        # this handler once 16 KiB are buffered instead of piling up more.
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MSG_BYTES + 1, heartbeat=30.0, compress=False,
                                   writer_limit=16 * 2**10)
        request._dhlive_ws = ws  # the error middleware must not write HTTP into a switched socket
        await ws.prepare(request)
        task = asyncio.current_task()
        client = WsClient(request, session, time.monotonic())
        self._ws[task] = client
        self.ws_clients += 1
        cap = session.speech.capacity
        scratch = np.empty(min(cap, WS_MAX_MSG_BYTES // 2), dtype=np.float32)
        last_notice = -math.inf
        events: asyncio.Queue = asyncio.Queue()

        def emit(event: dict) -> None:  # loop thread
            if events.qsize() >= MAX_QUEUED_EVENTS:
                events.get_nowait()
            events.put_nowait(event)

        speech = WsSpeech(session, rate, channels, asyncio.get_running_loop(), emit)
        sender = asyncio.create_task(_send_events(ws, events))
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=WS_POLL_S)
                except asyncio.TimeoutError:
                    msg = None
                if session.cancel.is_set():
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"session stopped")
                    break
                now = time.monotonic()
                if msg is None:
                    if now - client.last_active >= self.ws_idle_s:
                        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"idle")
                        break
                    continue
                if msg.type == WSMsgType.BINARY:
                    data = msg.data
                    if len(data) % (2 * channels):
                        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA,
                                       message=b"byte count is not whole s16le PCM frames")
                        break
                    if not data:
                        continue  # empty frames are not speech: they keep no socket "active"
                    client.last_active = now  # idle means: no audio bytes for that long
                    f = speech.convert(data, scratch)
                    n = f.shape[0]
                    if n == 0:
                        continue  # the resampler is still filling
                    if n > cap:
                        self.ws_dropped_chunks += 1
                        await ws.send_str(json.dumps({"type": "error", "error":
                                                      f"chunk of {n} samples exceeds the speech buffer ({cap})"}))
                        continue
                    end = session.speech.push_end(f)
                    if end is not None:
                        speech.pushed(end, n)
                    else:
                        self.ws_dropped_chunks += 1
                        if now - last_notice >= NOTICE_INTERVAL_S:
                            last_notice = now
                            await ws.send_str(json.dumps({
                                "type": "backpressure",
                                "queued_s": round(session.speech.queued() / SAMPLE_RATE, 3),
                                "dropped_chunks": self.ws_dropped_chunks}))
                elif msg.type == WSMsgType.TEXT:
                    try:
                        obj = json.loads(msg.data)
                    except (ValueError, RecursionError):
                        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"text messages must be JSON")
                        break
                    kind = obj.get("type") if isinstance(obj, dict) else None
                    if kind == "interrupt":
                        dropped = session.interrupt()
                        speech.interrupted()
                        await ws.send_str(json.dumps({"type": "interrupted", "dropped_s": round(dropped / SAMPLE_RATE, 3)}))
                    elif kind in ("start", "end"):
                        why = speech.start(obj.get("id")) if kind == "start" else speech.end(session.speech.push_end)
                        if why:
                            await ws.send_str(json.dumps({"type": "error", "error": why}))
                    else:
                        await ws.send_str(json.dumps({"type": "error", "error": f"unknown message type {str(kind)[:40]!r}"}))
                else:  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp has already closed on oversize messages)
                    break
        except ConnectionError:  # the client went away while we were sending to it
            log.debug("API WebSocket client gone")
        finally:
            sender.cancel()
            speech.close()
            self.ws_clients -= 1
            self._ws.pop(task, None)
        return ws
