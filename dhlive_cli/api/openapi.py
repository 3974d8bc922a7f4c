"""The live API described as OpenAPI 3.1: the one place it is written, served at /openapi.json.

    python -m dhlive_cli.api.openapi > openapi.json

Every route of ApiServer appears here (tests/test_openapi.py compares this document with the
server's router and with README's endpoint table, and validates it with openapi-spec-validator).
A session's routes exist twice: under /v1 (the command line's session, "main") and under
/v1/sessions/{name}. The WebSocket's message protocol cannot be expressed in OpenAPI; its
messages are schemas under components (WsControl, WsEvent) and the route's description says
how they are used.
"""

from __future__ import annotations

import functools
import json

from dhlive_cli import __version__

_JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict | None = None) -> dict:
    out = {"description": description, "content": {_JSON: {"schema": _ref("Error")}}}
    if headers:
        out["headers"] = headers
    return out


def _ok(description: str, schema: str) -> dict:
    return {"description": description, "content": {_JSON: {"schema": _ref(schema)}}}


_RETRY = {"Retry-After": {"description": "seconds after which the request may succeed", "schema": {"type": "integer"}}}
_COMMON = {"401": _error("missing or wrong bearer token (when the server has one)"),
           "403": _error("an Origin that is not allowed"),
           "421": _error("a Host that is not this server (DNS rebinding)")}
_NAME = {"name": "name", "in": "path", "required": True, "description": "the session's name",
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}}


