"""PreviewTap: the rendered frames and tick audio of one live session, for viewers (the WebRTC
preview) that must never slow the session down.

The draw thread offers every frame it emits (the I420 picture from the session's HoldRing and
that tick's audio: 16000 / fps samples, rounded down or up as the session's clock has them). While nobody watches, an offer is a single attribute check.
While someone does, the tap copies the picture into its own small ring of reference-counted
slots (one "latest" frame, never a queue per viewer) and the audio into a ring of recent ticks,
then wakes its listeners. Nothing in an offer waits on a viewer: the slots are sized so that a
free one always exists (each viewer holds at most one while it copies), and if that ever fails
the frame is skipped for the viewers and counted.

Viewers read the newest frame when they are ready for one (a slow viewer sees fewer frames) and
the audio ticks in order from their own position (a viewer more than `AUDIO_TICKS` behind jumps
forward, counted as dropped audio). The session's clock stays the only clock.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from dhlive_cli.live.outputs import HoldRing

AUDIO_TICKS = 50  # ticks of audio kept for viewers: 2 s at 25 fps


class PreviewTap:
    """Frames and audio of one session for up to `max_viewers` readers.

    height, width: the session's frame size in pixels; samples_per_tick: the most audio samples
    (16 kHz float32 mono) a frame has (640 at 25 fps; at 30 fps ticks hold 533 or 534: the
    length of each is kept, see read_audio_at); fps: the session's frame rate. Buffers are
    allocated on the first `attach()` (a session nobody watches pays nothing) and kept until the
    session ends: (max_viewers + 2) I420 frames of height * 3 / 2 x width uint8, plus
    AUDIO_TICKS x samples_per_tick float32.
    """

    def __init__(self, height: int, width: int, samples_per_tick: int, max_viewers: int = 4, fps: int = 25):
        self.height, self.width = height, width
        self.samples_per_tick = samples_per_tick
        self.fps = fps
        self.max_viewers = max(0, int(max_viewers))
        self.active = False  # read by the draw thread without the lock: a stale value costs one frame
        self._lock = threading.Lock()
        self._viewers = 0
        self._listeners: list[Callable[[], None]] = []
        self._ring: HoldRing | None = None
        self._audio: np.ndarray | None = None
        self._audio_len = np.zeros(AUDIO_TICKS, dtype=np.int64)  # samples in each row
        self._audio_start = np.zeros(AUDIO_TICKS, dtype=np.int64)  # the row's first sample on the session clock
        self._latest = -1  # slot of the newest frame (held by the tap while it is the newest)
        self._latest_tick = -1  # session frame index of that frame
        self.ticks = 0  # ticks published since the first viewer came (audio rows written)
        self.skipped_frames = 0  # offers the viewers did not get (no free slot)

    # ------------------------------------------------------------------ viewers (any thread)
    def attach(self, on_tick: Callable[[], None]) -> bool:
        """Register a viewer; on_tick() is then called on the draw thread after every published
        tick (it must only hand off, e.g. loop.call_soon_threadsafe). False when the session
        already has max_viewers."""
        with self._lock:
            if self._viewers >= self.max_viewers:
                return False
            if self._ring is None:
                h = self.height
                self._ring = HoldRing(self.max_viewers + 2, h, self.width)
                self._audio = np.zeros((AUDIO_TICKS, self.samples_per_tick), dtype=np.float32)
            self._viewers += 1
            self._listeners = [*self._listeners, on_tick]  # replaced, never mutated: the draw thread iterates it
            self.active = True
            return True

    def detach(self, on_tick: Callable[[], None]) -> None:
        """Undo attach() (idempotent per callback)."""
        with self._lock:
            if on_tick not in self._listeners:
                return
            self._listeners = [f for f in self._listeners if f != on_tick]  # bound methods: equal, not identical
            self._viewers -= 1
            self.active = self._viewers > 0

    @property
    def viewers(self) -> int:
        return self._viewers

    def hold_latest(self, after: int) -> tuple[int, int]:
        """(slot, frame index) of the newest frame when its session frame index is above `after`,
        held for the caller until release(slot); (-1, -1) when there is none newer. The picture
        is `frames[slot]`, (height * 3 / 2, width) uint8 I420, unchanged while held."""
        with self._lock:
            slot, tick = self._latest, self._latest_tick
            if slot < 0 or tick <= after:
                return -1, -1
            self._ring.hold(slot)
        return slot, tick

    @property
    def frames(self) -> np.ndarray:
        return self._ring.frames

    def release(self, slot: int) -> None:
        self._ring.unhold(slot)

    def read_audio(self, pos: int, out: np.ndarray) -> tuple[int, int]:
        """Copy audio tick `pos` (a count of published ticks) into out (samples_per_tick,) float32
        (zeros after a shorter tick's samples). Returns (tick read, ticks skipped): a reader more
        than AUDIO_TICKS - 2 behind jumps to the newest ticks; (-1, 0) when tick `pos` is not
        published yet."""
        got, skipped, _, _ = self.read_audio_at(pos, out)
        return got, skipped

    def read_audio_at(self, pos: int, out: np.ndarray) -> tuple[int, int, int, int]:
        """read_audio(), plus the tick's length in samples (its samples are out[:n]) and its first
        sample on the session's 16 kHz clock: (tick read, ticks skipped, n, start)."""
        audio = self._audio
        with self._lock:
            n = self.ticks
            if audio is None or pos >= n:
                return -1, 0, 0, 0
            skipped = 0
            if n - pos > AUDIO_TICKS - 2:
                skipped = n - 2 - pos
                pos = n - 2
            row = pos % AUDIO_TICKS
            np.copyto(out, audio[row])
            return pos, skipped, int(self._audio_len[row]), int(self._audio_start[row])

    # ------------------------------------------------------------------ draw thread
    def offer(self, frame: np.ndarray | None, tick: int, audio: np.ndarray) -> None:
        """Draw thread: frame (height * 3 / 2, width) I420 of session frame `tick`, or None when
        the picture repeats the previous one; audio: that tick's samples. Never waits on a
        viewer (the lock only guards a few index updates and one 2.5 KB copy)."""
        if not self.active:
            return
        ring = self._ring
        slot = -1
        if frame is not None:
            slot = ring.acquire_free()
            if slot < 0:
                self.skipped_frames += 1
            else:
                np.copyto(ring.frames[slot], frame)
        with self._lock:
            if slot >= 0:
                old = self._latest
                self._latest, self._latest_tick = slot, tick
            else:
                old = -1
                if self._latest >= 0:
                    self._latest_tick = tick  # the same picture, now standing for this tick
            row = self.ticks % AUDIO_TICKS
            k = audio.shape[0]
            self._audio[row, :k] = audio
            self._audio[row, k:] = 0.0
            self._audio_len[row] = k
            self._audio_start[row] = tick * 16000 // self.fps
            self.ticks += 1
            listeners = self._listeners
        if old >= 0:
            ring.unhold(old)
        for f in listeners:
            try:
                f()
            except RuntimeError:  # the viewer's loop closed: it is about to detach
                pass
