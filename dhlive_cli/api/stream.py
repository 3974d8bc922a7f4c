"""GET /v1/stream: a WebSocket of s16le PCM chunks into a session's speech buffer."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from dhlive_cli.api.guards import ApiError
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)

WS_MAX_MSG_BYTES = 256 * 2**10
MAX_WS_CLIENTS = 32
NOTICE_INTERVAL_S = 1.0  # at most one backpressure notice per WebSocket client per second


class StreamRoute:
    """The WebSocket handler of ApiServer (a mixin)."""

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if self.ws_clients >= self.max_ws_clients:
            raise ApiError(503, f"too many WebSocket clients (limit {self.max_ws_clients})", {"Retry-After": "5"})
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
