"""Host names as servers meet them: is a name this machine's loopback, and the name in a Host
header. Shared by the live API's browser checks (api.guards) and the metrics port (metrics)."""

from __future__ import annotations

import ipaddress


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


def header_host(value: str) -> str:
    """The name in a Host header without its port: "[::1]:8765" -> "::1", "a.b:80" -> "a.b",
    "::1" (an IPv6 literal left unbracketed) as it is."""
    h = value.strip()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h[1:]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h
