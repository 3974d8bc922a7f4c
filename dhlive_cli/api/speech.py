"""POST speak and interrupt: an utterance goes into a session's speech buffer whole or not at all."""

from __future__ import annotations

import asyncio
import math

import numpy as np
from aiohttp import web

from dhlive_cli.api.bodies import PCM_TYPES, _int_param, _parse_content_type, _unlink_quiet, pcm_byte_order, pcm_to_f32
from dhlive_cli.api.guards import ApiError, require_json
from dhlive_cli.audio_probe import SAFE_AUDIO_DEMUXERS
from dhlive_cli.errors import InputError
from dhlive_cli.sources import FileAudioSource
from dhlive_cli.timebase import SAMPLE_RATE

UPLOAD_DEMUXERS = SAFE_AUDIO_DEMUXERS  # an upload is decoded by plain audio demuxers only


class SpeechRoutes:
    """/v1/speak and /v1/interrupt handlers of ApiServer (a mixin)."""

    def _push(self, session, samples: np.ndarray) -> int:
        """The whole utterance or nothing: a half-pushed sentence would play cut off."""
        if self._closing.is_set():
            raise ApiError(503, "API server is stopping")
        n = samples.shape[0]
        if n == 0:
            raise ApiError(400, "the body holds no audio samples")
        if not session.speech.push(samples):
            # the buffer drains at 1 s of speech per second: this is when it would fit
            wait = max(1, math.ceil((n - session.speech.free()) / SAMPLE_RATE))
            raise ApiError(429, f"speech buffer full: {session.speech.queued() / SAMPLE_RATE:.1f} s queued, "
                                 f"this utterance needs {n / SAMPLE_RATE:.1f} s", {"Retry-After": str(wait)})
        return n

    def _too_long(self, session) -> str:
        return f"utterance longer than the speech buffer ({session.speech.capacity / SAMPLE_RATE:g} s)"

    def _decode_push(self, path: str, session) -> int:
        """Worker thread: decode a spooled upload into one capacity-sized buffer, then push it."""
        cap = session.speech.capacity
        try:
            try:
                src = FileAudioSource(path, formats=UPLOAD_DEMUXERS)
                est = src.info.estimated_samples
                # a container that states its length spares decoding what would be refused anyway
                if est is not None and est > cap * 1.02 + SAMPLE_RATE // 2:
                    raise ApiError(413, self._too_long(session))
                buf = np.empty(cap, dtype=np.float32)
                with src:
                    n = src.read_into(buf)
                    if n == cap and src.read_into(np.empty(64, dtype=np.float32)) > 0:
                        raise ApiError(413, self._too_long(session))
            except InputError as e:
                raise ApiError(400, str(e).replace(path, "request body")) from None
        finally:
            _unlink_quiet(path)
        return self._push(session, buf[:n])

    def _pcm_push(self, body: "str | bytearray", rate: int, channels: int, session, dtype: str = "<i2") -> int:
        """Worker thread: a PCM body (at most the speech buffer's worth), in memory or spooled -> push."""
        if isinstance(body, str):
            path = body
            try:
                body = np.fromfile(path, dtype=np.uint8)
            finally:
                _unlink_quiet(path)
        x = pcm_to_f32(body, rate, channels, dtype)
        del body
        if x.shape[0] > session.speech.capacity:
            raise ApiError(413, self._too_long(session))
        return self._push(session, x)

    # ------------------------------------------------------------------ handlers
    async def _speak(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session.cancel.is_set():
            raise ApiError(503, "session is not running")
        mime, params = _parse_content_type(request.headers.get("Content-Type", "application/octet-stream"))
        if mime in PCM_TYPES:
            rate = _int_param(params, "rate", SAMPLE_RATE, 4000, 192000)
            channels = _int_param(params, "channels", 1, 1, 8)
            dtype = pcm_byte_order(mime, params)
        elif not (mime.startswith("audio/") or mime == "application/octet-stream"):
            raise ApiError(415, f"unsupported content type {mime!r}: send audio/* or application/octet-stream "
                                 "(an audio file), audio/L16; rate=16000 (big-endian PCM) or "
                                 "audio/pcm; rate=16000 (little-endian PCM)")
        try:
            if mime in PCM_TYPES:
                cap = session.speech.capacity
                # a PCM body longer than the buffer is refused as it arrives, before it is all held
                limit = min(self.max_body_bytes, (math.ceil(cap * rate / SAMPLE_RATE) + 1) * 2 * channels)
                path = await self._spool(request, limit, self._too_long(session), small_in_memory=True)
                job = (self._pcm_push, path, rate, channels, session, dtype)
            else:
                path = await self._spool(request, self.max_body_bytes, "")
                job = (self._decode_push, path, session)
            try:
                n = await self._run(*job)
            except (asyncio.CancelledError, RuntimeError):
                # stop(): the job may never run to remove its file (it does in every other case)
                if isinstance(path, str):
                    _unlink_quiet(path)
                raise
        except ApiError as e:
            if e.status == 429:
                self.rejected_429 += 1
            raise
        return web.json_response({"queued_s": round(session.speech.queued() / SAMPLE_RATE, 3),
                                  "utterance_s": round(n / SAMPLE_RATE, 3)}, status=202)

    async def _interrupt(self, request: web.Request) -> web.Response:
        require_json(request, allow_empty=True)
        session = self._session(request)
        dropped = session.interrupt()
        return web.json_response({"dropped_s": round(dropped / SAMPLE_RATE, 3)})
