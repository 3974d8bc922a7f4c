"""Host names as servers meet them: is a name this machine's loopback, and the name in a Host
header. Shared by the live API's browser checks (api.guards) and the metrics port (metrics)."""

from __future__ import annotations

import ipaddress
import re


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback IP literals (127.0.0.0/8, ::1, bracketed or not, a
    trailing dot allowed); False for other names, which may resolve anywhere."""
    h = host.strip().strip("[]").lower().rstrip(".")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


# RFC 9110 7.2 / RFC 3986 3.2.2: a reg-name or IPv4 literal, or an IPv6 literal in brackets,
# then an optional numeric port
_HOST_PORT = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::[0-9]{1,5})?")


def header_host(value: str) -> str:
    """The name in a Host header without its port: "[::1]:8765" -> "::1", "a.b:80" -> "a.b",
    "::1" (an IPv6 literal left unbracketed) as it is. Anything else that is not host[:port]
    ("[::1].evil.example", "localhost:evil", "127.0.0.1:80@evil.example") comes back whole, so
    is_loopback() refuses it."""
    h = value.strip()
    m = _HOST_PORT.fullmatch(h)
    if m:
        return m.group(1) or m.group(2)
    return h
