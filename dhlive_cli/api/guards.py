"""What every request passes before a handler runs: the error envelope, the browser checks
(Host against DNS rebinding, Origin against cross-site pages) and the token."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re

from aiohttp import web

from dhlive_cli.errors import InputError
from dhlive_cli.hostnames import is_loopback, split_host

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Answered as {"error": message} with this status (and headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _client_fault(exc: BaseException | None) -> bool:
    """An exception that says the client sent bytes that are not HTTP (a duplicate Host, a
    negative Content-Length, a chunk size that is not hex) or a body that cannot be decoded (a
    broken gzip): aiohttp's HttpProcessingError family, and RequestPayloadError carrying one."""
    from aiohttp.http_exceptions import HttpProcessingError
    from aiohttp.web_protocol import RequestPayloadError

    return isinstance(exc, (HttpProcessingError, RequestPayloadError))


class ClientFaultLogFilter(logging.Filter):
    """On aiohttp's "aiohttp.server" logger: a request the client got wrong was logged at ERROR
    with a traceback (about 800 bytes of the operator's log per 40-byte request, before any
    token check). The client already gets its 400; such a record is dropped, or, with `dhlive
    -v`, kept as one INFO line without the traceback. Other errors pass as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not _client_fault(exc):
            return True
        if not logging.getLogger("dhlive_cli").isEnabledFor(logging.INFO):
            return False
        why = str(getattr(exc, "message", "") or exc).strip().splitlines()
        record.msg, record.args = "%s: %s: %s", (record.getMessage(), type(exc).__name__, why[0] if why else "")
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return True


_AIOHTTP_FILTER = ClientFaultLogFilter()


def quiet_client_faults() -> None:
    """Install ClientFaultLogFilter on "aiohttp.server" (once; idempotent)."""
    logger = logging.getLogger("aiohttp.server")
    if _AIOHTTP_FILTER not in logger.filters:
        logger.addFilter(_AIOHTTP_FILTER)


CORS_METHODS = ("GET", "POST", "DELETE")  # what an --allow-origin page's preflight may announce
MIN_PUBLIC_TOKEN_CHARS = 16  # a bearer token guarding a non-loopback bind is at least this long
TOKEN_RE = re.compile(r"[!-~]+")  # printable ASCII, no spaces: what a Bearer header can carry intact
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _is_ip(h: str) -> bool:
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        return False


def check_token(token: str | None, host: str) -> str | None:
    """The API token as the server will use it, or None. Raises InputError for a token that
    cannot protect the bind: none (or blank) off loopback, shorter than 16 characters off
    loopback, or with spaces/control characters anywhere."""
    token = (token or "").strip() or None
    if token is not None and not TOKEN_RE.fullmatch(token):
        raise InputError("the API token must be printable ASCII without spaces")
    if not is_loopback(host):
        if token is None:
            raise InputError(f"binding to {host} requires a token (DHLIVE_API_TOKEN or --token-file)")
        if len(token) < MIN_PUBLIC_TOKEN_CHARS:
            raise InputError(f"binding to {host} requires a token of at least {MIN_PUBLIC_TOKEN_CHARS} characters")
    return token


def check_origins(origins) -> frozenset[str]:
    """--allow-origin values -> the set the Origin check compares with. Raises InputError."""
    out = set()
    for o in origins or ():
        o = o.strip().rstrip("/").lower()
        rest = o.split("://", 1)[1] if "://" in o else ""
        if not o.startswith(("http://", "https://")) or not rest or "/" in rest:
            raise InputError(f"--allow-origin {o!r}: expected scheme://host[:port], e.g. http://localhost:3000")
        out.add(o)
    return frozenset(out)


def load_token(token_file: str | None, env_value: str | None) -> str | None:
    """The token from --token-file (first line, surrounding blanks dropped) or else from the
    DHLIVE_API_TOKEN value. Raises InputError for an unreadable or empty file."""
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as f:
                text = f.read(4096)
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"--token-file {token_file}: cannot read: {getattr(e, 'strerror', None) or e}") from None
        token = text.strip().split("\n", 1)[0].strip()
        if not token:
            raise InputError(f"--token-file {token_file}: empty")
        return token
    return env_value


class Guards:
    """Middlewares of ApiServer (a mixin: it reads the server's host, port, origins, token and
    counters). Order: errors -> browser (Host, Origin) -> token -> handler."""

    public_paths: frozenset[str] = frozenset()  # GET paths served without the token (set by ApiServer)

    def _host_ok(self, request: web.BaseRequest) -> bool:
        """DNS rebinding defence: the Host a client names must be this server's address or a
        loopback name, on our port. A wildcard bind accepts any IP literal too (a rebinding
        attack always carries a name)."""
        raw = request.headers.get("Host")
        parsed = split_host(raw) if raw else None
        if parsed is None:
            return False
        name, port = parsed
        if (port if port is not None else 80) != self.port:
            return False
        bound = self.host.strip("[]").lower()
        if name == bound or is_loopback(name):
            return True
        return bound in WILDCARD_HOSTS and _is_ip(name)

    def _origin_ok(self, request: web.BaseRequest) -> bool:
        """No Origin (curl, scripts) passes; a browser's Origin must be ours or listed in
        --allow-origin. "null" (sandboxed pages, file://) is never ours."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self.allow_origins:
            return True
        return origin == f"http://{request.headers.get('Host', '').strip().lower()}"

    @web.middleware
    async def _errors_mw(self, request: web.Request, handler):
        self.requests += 1
        try:
            return await handler(request)
        except ApiError as e:
            return self._error_response(request, e.status, e.message, e.headers)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            headers = {k: v for k, v in e.headers.items() if k.lower() not in ("content-type", "content-length")}
            return self._error_response(request, e.status, (e.reason or "error").lower(), headers)
        except ConnectionError as e:
            # the client left (mid-body, a WebSocket that stopped reading) or was dropped as too
            # slow: nobody reads an answer. The body reader keeps this exception, whose traceback
            # holds the request's frames and their buffers: cut it so they are freed now, not at
            # the next full garbage collection
            e.__traceback__ = None
            log.debug("API %s %s: client disconnected", request.method, request.path)
            return self._error_response(request, 400, "connection lost")
        except Exception as e:  # noqa: BLE001 - one bad request must not take the server down
            if _client_fault(e):  # a body that is not what its headers say (a broken gzip)
                why = (str(e).strip().splitlines() or [type(e).__name__])[-1].strip()
                log.debug("API %s %s: bad request body: %s", request.method, request.path, why)
                return self._error_response(request, 400, f"request body could not be read: {why}"[:200])
            log.error("API %s %s failed: %s: %s", request.method, request.path, type(e).__name__, e)
            log.debug("traceback", exc_info=True)
            return self._error_response(request, 500, f"internal error: {type(e).__name__}")

    def _error_response(self, request: web.Request, status: int, message: str, headers=None) -> web.StreamResponse:
        ws = getattr(request, "_dhlive_ws", None)
        if ws is not None and ws.prepared:
            # a WebSocket already switched protocols: an HTTP answer would be garbage in its stream
            return ws
        return web.json_response({"error": message}, status=status, headers=headers)

    def cors_origin(self, request: web.BaseRequest) -> str | None:
        """The request's Origin as sent, when it is one the operator listed with --allow-origin
        (and not the API's own): such a page may call the API, CORS included. None otherwise."""
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        norm = origin.strip().rstrip("/").lower()
        if norm not in self.allow_origins or norm == f"http://{request.headers.get('Host', '').strip().lower()}":
            return None
        return origin.strip()

    @web.middleware
    async def _browser_mw(self, request: web.Request, handler):
        if not self._host_ok(request):
            raise ApiError(421, "this server does not answer for that Host (use its address or localhost)")
        if not self._origin_ok(request):
            raise ApiError(403, "cross-origin request refused (the operator allows origins with --allow-origin)")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            # a CORS preflight: granted to --allow-origin origins only (no token is sent with
            # one; the request it announces is checked in full when it comes)
            origin = self.cors_origin(request)
            want = request.headers["Access-Control-Request-Method"].strip().upper()
            if origin is None or want not in CORS_METHODS:
                raise ApiError(403, "cross-origin request refused (the operator allows origins with --allow-origin)")
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": ", ".join(CORS_METHODS),
                "Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Max-Age": "600",
                "Vary": "Origin"})
        return await handler(request)

    async def _cors_headers(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """on_response_prepare: every answer to an --allow-origin origin (errors too) may be read
        by its page; nothing is added for any other request."""
        origin = self.cors_origin(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After, WWW-Authenticate"
            response.headers.add("Vary", "Origin")

    @web.middleware
    async def _auth_mw(self, request: web.Request, handler):
        # the preview page's static files (no data in them) are the only paths open without the
        # token: a browser cannot attach one to a navigation; the page sends it on every call
        if self._token is not None and not (request.method in ("GET", "HEAD") and request.path in self.public_paths):
            given = ""
            scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                given = cred.strip()
            elif (request.headers.get("Upgrade", "").lower() == "websocket" and request.method == "GET"
                  and request.path.endswith("/stream")):
                # browsers cannot set headers on a WebSocket: there, and only there, the token may
                # come in the query
                given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"), self._token):
                raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="dhlive"'})
        return await handler(request)


def require_json(request: web.BaseRequest, allow_empty: bool = False) -> None:
    """JSON endpoints take application/json only: a browser cannot send that cross-site without
    a preflight, which this server grants only to --allow-origin origins (415 otherwise)."""
    if allow_empty and not request.can_read_body:
        return
    mime = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if mime != "application/json":
        raise ApiError(415, "send the body as application/json")


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _RepeatedKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def parse_json(body: bytes | bytearray):
    """JSON from a client: malformed, not UTF-8, nested too deep or an object naming a key
    twice (json keeps the last silently: {"name": "a", ..., "name": "b"} made session b) ->
    ApiError 400."""
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except _RepeatedKey as e:
        raise ApiError(400, f"key {e.args[0]!r} appears twice in the JSON body") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "body must be valid JSON (UTF-8, nested at most a few hundred levels)") from None
