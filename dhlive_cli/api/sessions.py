"""Session routes: status, the list, create and delete at run time, and the metrics text."""

from __future__ import annotations

from aiohttp import web

from dhlive_cli.api.guards import ApiError, parse_json, require_json
from dhlive_cli.errors import InputError


class SessionRoutes:
    """/v1/status, /v1/sessions and /metrics handlers of ApiServer (a mixin)."""

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
            raise ApiError(405, "this server runs a fixed set of sessions (start `dhlive live --listen` "
                                 "to create them at run time)")
        return self._studio

    async def _create_session(self, request: web.Request) -> web.Response:
        from pathlib import Path

        from dhlive_cli.errors import DhliveError, EngineError
        from dhlive_cli.session_spec import SessionSpec

        studio = self._need_studio()
        require_json(request)
        body = await self._read_body(request, 64 * 2**10, "session spec over 64 KiB")
        obj = parse_json(body or b"null")
        try:
            # names inside the operator's grants only: no path, host or device of the client's choosing
            spec = SessionSpec.from_dict(obj, base=Path.cwd(), where="session", grants=studio.grants)
        except InputError as e:
            raise ApiError(400, str(e)) from None
        if studio.get(spec.name) is not None:
            raise ApiError(409, f"a session named {spec.name!r} already exists")
        try:
            session = await self._run(studio.create, spec)
        except EngineError as e:
            raise ApiError(503, str(e)) from None
        except DhliveError as e:
            status = 409 if "already" in str(e) else 400
            raise ApiError(status, str(e)) from None
        return web.json_response({"created": spec.name, "size": f"{session.avatar.width}x{session.avatar.height}",
                                  "outputs": len(session.outputs)}, status=201,
                                 headers={"Location": f"/v1/sessions/{spec.name}"})

    async def _healthz(self, request: web.Request) -> web.Response:
        """Liveness for probes and load balancers: 200 while the API serves, 503 while it stops.
        Says nothing else (no token needed, so nothing to reveal)."""
        if self._closing.is_set():
            return web.json_response({"status": "stopping"}, status=503)
        return web.json_response({"status": "ok"})

    async def _openapi(self, request: web.Request) -> web.Response:
        from dhlive_cli.api.openapi import openapi_text

        return web.Response(text=openapi_text(), content_type="application/json")

    async def _delete_session(self, request: web.Request) -> web.Response:
        studio = self._need_studio()
        name = request.match_info["name"]
        if studio.started_by_operator(name):
            # the operator's own recording/stream: only the operator stops it (SIGTERM, Ctrl+C)
            raise ApiError(403, f"session {name!r} was started by the operator (command line or sessions "
                                "file): it cannot be deleted through the API")
        try:
            snap = await self._run(studio.remove, name)
        except KeyError:
            raise ApiError(404, f"no session named {name!r}") from None
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
        family("dhlive_output_publish_refused_total", "counter", "Publishes an RTMP server refused.",
               [(f'{{session="{esc(n)}",target="{esc(o["target"])}"}}', o.get("publish_refusals", 0))
                for n, s in snaps for o in s.get("outputs", [])])
        family("dhlive_api_requests_total", "counter", "HTTP requests received by the ingest API.",
               [("", self.requests)])
        family("dhlive_api_rejected_total", "counter", "Speech refused because the buffer was full.",
               [('{kind="http_429"}', self.rejected_429), ('{kind="ws_chunk"}', self.ws_dropped_chunks)])
        family("dhlive_api_ws_clients", "gauge", "Connected WebSocket clients.", [("", self.ws_clients)])
        return "\n".join(out) + "\n"
