"""A small RTMP server that refuses every publish with an error status naming the stream key,
as a careless or hostile server may: what the tests use to check that the key the server echoes
is still redacted in dhlive's log, status and metrics.

It speaks only what ffmpeg's RTMP publisher needs to get to its `publish` command (Adobe RTMP
specification 1.0, sections 5.2 handshake, 5.3 chunking, 7.2 commands; AMF0 encoding from the
AMF0 specification): the plain handshake (ffmpeg checks the server's digest only when playing),
chunks of any size it announces, `connect` and `createStream` answered `_result`, then
`onStatus` with level "error" and a description holding the key without its `?arguments`
(ffmpeg logs it as
"Server error: ..."), and the connection closed. nginx-rtmp cannot be made to answer that way.
"""

from __future__ import annotations

import socket
import struct
import threading


def _amf_str(s: str) -> bytes:
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def _amf_num(x: float) -> bytes:
    return b"\x00" + struct.pack(">d", x)


def _amf_obj(d: dict) -> bytes:
    out = b"\x03"
    for k, v in d.items():
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + (_amf_str(v) if isinstance(v, str) else _amf_num(v))
    return out + b"\x00\x00\x09"


def _amf_read(buf: bytes, pos: int):
    """One AMF0 value at pos -> (value, next pos). Strings, numbers, booleans, null, objects and
    ECMA arrays: all ffmpeg sends in these commands."""
    t = buf[pos]
    pos += 1
    if t == 0x00:
        return struct.unpack(">d", buf[pos:pos + 8])[0], pos + 8
    if t == 0x01:
        return bool(buf[pos]), pos + 1
    if t == 0x02:
        n = struct.unpack(">H", buf[pos:pos + 2])[0]
        return buf[pos + 2:pos + 2 + n].decode("utf-8", "replace"), pos + 2 + n
    if t in (0x05, 0x06):
        return None, pos
    if t in (0x03, 0x08):
        if t == 0x08:
            pos += 4
        out = {}
        while buf[pos:pos + 3] != b"\x00\x00\x09":
            n = struct.unpack(">H", buf[pos:pos + 2])[0]
            key = buf[pos + 2:pos + 2 + n].decode("utf-8", "replace")
            out[key], pos = _amf_read(buf, pos + 2 + n)
        return out, pos + 3
    raise ValueError(f"AMF0 type {t} not handled")


class EchoKeyRtmpServer:
    """Listens on 127.0.0.1:port (a free one) until stop(); `refusals` counts the publishes it
    refused, `keys` the stream keys it was asked to publish."""

    def __init__(self):
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.refusals = 0
        self.keys: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def __enter__(self) -> "EchoKeyRtmpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with conn:
                self._session(conn)
        except (OSError, ValueError, struct.error, IndexError):
            pass  # the encoder went away or sent what this small server does not parse

    @staticmethod
    def _exact(conn: socket.socket, n: int) -> bytes:
        out = b""
        while len(out) < n:
            got = conn.recv(n - len(out))
            if not got:
                raise OSError("closed")
            out += got
        return out

    def _session(self, conn: socket.socket) -> None:
        c0c1 = self._exact(conn, 1537)
        conn.sendall(b"\x03" + bytes(1536) + c0c1[1:])  # S0, S1 (time 0, zeros), S2 = C1 echoed
        self._exact(conn, 1536)  # C2
        in_chunk = 128
        headers: dict[int, list] = {}  # csid -> [timestamp, length, type, stream id]
        partial: dict[int, bytes] = {}
        key = ""
        while True:
            b0 = self._exact(conn, 1)[0]
            fmt, csid = b0 >> 6, b0 & 0x3F
            if csid == 0:
                csid = 64 + self._exact(conn, 1)[0]
            elif csid == 1:
                lo, hi = self._exact(conn, 2)
                csid = 64 + lo + 256 * hi
            h = headers.setdefault(csid, [0, 0, 0, 0])
            if fmt <= 2:
                ts = int.from_bytes(self._exact(conn, 3), "big")
                if fmt <= 1:
                    m = self._exact(conn, 4)
                    h[1], h[2] = int.from_bytes(m[:3], "big"), m[3]
                if fmt == 0:
                    h[3] = int.from_bytes(self._exact(conn, 4), "little")
                if ts == 0xFFFFFF:
                    self._exact(conn, 4)
            have = partial.get(csid, b"")
            have += self._exact(conn, min(in_chunk, h[1] - len(have)))
            if len(have) < h[1]:
                partial[csid] = have
                continue
            partial[csid] = b""
            mtype, body = h[2], have
            if mtype == 1:  # Set Chunk Size
                in_chunk = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
                continue
            if mtype != 20:  # only AMF0 commands matter here
                continue
            name, pos = _amf_read(body, 0)
            txn, pos = _amf_read(body, pos)
            args = []
            while pos < len(body):
                v, pos = _amf_read(body, pos)
                args.append(v)
            if name == "connect":
                self._send(conn, 0, _amf_str("_result") + _amf_num(txn)
                           + _amf_obj({"fmsVer": "FMS/3,0,1,123", "capabilities": 31})
                           + _amf_obj({"level": "status", "code": "NetConnection.Connect.Success",
                                       "description": "Connection succeeded."}))
            elif name == "createStream":
                self._send(conn, 0, _amf_str("_result") + _amf_num(txn) + b"\x05" + _amf_num(1))
            elif name == "publish":
                key = next((a for a in args if isinstance(a, str)), key)
                self.keys.append(key)
                self.refusals += 1
                self._send(conn, 1, _amf_str("onStatus") + _amf_num(0) + b"\x05"
                           + _amf_obj({"level": "error", "code": "NetStream.Publish.BadName",
                                       # the name without its arguments, as nginx-rtmp splits them
                                       "description": f"stream key {key.partition('?')[0]} is not allowed here"}))
                return

    @staticmethod
    def _send(conn: socket.socket, stream_id: int, body: bytes) -> None:
        """One AMF0 command message on chunk stream 3, in 128-byte chunks (the default size)."""
        head = bytes([0x03]) + bytes(3) + len(body).to_bytes(3, "big") + bytes([20]) + stream_id.to_bytes(4, "little")
        out = head + body[:128]
        for i in range(128, len(body), 128):
            out += bytes([0xC3]) + body[i:i + 128]
        conn.sendall(out)
