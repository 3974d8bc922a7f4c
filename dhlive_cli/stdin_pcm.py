"""Speech on a live session's stdin: raw PCM, or WAV as text-to-speech tools write it.

`dhlive live --input -` reads raw s16le 16 kHz mono. Many TTS tools write a WAV to stdout
instead (`espeak-ng --stdout`: 22.05 kHz; others at 24 or 48 kHz): its 44-byte header was read
as sound and its samples played at the wrong speed. PcmStream tells the two apart by the first
12 bytes ("RIFF", size, "WAVE"; RFC 2361 and Microsoft's RIFF specification) and turns either
into 16 kHz mono float32, incrementally, as bytes arrive:

- raw: s16le, 16 kHz, mono, as before;
- WAV: 16-bit integer or 32-bit float samples (format tags 1 and 3, or WAVE_FORMAT_EXTENSIBLE
  with those sub-formats), any rate from 8 to 384 kHz, any number of channels (averaged), then
  resampled by one streaming libsoxr resampler per format (quality "HQ", as the API's PCM bodies).
  A data chunk with a real size is followed by the next chunk or the next WAV (a TTS writing
  one WAV per reply onto the same pipe). Writers on a pipe cannot know the length and put 0,
  0xFFFFFFFF or (espeak-ng) 0x7FFFF000: such data runs until the next WAV's first 16 bytes
  ("RIFF", a size, "WAVEfmt ") or the end of the stream, so the next reply's header is never
  played as sound (the chance of those 12 fixed bytes inside sound is negligible; a few bytes
  that might be their start are held back until the next read tells). A chunk that ends inside
  a sample drops that sample's bytes. Float samples are clipped to [-1, 1].
"""

from __future__ import annotations

import struct

import numpy as np

from dhlive_cli.audio_probe import wav_size_unknown
from dhlive_cli.timebase import SAMPLE_RATE

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_MAX_FMT_BYTES = 1024


_WAV_START = b"WAVEfmt "  # bytes 8-15 of a WAV file (after "RIFF" and its size)


def _find_wav_start(b: bytearray, limit: int, end: bool) -> tuple[int, bool] | None:
    """(where in b[:limit] a WAV file begins: "RIFF", 4 size bytes, "WAVEfmt ", True), or
    (where one might still begin once more bytes come, False): a "RIFF" too close to the end
    to tell, or the last 1-3 bytes, which may be the start of one. None when neither (at the
    end of the stream only a whole header counts)."""
    pos = b.find(b"RIFF", 0, limit)
    while pos != -1:
        if pos + 16 <= len(b):
            if b[pos + 8 : pos + 16] == _WAV_START:
                return pos, True
        elif not end:
            return pos, False  # not enough bytes yet to tell: wait for them
        pos = b.find(b"RIFF", pos + 1, limit)
    if not end and limit == len(b):
        for k in (3, 2, 1):  # "RIF", "RI" or "R" at the very end
            if limit >= k and b"RIFF".startswith(bytes(b[limit - k : limit])):
                return limit - k, False
    return None


