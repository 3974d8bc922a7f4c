"""Live ingest API: HTTP + WebSocket speech input for running LiveSessions (aiohttp).

    POST /v1/speak       an audio file (plain audio containers) or raw s16le PCM -> 202 / 413 / 415 / 400 / 429
    GET  /v1/stream      WebSocket: binary s16le 16 kHz mono chunks, text {"type": "interrupt"}
    POST /v1/interrupt   drop the queued speech
    GET  /v1/status      session.snapshot() plus the API's own counters
    GET  /metrics        Prometheus text exposition
    /v1/sessions/{name}/{speak,stream,interrupt,status}: the same for a named session
    GET /v1/sessions                 the sessions' names and states
    POST /v1/sessions                (with a Studio) create a session: JSON {"name", "rtmp", "output",
                                     "avatar", "input", "loop", "size"} -> 201 / 400 / 409 / 503
    DELETE /v1/sessions/{name}       (with a Studio) stop it and free what it held -> 200 / 404
    GET /, /static/preview.{js,css}  the browser preview page (page.py; the only paths without the token)
    POST /v1/sessions/{name}/webrtc  a WebRTC SDP offer (application/sdp) -> 201 + answer, Location of
                                     the viewer; DELETE there hangs up (webrtc.py; /v1/webrtc: "main")

Before any handler: a Host that is not the bound address or a loopback name -> 421, an Origin
that is not ours or allowed -> 403, a missing/wrong token -> 401 (guards.py). Sessions created
here only use what the operator granted (dhlive_cli.grants). Bodies and sockets have size, time
and count limits (bodies.py, stream.py).

The server runs its own asyncio loop in one daemon thread ("dhlive-api"), so the engine's
threads never share a loop with it. Nothing it holds grows with load: bodies are capped, file
uploads are spooled to disk and decoded into one buffer no larger than the session's speech
buffer, uploads in flight and WebSocket clients are counted against fixed limits, and a full
speech buffer is answered (429, or a backpressure notice) instead of queued.
"""

from dhlive_cli.api.bodies import MAX_BODY_BYTES, pcm_to_f32
from dhlive_cli.api.guards import ApiError, is_loopback
from dhlive_cli.api.server import ApiServer, check_port_free
from dhlive_cli.api.stream import WS_MAX_MSG_BYTES

__all__ = ["ApiServer", "ApiError", "is_loopback", "check_port_free", "pcm_to_f32", "MAX_BODY_BYTES",
           "WS_MAX_MSG_BYTES"]
