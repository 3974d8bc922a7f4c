"""Host names as servers meet them: is a name this machine's loopback, and the name in a Host
header. Shared by the live API's browser checks (api.guards) and the metrics port (metrics)."""

from __future__ import annotations

import ipaddress
import re


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback IP literals (127.0.0.0/8, ::1, in one pair of brackets
    or none, a trailing dot allowed); False for other names, which may resolve anywhere, and
    for anything malformed ("[[::1]]", "localhost]")."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h.rstrip(".")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


# RFC 9110 7.2 / RFC 3986 3.2.2: a reg-name or IPv4 literal, or an IPv6 literal in brackets,
# then an optional port of ASCII digits (empty allowed: "host:")
_HOST_PORT = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::([0-9]{0,5}))?", re.ASCII)


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header -> (lower-case name without brackets or trailing dot, port or None), or
    None when it is not host[:port] ("[::1].evil.example", "localhost:evil", "localhost]:80",
    "127.0.0.1:80@evil.example", a port in other digits than 0-9)."""
    m = _HOST_PORT.fullmatch(value.strip())
    if not m:
        return None
    name = (m.group(1) or m.group(2)).lower().rstrip(".")
    return name, int(m.group(3)) if m.group(3) else None


def header_host(value: str) -> str:
    """The name in a Host header without its port: "[::1]:8765" -> "::1", "a.b:80" -> "a.b",
    "::1" (an IPv6 literal left unbracketed) as it is. Anything else that is not host[:port]
    comes back whole, so is_loopback() refuses it."""
    parsed = split_host(value)
    return parsed[0] if parsed else value.strip()