class PcmStream:
    """Bytes -> 16 kHz mono float32 in [-1, 1]. feed(bytes) returns what the bytes so far
    complete (shape (n,), maybe n = 0); finish() returns the rest once the stream has ended.
    Raises ValueError for a WAV it cannot play (other sample formats, no "fmt " chunk before
    "data", a rate outside 8..384 kHz); the caller stops reading then."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "start"
        self._dtype: str | None = None  # "<i2" or "<f4" once a format is known
        self._channels = 1
        self._rate = SAMPLE_RATE
        self._left: int | None = None  # bytes left in a sized data chunk; None: to the end
        self._pad = 0  # a chunk of odd size is followed by one pad byte
        self._resampler = None
        self.kind = None  # "raw" or "wav", once the first 12 bytes (or the end) have come

    def feed(self, data: bytes | bytearray | memoryview) -> np.ndarray:
        self._buf += data
        out: list[np.ndarray] = []
        while self._step(out, end=False):
            pass
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        out: list[np.ndarray] = []
        while self._step(out, end=True):
            pass
        if self._resampler is not None:
            out.append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self._resampler = None
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    # ------------------------------------------------------------------ parsing
    def _step(self, out: list, end: bool) -> bool:
        """One step of the parser on the buffered bytes; False when it needs more (or, at the
        end, when nothing more can be made of them)."""
        b = self._buf
        if self._state == "start":
            if len(b) < 12 and not end:
                return False
            if len(b) >= 12 and b[:4] == b"RIFF" and b[8:12] == b"WAVE":
                del b[:12]
                self._state, self._dtype = "chunks", None
                self.kind = self.kind or "wav"
            else:
                self._state, self._dtype, self._channels, self._left = "raw", "<i2", 1, None
                self._set_rate(SAMPLE_RATE, out)
                self.kind = self.kind or "raw"
            return True
        if self._state == "skip":
            k = min(len(b), self._left)
            del b[:k]
            self._left -= k
            if self._left:
                return False
            self._state = "chunks"
            return True
        if self._state == "chunks":
            if len(b) >= 4 and b[:4] == b"RIFF":  # the next WAV on the same stream
                self._state = "start"
                return True
            if len(b) < 8:
                return False
            cid, size = bytes(b[:4]), struct.unpack_from("<I", b, 4)[0]
            if cid == b"fmt ":
                if size > _MAX_FMT_BYTES:  # 16 to 40 bytes in practice; waiting for more would buffer stdin
                    raise ValueError(f"WAV on stdin: a 'fmt ' chunk of {size} bytes")
                if len(b) < 8 + size + (size & 1):
                    return False
                self._read_fmt(bytes(b[8 : 8 + size]), out)
                del b[: 8 + size + (size & 1)]
                return True
            del b[:8]
            if cid == b"data":
                if self._dtype is None:
                    raise ValueError("WAV on stdin: its data comes before its format (no 'fmt ' chunk)")
                self._state = "data"
                self._left = None if wav_size_unknown(size) else size
                self._pad = size & 1
                return True
            self._state, self._left = "skip", size + (size & 1)  # LIST, fact, ...: not sound
            return True
        # "raw" or "data": whole sample frames
        frame = (2 if self._dtype == "<i2" else 4) * self._channels
        limit = len(b) if self._left is None else min(len(b), self._left)
        next_wav = False
        if self._state == "data":
            # the next WAV may begin inside what the header called data: writers on a pipe put a
            # size they cannot know (0, 0xFFFFFFFF, espeak-ng's 0x7FFFF000) and a TTS writes one
            # WAV per reply on the same pipe; its header must not play as sound
            found = _find_wav_start(b, limit, end)
            if found is not None:
                limit, next_wav = found
        take = limit - limit % frame
        if take:
            x = np.frombuffer(bytes(b[:take]), dtype=self._dtype).reshape(-1, self._channels)
            x = x.mean(axis=1, dtype=np.float32) if self._channels > 1 else x[:, 0].astype(np.float32)
            if self._dtype == "<i2":
                x *= 1.0 / 32768.0
            else:
                np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
                np.clip(x, -1.0, 1.0, out=x)
            out.append(self._resampler.resample_chunk(x) if self._resampler is not None else x)
            del b[:take]
            if self._left is not None:
                self._left -= take
        if next_wav:
            del b[: limit - take]  # a partial sample before the next header: not sound
            self._state, self._left, self._pad = "start", None, 0
            return True
        if self._left is not None and 0 < self._left < frame and len(b) >= self._left:
            del b[: self._left]  # a chunk that ends inside a sample: its last bytes are not one
            self._left = 0
        if self._left == 0:  # a sized data chunk has ended: its pad byte, then more chunks or a WAV
            self._state, self._left, self._pad = "skip", self._pad, 0
            return True
        return False

    def _read_fmt(self, body: bytes, out: list) -> None:
        if len(body) < 16:
            raise ValueError("WAV on stdin: its 'fmt ' chunk is too short")
        tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
        if tag == _EXTENSIBLE and len(body) >= 26:
            tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID begins with the tag
        if (tag, bits) == (_PCM, 16):
            dtype = "<i2"
        elif (tag, bits) == (_FLOAT, 32):
            dtype = "<f4"
        else:
            kind = {_PCM: "integer", _FLOAT: "float"}.get(tag, f"format {tag}")
            raise ValueError(f"WAV on stdin: {bits}-bit {kind} samples; use 16-bit integer or 32-bit float "
                             "(e.g. ffmpeg ... -c:a pcm_s16le -f wav -)")
        if not channels:
            raise ValueError("WAV on stdin: 0 channels")
        if not 8000 <= rate <= 384000:
            raise ValueError(f"WAV on stdin: {rate} Hz; 8000 to 384000 Hz are played")
        self._dtype, self._channels = dtype, channels
        self._set_rate(rate, out)

    def _set_rate(self, rate: int, out: list) -> None:
        """Resample from `rate` from now on (the previous resampler's tail goes out first)."""
        if rate == self._rate and (self._resampler is not None or rate == SAMPLE_RATE):
            return
        if self._resampler is not None:
            out.append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self._resampler = None
        self._rate = rate
        if rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
