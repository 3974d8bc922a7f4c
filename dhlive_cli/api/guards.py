"""What every request passes before a handler runs: the error envelope and the token check."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
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


class Guards:
    """Middlewares of ApiServer (a mixin: it reads the server's token and counters)."""

    @web.middleware
    async def _errors_mw(self, request: web.Request, handler):
        self.requests += 1
        try:
            return await handler(request)
        except ApiError as e:
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
                raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="dhlive"'})
        return await handler(request)
