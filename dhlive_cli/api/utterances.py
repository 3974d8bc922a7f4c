"""One WebSocket client's speech: its PCM converted to the session's 16 kHz mono, grouped into
utterances, and the events that tell the client when each one is played."""

from __future__ import annotations

import asyncio
import itertools
import logging

import numpy as np

from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)

MIN_RATE, MAX_RATE = 8000, 192000
MAX_CHANNELS = 8
MAX_ID_CHARS = 64
MAX_OPEN_UTTERANCES = 256  # ended but not yet played, per client: more is refused (the buffer holds 30 s)


class Utterance:
    """Speech positions [start, end) of one utterance in the session's SpeechBuffer (16 kHz).
    Its samples need not be contiguous there (other clients push too), only in order."""

    __slots__ = ("id", "start", "end", "samples", "ended")

    def __init__(self, uid: str, start: int):
        self.id, self.start, self.end, self.samples, self.ended = uid, start, start, 0, False


class WsSpeech:
    """The audio side of one /v1/stream connection (runs on the API's event loop).

    rate, channels: what the client sends -- s16le interleaved PCM at `rate` Hz with
    `channels` channels (query parameters `rate`, `channels`; default 16000, 1). Channels are
    averaged, and any rate other than 16 kHz is resampled by libsoxr (python-soxr, "HQ"), one
    stream per connection, so the filter state carries over between chunks and no sample is
    lost or invented at a chunk boundary; its few milliseconds of delay come out when the
    client ends the utterance.

    Utterances: the first audio after connecting (or after the previous `end`) opens one, with
    the id the client gave in `{"type": "start", "id": ...}` or else "1", "2", ... per
    connection; `{"type": "end"}` closes it. `emit(dict)` is called on the loop thread with
    `utterance_started` when its first sample is played (PlaybackWatch), `utterance_finished`
    when its last one is, or with `"interrupted": true` when an interrupt dropped its end.
    """

    def __init__(self, session, rate: int, channels: int, loop: asyncio.AbstractEventLoop, emit):
        self.session, self.rate, self.channels = session, rate, channels
        self._loop, self._emit = loop, emit
        self._resampler = None
        if rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        self._ids = itertools.count(1)
        self._next_id: str | None = None
        self.current: Utterance | None = None
        self.open = 0  # utterances ended and not yet finished
        self._callbacks: set = set()  # registered with the session's PlaybackWatch, to forget on close

    # ------------------------------------------------------------------ audio in
    def convert(self, data: bytes, scratch: np.ndarray) -> np.ndarray:
        """s16le interleaved PCM -> float32 mono 16 kHz (a view of `scratch` when no resampling
        is needed; may be empty while the resampler fills). ValueError: not whole frames."""
        frame = 2 * self.channels
        if len(data) % frame:
            raise ValueError(f"{len(data)} bytes are not whole s16le frames of {self.channels} channel(s)")
        n = len(data) // frame
        plain = self._resampler is None and self.channels == 1 and n <= scratch.shape[0]
        x = scratch[:n] if plain else np.empty(n, dtype=np.float32)
        pcm = np.frombuffer(data, dtype="<i2")
        if self.channels == 1:
            x[:] = pcm
        else:
            np.mean(pcm.reshape(n, self.channels), axis=1, dtype=np.float32, out=x)
        x *= 1.0 / 32768
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=False)
        return x

    def pushed(self, end: int, n: int) -> None:
        """n samples were pushed, ending at SpeechBuffer position `end`."""
        if n == 0:
            return
        u = self.current
        if u is None:
            uid = self._next_id or str(next(self._ids))
            self._next_id = None
            u = self.current = Utterance(uid, end - n)
            self._at(u.start + 1, lambda pos, ns, u=u: self._started(u))
        u.end = end
        u.samples += n

    # ------------------------------------------------------------------ control messages
    def start(self, uid) -> str | None:
        """{"type": "start", "id": ...}: the id of the next utterance. Returns an error or None."""
        if not isinstance(uid, str) or not 0 < len(uid) <= MAX_ID_CHARS or not uid.isprintable():
            return f"id must be a printable string of 1..{MAX_ID_CHARS} characters"
        if self.current is not None:
            return "an utterance is already open: send {\"type\": \"end\"} first"
        self._next_id = uid
        return None

    def end(self, push) -> str | None:
        """{"type": "end"}: flush the resampler (push(samples) -> end position or None), close
        the utterance and arm its utterance_finished. Returns an error or None."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self._resampler.clear()
            if tail.shape[0]:
                end = push(tail)
                if end is not None:
                    self.pushed(end, tail.shape[0])
        u = self.current
        if u is None:
            return "no utterance to end: no audio since the last end"
        if self.open >= MAX_OPEN_UTTERANCES:
            return f"more than {MAX_OPEN_UTTERANCES} utterances waiting to be played"
        self.current = None
        u.ended = True
        self.open += 1
        self._at(u.end, lambda pos, ns, u=u: self._finished(u))
        return None

    def interrupted(self) -> None:
        """This client interrupted: the open utterance ends here, dropped."""
        if self._resampler is not None:
            self._resampler.clear()
        u, self.current = self.current, None
        if u is not None:
            u.ended = True
            self.open += 1
            self._at(u.end, lambda pos, ns, u=u: self._finished(u))

    def close(self) -> None:
        self.session.playback.forget(self._callbacks)
        self._callbacks.clear()

    # ------------------------------------------------------------------ playback events
    def _at(self, pos: int, fn) -> None:
        """fn() on the loop thread once the session has played up to `pos`."""
        def cb(position: int, ns: int) -> None:  # draw thread (or this one, if already played)
            self._callbacks.discard(cb)
            try:
                self._loop.call_soon_threadsafe(fn, position, ns)
            except RuntimeError:  # the API loop has closed: nobody to tell
                pass
        self._callbacks.add(cb)
        self.session.playback.notify_at(pos, cb)

    def _started(self, u: Utterance) -> None:
        if not self.session.speech.dropped(u.start):
            self._emit({"type": "utterance_started", "id": u.id})

    def _finished(self, u: Utterance) -> None:
        self.open -= 1
        event = {"type": "utterance_finished", "id": u.id, "duration_s": round(u.samples / SAMPLE_RATE, 3)}
        if self.session.speech.dropped(u.end - 1):
            event["interrupted"] = True
        self._emit(event)