def _session_routes() -> dict:
    """speak, stream, interrupt, status: the same for /v1 (session "main") and /v1/sessions/{name}."""
    missing = {"404": _error("no such session")}
    speak = {"post": {
        "summary": "Queue one utterance (whole or not at all)",
        "description": "An audio file (any format ffmpeg's plain audio demuxers read: wav, flac, mp3, ogg, "
                       "m4a, mkv...) or raw 16-bit PCM: `audio/L16` is big-endian (network byte order, "
                       "RFC 2586), `audio/pcm` little-endian unless `format=s16be`. Content-type "
                       "parameters `rate` (4000..192000, default 16000) and `channels` (1..8, default 1); "
                       "the audio is resampled to 16 kHz mono.",
        "requestBody": {"required": True, "content": {
            "audio/L16": {"schema": {"type": "string", "format": "binary"}},
            "audio/pcm": {"schema": {"type": "string", "format": "binary"}},
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {"202": _ok("queued", "Queued"), "400": _error("not audio, or a bad parameter"),
                      "413": _error("longer than the speech buffer, or over the body limit"),
                      "415": _error("unsupported content type"),
                      "429": _error("speech buffer full", _RETRY),
                      "503": _error("session or server stopping, too many uploads, or the upload cannot be stored",
                                    _RETRY),
                      "507": _error("no space left on the server to receive the upload"),
                      **missing, **_COMMON}}}
    stream = {"get": {
        "summary": "WebSocket: stream PCM chunks as they are made (lips move as they arrive)",
        "description": "Upgrades to a WebSocket. Binary messages: s16le interleaved PCM at `rate` Hz with "
                       "`channels` channels, up to 256 KiB each. Text messages (JSON, schema WsControl): "
                       "`start` (optional, names the next utterance), `end` (the utterance is complete: "
                       "its resampler tail is flushed), `interrupt`. The server sends JSON text (schema "
                       "WsEvent): `utterance_started` when the frame with the utterance's first sample is "
                       "handed to the session's outputs, `utterance_finished` when the one with its last "
                       "sample is (`interrupted: true` if an interrupt dropped its end), `interrupted` "
                       "(reply to interrupt), `backpressure`, `error`. Closed after 30 s without audio bytes, "
                       "and when the session stops. A browser may pass the token as `?token=`.",
        "parameters": [
            {"name": "rate", "in": "query", "description": "sample rate of the PCM sent (Hz)",
             "schema": {"type": "integer", "minimum": 8000, "maximum": 192000, "default": 16000}},
            {"name": "channels", "in": "query", "description": "interleaved channels (averaged to mono)",
             "schema": {"type": "integer", "minimum": 1, "maximum": 8, "default": 1}},
            {"name": "token", "in": "query", "description": "the bearer token, for browsers (WebSocket only)",
             "schema": {"type": "string"}}],
        "responses": {"101": {"description": "switching to the WebSocket protocol"},
                      "400": _error("bad rate or channels, or not a WebSocket request"),
                      "503": _error("session stopping, or too many WebSocket clients", _RETRY),
                      **missing, **_COMMON}}}
    interrupt = {"post": {
        "summary": "Drop all queued speech now",
        "requestBody": {"required": False, "content": {_JSON: {"schema": {"type": "object"}}}},
        "responses": {"200": _ok("dropped", "Interrupted"), "415": _error("a body that is not application/json"),
                      **missing, **_COMMON}}}
    status = {"get": {"summary": "The session's figures", "responses": {
        "200": _ok("status", "Status"), **missing, **_COMMON}}}
    out = {}
    for prefix, params in (("/v1", []), ("/v1/sessions/{name}", [_NAME])):
        for path, item in (("speak", speak), ("stream", stream), ("interrupt", interrupt), ("status", status)):
            entry = json.loads(json.dumps(item))  # each path its own copy
            if params:
                entry["parameters"] = params
            for op in entry.values():
                if isinstance(op, dict) and "summary" in op:
                    op["operationId"] = f"{path}{'' if not params else '_named'}"
            out[f"{prefix}/{path}"] = entry
    return out


def _schemas() -> dict:
    num = {"type": "number"}
    output = {"type": "object", "properties": {
        "target": {"type": "string", "description": "file path, or RTMP URL with the key shown as ****"},
        "connected": {"type": "boolean", "description": "RTMP: the server accepted the publish"},
        "reconnects": {"type": "integer"}, "frames_written": {"type": "integer"},
        "frames_dropped": {"type": "integer"}, "queue_fill": {"type": "integer"},
        "error": {"type": ["string", "null"]},
        "publish_refusals": {"type": "integer", "description": "publishes the RTMP server refused"},
        "refused": {"type": "boolean", "description": "the latest publish attempt was refused"}}}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Queued": {"type": "object", "properties": {"queued_s": num, "utterance_s": num}},
        "Interrupted": {"type": "object", "properties": {"dropped_s": num}},
        "Status": {"type": "object", "properties": {
            "session": {"type": "string"}, "state": {"enum": ["idle", "talking"]},
            "frames": {"type": "integer"}, "late_frames": {"type": "integer"}, "fps": num,
            "frame_ms_p50": num, "frame_ms_p99": num, "queued_speech_s": num,
            "latency_ms_median": {"type": ["number", "null"]}, "size": {"type": "string"},
            "outputs": {"type": "array", "items": output}, "api": {"type": "object"}}},
        "SessionList": {"type": "object", "properties": {
            "sessions": {"type": "array", "items": {"type": "string"}}, "status": {"type": "object"}}},
        "SessionSpec": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "pattern": _NAME["schema"]["pattern"]},
            "rtmp": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                     "description": "rtmp[s]:// URL(s) to hosts granted with --allow-rtmp"},
            "output": {"type": "string", "description": "a new .mp4/.mkv file name inside --output-dir"},
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                      "description": "audio file names inside --media-dir"},
            "avatar": {"type": "string", "description": "an avatar folder name inside --media-dir"},
            "loop": {"type": "boolean"}, "size": {"type": "string", "examples": ["640x360", "360p"]},
            "crossfade_ms": {"type": "integer", "minimum": 0, "maximum": 5000},
            "hangover_ms": {"type": "integer", "minimum": 0, "maximum": 5000}}},
        "Created": {"type": "object", "properties": {
            "created": {"type": "string"}, "size": {"type": "string"}, "outputs": {"type": "integer"}}},
        "Stopped": {"type": "object", "properties": {
            "stopped": {"type": "string"}, "frames": {"type": "integer"}, "late_frames": {"type": "integer"}}},
        "Health": {"type": "object", "properties": {"status": {"enum": ["ok", "stopping"]}}},
        "WsControl": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["start", "end", "interrupt"]},
            "id": {"type": "string", "maxLength": 64, "description": "start: the next utterance's id"}}},
        "WsEvent": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["utterance_started", "utterance_finished", "interrupted", "backpressure", "error"]},
            "id": {"type": "string", "description": "the utterance (start's id, else 1, 2, ... per connection)"},
            "duration_s": {"type": "number", "description": "utterance_finished: seconds of speech queued"},
            "interrupted": {"type": "boolean", "description": "utterance_finished: an interrupt dropped its end"},
            "dropped_s": num, "queued_s": num, "dropped_chunks": {"type": "integer"},
            "error": {"type": "string"}}},
    }


