"""What an RTMP encoder's log says about its publish: accepted, refused (and why), or neither."""

from __future__ import annotations

import re

_LEVEL_RE = re.compile(rb"^((?:\[[^\]]* @ 0x[0-9a-f]+\] )?)\[(panic|fatal|error|warning|info|verbose)\] ")
_ERROR_LEVELS = (b"panic", b"fatal", b"error")


class PublishLog:
    """The stderr of an RTMP encoder run with `-loglevel level+verbose -nostats`, read line by
    line: error lines go on (level tag removed) to StderrTail and the wedge watch as with
    `-loglevel error`; the verbose/info lines only mark how far the publish got.

    ffmpeg 5.1 opens an RTMP output in three steps, each visible at this level: the TCP
    connection ("Successfully connected to HOST port N", verbose), the RTMP handshake and
    `publish` command (silent unless the server answers an error status, e.g. nginx-rtmp's
    "Server error: Already publishing"), then the muxer header ("Output #0, flv, to ...",
    info) once the server accepted the stream. A server that refuses the publish without a
    status -- nginx-rtmp when its on_publish callback answers 4xx closes the connection --
    leaves ffmpeg's URL-open error ("URL: Input/output error" in 5.1, "Error opening output URL:
    Input/output error" in 7 and later) after a successful TCP connect
    and before any header: that is told apart from a server that is down (no connect) or lost
    mid-stream (after the header)."""

    def __init__(self, stream, on_line, target: str):
        self._stream, self._on_line = stream, on_line
        t = target.encode()
        # ffmpeg 5.1: "URL: Input/output error"; 7 and later: "Error opening output URL: ..."
        self._open_errors = (t + b": ", b"Error opening output " + t + b": ", b"Error opening output file " + t)
        self.tcp_connected = False
        self.on_air = False  # the server accepted the publish: the stream is being muxed to it
        self.server_error: str | None = None  # an RTMP error status ("Already publishing")
        self.open_failed = False  # ffmpeg could not open the URL at all

    def __iter__(self):
        for raw in self._stream:
            m = _LEVEL_RE.match(raw)
            level = m.group(2) if m else b"error"  # an untagged line continues a message: keep it
            body = raw[m.end():] if m else raw
            if level in _ERROR_LEVELS:
                if not self.on_air:
                    if body.startswith(self._open_errors):
                        self.open_failed = True
                    elif body.startswith(b"Server error: "):
                        self.server_error = body[14:].decode("utf-8", "replace").strip()
                if body.strip():
                    self._on_line()
                    yield (m.group(1) if m else b"") + body
            elif not self.on_air:
                if b"Successfully connected to" in body:
                    self.tcp_connected = True
                elif body.startswith(b"Output #0"):
                    self.on_air = True

    @property
    def refused(self) -> str | None:
        """Why the server refused the publish, or None when it did not (yet)."""
        if self.on_air:
            return None
        if self.server_error:
            return f"the server answered: {self.server_error}"
        if self.tcp_connected and self.open_failed:
            return "the server closed the connection on the publish request (stream key refused, e.g. by on_publish)"
        return None


__all__ = ["PublishLog"]
