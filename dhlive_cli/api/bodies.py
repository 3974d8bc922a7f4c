"""Request bodies: bounded reads, spooling uploads to disk, content types, PCM conversion."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import tempfile
import time

import numpy as np
from aiohttp import web

from dhlive_cli.api.guards import ApiError
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 2**20
SPOOL_FLUSH_BYTES = 256 * 2**10  # an upload is held in memory at most this much before it goes to disk
MAX_UPLOADS = 64  # bodies received at once; when full, the slowest one older than EVICT_AFTER_S goes
EVICT_AFTER_S = 1.0
BODY_IDLE_S = 3.0  # longest pause between two pieces of a body
BODY_DEADLINE_S = 60.0  # longest time to receive a whole body (20 MB at ~350 kB/s)
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
            k = k.strip().lower()
            if k in params:  # "rate=8000; rate=48000": refuse rather than guess which one is meant
                raise ApiError(400, f"content type parameter {k[:20]!r} given twice")
            params[k] = v.strip().strip('"')
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


def pcm_byte_order(mime: str, params: dict[str, str]) -> str:
    """The numpy dtype of a PCM body's samples: `audio/L16` is big-endian (network byte order,
    RFC 2586); `audio/pcm` is little-endian unless `format=s16be` (`format=s16le` is the
    default). ApiError 415 for any other format."""
    if mime == "audio/l16":
        return ">i2"
    fmt = params.get("format", "s16le").lower()
    if fmt not in ("s16le", "s16be"):
        raise ApiError(415, f"audio/pcm format={fmt[:20]!r}: expected s16le or s16be")
    return "<i2" if fmt == "s16le" else ">i2"


PCM_BLOCK_FRAMES = 32768  # input frames converted at a time (pcm_to_f32)


def pcm_to_f32(body: bytes | bytearray | np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1,
               dtype: str = "<i2") -> np.ndarray:
    """16-bit interleaved PCM (dtype "<i2" little-endian or ">i2" big-endian) at `rate` Hz with
    `channels` channels -> 16 kHz mono float32 in [-1, 1), shape (n,). Channels are averaged;
    another rate goes through one streaming libsoxr resampler ("HQ"), as the WebSocket stream's
    does (utterances.py). Converted PCM_BLOCK_FRAMES input frames at a time into one output
    array: besides the body, a decode holds its output and one block (a 11.5 MB body at 192 kHz
    stereo took about 110 MB at once with whole-array float64 interpolation). Raises ApiError 400
    when the body is not whole samples x channels."""
    if len(body) % (2 * channels):
        raise ApiError(400, f"PCM body of {len(body)} bytes is not whole 16-bit samples x {channels} channel(s)")
    pcm = np.frombuffer(body, dtype=dtype).reshape(-1, channels)
    frames = pcm.shape[0]
    resampler = None
    if rate != SAMPLE_RATE and frames:
        import soxr

        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    out = np.empty(int(frames * SAMPLE_RATE / rate) + 64 if resampler else frames, dtype=np.float32)
    n = 0
    for i in range(0, max(frames, 1), PCM_BLOCK_FRAMES):
        block = pcm[i:i + PCM_BLOCK_FRAMES]
        x = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0].astype(np.float32)
        x *= 1.0 / 32768
        last = i + PCM_BLOCK_FRAMES >= frames
        if resampler is not None:
            x = resampler.resample_chunk(x, last=last)
        m = min(x.shape[0], out.shape[0] - n)
        out[n:n + m] = x[:m]
        n += m
    return out[:n]


class Upload:
    """One body being received: enough to pick the slowest when the table is full."""

    __slots__ = ("request", "started", "received")

    def __init__(self, request: web.BaseRequest, now: float):
        self.request, self.started, self.received = request, now, 0

    def rate(self, now: float) -> float:
        return self.received / max(now - self.started, 1e-3)


class BodyReader:
    """Body reading for ApiServer's handlers (a mixin: it uses the server's limits and pool).

    Every read has deadlines: a body must keep arriving (at most BODY_IDLE_S between chunks)
    and be complete within BODY_DEADLINE_S; a client that misses either is dropped (the
    connection closed, nothing answered). At most MAX_UPLOADS bodies are received at once; when
    the table is full, a new upload takes the place of the slowest one that has been at it for
    more than a second, so slow clients can delay nobody. Uploads are spooled to disk in
    SPOOL_FLUSH_BYTES pieces: an upload holds at most that much memory, and an upload that
    ends early (client gone, too slow, too big) frees it at once."""

    def _check_length(self, request: web.Request, limit: int, too_long: str) -> None:
        cl = request.content_length
        if cl is not None and cl > self.max_body_bytes:
            raise ApiError(413, f"body of {cl} bytes is over the {self.max_body_bytes} byte limit")
        if cl is not None and cl > limit:
            raise ApiError(413, too_long)

    def _admit_upload(self, request: web.BaseRequest) -> Upload:
        """A place in the upload table, or ApiError 503 when it is full of fast uploads."""
        now = time.monotonic()
        if len(self._uploads) >= MAX_UPLOADS:
            old = [u for u in self._uploads if now - u.started >= EVICT_AFTER_S]
            if not old:
                raise ApiError(503, "too many uploads in progress", {"Retry-After": "1"})
            victim = min(old, key=lambda u: u.rate(now))
            self._uploads.discard(victim)
            self.dropped_slow += 1
            log.debug("API: dropping the slowest upload (%.0f B/s) for a new one", victim.rate(now))
            _drop(victim.request)
        u = Upload(request, now)
        self._uploads.add(u)
        return u

    async def _chunks(self, request: web.Request, limit: int, too_long: str, upload: Upload | None = None):
        """The body's chunks, each within BODY_IDLE_S, all within BODY_DEADLINE_S, at most
        `limit` bytes in all (ApiError 413)."""
        self._check_length(request, limit, too_long)
        loop = asyncio.get_running_loop()
        end = loop.time() + BODY_DEADLINE_S
        total = 0
        content = request.content
        while True:
            wait = min(BODY_IDLE_S, end - loop.time())
            try:
                if wait <= 0:
                    raise TimeoutError
                async with asyncio.timeout(wait):
                    chunk = await content.readany()
            except TimeoutError:
                self.dropped_slow += 1
                _drop(request)
                raise ConnectionResetError("request body too slow: client dropped") from None
            if not chunk:
                return
            total += len(chunk)
            if upload is not None:
                upload.received = total
            if total > limit:
                raise ApiError(413, too_long if limit < self.max_body_bytes
                               else f"body is over the {self.max_body_bytes} byte limit")
            yield chunk

    async def _read_body(self, request: web.Request, limit: int, too_long: str) -> bytearray:
        """A small body (JSON) in memory."""
        body = bytearray()
        try:
            async for chunk in self._chunks(request, limit, too_long):
                body += chunk
        except BaseException:
            body.clear()  # freed now, even while a traceback still refers to this frame
            raise
        return body

    async def _spool(self, request: web.Request, limit: int, too_long: str, small_in_memory: bool = False):
        """The body in a temp file (ffmpeg needs a seekable input for many containers); the
        caller owns the file. At most SPOOL_FLUSH_BYTES of it are in memory at a time. With
        small_in_memory, a body no larger than that is returned as a bytearray instead."""
        upload = self._admit_upload(request)
        f = path = None
        pending = bytearray()
        try:
            total = 0
            async for chunk in self._chunks(request, limit, too_long, upload):
                total += len(chunk)
                pending += chunk
                if len(pending) >= SPOOL_FLUSH_BYTES:
                    if f is None:
                        fd, path = tempfile.mkstemp(prefix="dhlive-api-", suffix=".upload")
                        f = os.fdopen(fd, "wb")
                    await self._run(f.write, pending)
                    pending.clear()
            if total == 0:
                raise ApiError(400, "empty body: send an audio file or PCM")
            if f is None and small_in_memory:
                return pending
            if f is None:
                fd, path = tempfile.mkstemp(prefix="dhlive-api-", suffix=".upload")
                f = os.fdopen(fd, "wb")
            if pending:
                await self._run(f.write, pending)
            f.close()
            return path
        except BaseException as e:
            pending.clear()  # freed now, even while a traceback still refers to this frame
            if f is not None:
                try:
                    f.close()  # its flush may fail again (a full disk): the file is closed anyway
                except OSError:
                    pass
            if path is not None:
                _unlink_quiet(path)
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                # the client did nothing wrong and may try later: 507, not an "internal error" 500
                raise ApiError(507, "no space left to receive the upload (the server's temp folder is full)") from None
            if isinstance(e, OSError) and not isinstance(e, (ConnectionError, TimeoutError)):
                log.warning("cannot spool an upload: %s", e.strerror or e)
                raise ApiError(503, f"cannot store the upload: {e.strerror or e}", {"Retry-After": "5"}) from None
            raise
        finally:
            self._uploads.discard(upload)


def _drop(request: web.BaseRequest) -> None:
    """Close a client's connection now, without an answer or the lingering read of its body."""
    proto = request.protocol
    if proto is not None:
        proto.force_close()