@functools.cache
def openapi() -> dict:
    """The OpenAPI 3.1 document of the live API (a dict; do not modify it)."""
    paths = _session_routes()
    paths["/v1/sessions"] = {
        "get": {"summary": "Names and states of the running sessions", "operationId": "list_sessions",
                "responses": {"200": _ok("sessions", "SessionList"), **_COMMON}},
        "post": {"summary": "Create and start a session (names inside the operator's grants only)",
                 "operationId": "create_session",
                 "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("SessionSpec")}}},
                 "responses": {"201": {**_ok("created", "Created"), "headers": {"Location": {
                     "description": "the new session: /v1/sessions/{name}", "schema": {"type": "string"}}}},
                     "400": _error("invalid spec, or outside the grants"),
                     "405": _error("this server runs a fixed set of sessions"),
                     "409": _error("the name or an output is already in use"),
                     "415": _error("not application/json"), "503": _error("no room: session count or pixel budget"),
                     **_COMMON}}}
    paths["/v1/sessions/{name}"] = {
        "parameters": [_NAME],
        "get": {"summary": "The session's figures (as .../status)", "operationId": "get_session",
                "responses": {"200": _ok("status", "Status"), "404": _error("no such session"), **_COMMON}},
        "delete": {"summary": "Stop a session an API client created, and free what it held",
                   "operationId": "delete_session",
                   "responses": {"200": _ok("stopped", "Stopped"), "404": _error("no such session"),
                                 "405": _error("this server runs a fixed set of sessions"),
                                 **{**_COMMON, "403": _error("started by the operator, or an Origin not allowed")}}}}
    paths["/metrics"] = {"get": {
        "summary": "Prometheus metrics (text exposition format 0.0.4)", "operationId": "metrics",
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **_COMMON}}}
    paths["/healthz"] = {"get": {
        "summary": "Liveness: 200 while the API serves, 503 while it stops (no token needed)",
        "operationId": "healthz", "security": [],
        "responses": {"200": _ok("serving", "Health"), "503": _ok("stopping", "Health"),
                      "403": _COMMON["403"], "421": _COMMON["421"]}}}
    offer = {"post": {
        "summary": "WebRTC preview (WHEP-style): the browser's SDP offer in, the answer out",
        "description": "Picture and sound of the session as it streams (VP8/H.264, Opus); the browser's "
                       "microphone track, if any, becomes the session's speech. Needs the webrtc extra.",
        "requestBody": {"required": True, "content": {"application/sdp": {"schema": {"type": "string"}}}},
        "responses": {"201": {"description": "the SDP answer",
                              "headers": {"Location": {"description": "the viewer, for DELETE",
                                                       "schema": {"type": "string"}}},
                              "content": {"application/sdp": {"schema": {"type": "string"}}}},
                      "400": _error("not an SDP offer of one audio and/or one video section (video recvonly, "
                                    "no data channel), a DTLS fingerprint and at most 32 UDP ICE candidates a section"),
                      "404": _error("no such session"), "415": _error("not application/sdp"),
                      "501": _error("the webrtc extra (aiortc) is not installed"),
                      "503": _error("viewer limit reached", _RETRY),
                      **{**_COMMON, "403": _error("preview off (--max-viewers 0), or an Origin not allowed")}}}}
    hangup = {"delete": {"summary": "Hang up a WebRTC viewer", "responses": {
        "200": {"description": "closed", "content": {_JSON: {"schema": {"type": "object", "properties": {
            "closed": {"type": "string"}}}}}}, "404": _error("no such viewer"), **_COMMON}}}
    vid = {"name": "vid", "in": "path", "required": True, "description": "the viewer's id",
           "schema": {"type": "string"}}
    for path, item, params, op_id in (("/v1/webrtc", offer, [], "webrtc_offer"),
                                      ("/v1/sessions/{name}/webrtc", offer, [_NAME], "webrtc_offer_named"),
                                      ("/v1/webrtc/{vid}", hangup, [vid], "webrtc_hangup"),
                                      ("/v1/sessions/{name}/webrtc/{vid}", hangup, [_NAME, vid], "webrtc_hangup_named")):
        entry = json.loads(json.dumps(item))
        next(iter(entry.values()))["operationId"] = op_id
        if params:
            entry["parameters"] = params
        paths[path] = entry
    for path, op_id, kind in (("/", "page", "text/html"), ("/static/preview.js", "page_js", "text/javascript"),
                              ("/static/preview.css", "page_css", "text/css")):
        paths[path] = {"get": {"summary": "The browser preview page (static, no token needed)", "operationId": op_id,
                               "security": [], "responses": {
                                   "200": {"description": "the file", "content": {kind: {"schema": {"type": "string"}}}},
                                   "403": _COMMON["403"], "421": _COMMON["421"]}}}
    paths["/openapi.json"] = {"get": {
        "summary": "This document", "operationId": "openapi",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {_JSON: {"schema": {"type": "object"}}}},
                      **_COMMON}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "dhlive live API", "version": __version__,
                 "description": "Feed speech to live avatar sessions, stream PCM over a WebSocket, create and "
                                "stop sessions, read their figures. Served by `dhlive live --listen HOST:PORT`.",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        # relative (OpenAPI 3.1, Server Object): the server this document was fetched from, on
        # whatever address and port it listens; a fixed one would send clients to the wrong port
        "servers": [{"url": "/", "description": "the server this document was fetched from"}],
        "security": [{}, {"bearer": []}],  # a token only when the server was given one
        "paths": paths,
        "components": {"schemas": _schemas(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "DHLIVE_API_TOKEN or --token-file"}}},
    }


@functools.cache
def openapi_text() -> str:
    return json.dumps(openapi(), indent=1)


if __name__ == "__main__":
    print(openapi_text())
