"""Request bodies: bounded reads, spooling uploads to disk, content types, PCM conversion."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from aiohttp import web

from dhlive_cli.api.guards import ApiError
from dhlive_cli.timebase import SAMPLE_RATE

MAX_BODY_BYTES = 20 * 2**20
SPOOL_FLUSH_BYTES = 2**20  # an upload is held in memory at most this much before it goes to disk
PCM_TYPES = ("audio/l16", "audio/pcm")


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    mime, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        k, eq, v = part.partition("=")
        if eq:
            params[k.strip().lower()] = v.strip().strip('"')
    return mime.strip().lower(), params


def _int_param(params: dict[str, str], key: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = -1
    if not lo <= v <= hi:
        raise ApiError(400, f"content type parameter {key}={raw!r}: expected an integer {lo}..{hi}")
    return v


def pcm_to_f32(body: bytes | bytearray, rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    """s16le interleaved PCM at any rate -> 16 kHz mono float32."""
    if len(body) % (2 * channels):
        raise ApiError(400, f"PCM body of {len(body)} bytes is not whole s16le samples x {channels} channel(s)")
    x = np.frombuffer(body, dtype="<i2")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    else:
        x = x.astype(np.float32)
    x *= 1.0 / 32768
    if rate != SAMPLE_RATE and x.shape[0]:
        if rate > SAMPLE_RATE:
            # linear interpolation alone folds everything above 8 kHz back into the band that goes
            # out on the stream; a box filter as wide as the decimation step is a crude low-pass
            taps = round(rate / SAMPLE_RATE)
            if taps > 1:
                x = np.convolve(x, np.full(taps, 1.0 / taps, dtype=np.float32), mode="same")
        n_out = int(round(x.shape[0] * SAMPLE_RATE / rate))
        x = np.interp(np.arange(n_out) * (rate / SAMPLE_RATE), np.arange(x.shape[0]), x).astype(np.float32)
    return x


class BodyReader:
    """Body reading for ApiServer's handlers (a mixin: it uses the server's limits and pool)."""

    def _check_length(self, request: web.Request, limit: int, too_long: str) -> None:
        cl = request.content_length
        if cl is not None and cl > self.max_body_bytes:
            raise ApiError(413, f"body of {cl} bytes is over the {self.max_body_bytes} byte limit")
        if cl is not None and cl > limit:
            raise ApiError(413, too_long)

    async def _read_body(self, request: web.Request, limit: int, too_long: str) -> bytearray:
        self._check_length(request, limit, too_long)
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                raise ApiError(413, too_long if limit < self.max_body_bytes
                                else f"body is over the {self.max_body_bytes} byte limit")
        return body

    async def _spool(self, request: web.Request) -> str:
        """The body in a temp file (ffmpeg needs a seekable input for many containers)."""
        self._check_length(request, self.max_body_bytes, "")
        fd, path = tempfile.mkstemp(prefix="dhlive-api-", suffix=".upload")
        f = os.fdopen(fd, "wb")
        try:
            total = 0
            pending = bytearray()
            async for chunk in request.content.iter_chunked(65536):
                total += len(chunk)
                if total > self.max_body_bytes:
                    raise ApiError(413, f"body is over the {self.max_body_bytes} byte limit")
                pending += chunk
                if len(pending) >= SPOOL_FLUSH_BYTES:
                    await self._run(f.write, pending)
                    pending = bytearray()
            if pending:
                await self._run(f.write, pending)
            if total == 0:
                raise ApiError(400, "empty body: send an audio file or PCM")
            f.close()
            return path
        except BaseException:
            f.close()
            os.unlink(path)
            raise
