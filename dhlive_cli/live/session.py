"""One live session: its speech, mouth track, idle/talking envelope, draw thread and outputs."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from dhlive_cli.analysis import MouthAnalyzer
from dhlive_cli.compositor import Composer
from dhlive_cli.inference import InferencePool
from dhlive_cli.live.options import LiveOptions
from dhlive_cli.live.outputs import HoldRing, Output
from dhlive_cli.live.preview import PreviewTap
from dhlive_cli.live.playback import PlaybackWatch
from dhlive_cli.live.speech import SpeechBuffer
from dhlive_cli.mouth import REST_CLOSE
from dhlive_cli.sinks import EncoderOptions
from dhlive_cli.timebase import SAMPLE_RATE, Timebase

if TYPE_CHECKING:
    from dhlive_cli.live.conductor import TickConductor


STREAM_FORMATS = ("flv", "mpegts")  # RTMP and SRT outputs: capped, reconnected; the rest are recordings


def _ease(x: float) -> float:
    x = 0.0 if x < 0 else 1.0 if x > 1 else x
    return x * x * (3 - 2 * x)


class LiveStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.frames = 0
        self.late = 0
        self.skipped = 0  # ticks the draw thread fell so far behind on that their sound was lost
        self.state = "idle"
        self.frame_ms = np.zeros(256, dtype=np.float32)  # ring of recent draw times
        self.latency_ms = np.zeros(64, dtype=np.float32)  # ring: utterance pushed -> its first frame drawn
        self.latencies = 0
        self.started = time.monotonic()


class LiveSession:
    """One avatar streaming live: its own speech buffer, mouth track, state envelope, frames and
    outputs. Its ticks come from a TickConductor, which may pace many sessions and batch their
    inference; a session started without one gets a private conductor.

    Per tick the conductor thread runs _tick_collect() (pull 1 frame of audio, features, model
    window) for every session, one inference for all, then _tick_post() (mouth smoothing, state
    envelope, hand the tick to the session's draw thread). The draw thread renders and offers
    the frame with that tick's audio to every output; if it is behind (a newer tick is already
    waiting) it repeats the previous picture, counted as late, so the sound never waits.
    """

    def __init__(self, *, avatar, pool: InferencePool, tb: Timebase, enc: EncoderOptions,
                 outputs: list[tuple], opts: LiveOptions | None = None, name: str = "main",
                 conductor: "TickConductor | None" = None):
        self.name = name
        self.avatar, self.pool, self.tb, self.enc = avatar, pool, tb, enc
        self.opts = opts or LiveOptions()
        self.cancel = threading.Event()
        self.speech = SpeechBuffer(self.opts.max_queued_s)
        self.playback = PlaybackWatch()  # which speech positions have gone out with their frames
        self.analyzer = MouthAnalyzer(pool, tb, max_push_frames=1)
        self.lag = -(-pool.ahead // tb.hops_per_frame)
        n_out = max(1, len(outputs))
        # every output may hold its whole queue, plus the frame on screen and the one being drawn
        self.ring = HoldRing(n_out * (self.opts.queue_frames + 1) + 3, avatar.height, avatar.width)
        # outputs: (target, format) or (target, format, open file descriptor of the recording)
        # a bit-rate cap is for ingest servers: recordings stay at the preset's quality
        file_enc = replace(enc, maxrate=None, bufsize=None)
        self.outputs = [Output(o[0], o[1], avatar.width, avatar.height, tb.fps,
                               enc if o[1] in STREAM_FORMATS else file_enc, self.ring, self.opts,
                               self.cancel, reconnect=o[1] in STREAM_FORMATS, fd=o[2] if len(o) > 2 else None)
                        for o in outputs]
        # browser viewers read the frames drawn for the outputs from here (allocated on the first)
        self.preview = PreviewTap(avatar.height, avatar.width, tb.samples_per_frame, self.opts.max_viewers)
        self.feeders: list = []  # input threads pushing into self.speech; stopped with the session
        self.stats = LiveStats()
        # Audio of the last ticks, indexed by tick: the look-ahead delay line, what the draw thread
        # reads and what the output queues point into. Drop-oldest queues of queue_frames items
        # reach back queue_frames ticks and the draw thread at most _max_behind, so this many
        # rows are never overwritten while referenced.
        self._max_behind = 2 * (self.opts.queue_frames + 1)
        self._ticks = 2 * self._max_behind + self.lag + 2
        self._audio_ring = np.zeros((self._ticks, tb.samples_per_frame), dtype=np.float32)
        # ticks handed to the draw thread: mouth shape, frame index and utterance push time
        self._post_shape = np.zeros((self._ticks, 4), dtype=np.float32)
        self._post_push_ns = np.zeros(self._ticks, dtype=np.int64)
        # speech read position after each tick's pull: played once that tick's frame goes out
        self._tick_speech_end = np.zeros(self._ticks, dtype=np.int64)
        self._posted = 0  # frames posted (frame f is post number f)
        self._drawn = 0  # frames the draw thread has emitted
        self._post_cv = threading.Condition()
        self._mouth = np.zeros((1, 4), dtype=np.float32)
        self._tick = np.zeros(tb.samples_per_frame, dtype=np.float32)
        # clock state, touched by the conductor thread only
        self._k = 0
        self._level = 0.0
        self._last_speech = -10**9
        self._pending_latency: list[tuple[int, int]] = []  # (frame of an utterance's first sample, push ns)
        self._hang = max(1, self.opts.hangover_ms * tb.fps // 1000)
        self._fade_frames = max(1, self.opts.crossfade_ms * tb.fps // 1000)
        self._gate_energy = tb.samples_per_frame * (10 ** (self.analyzer.track.o.activity_dbfs / 20)) ** 2
        self._conductor = conductor
        self._own_conductor = conductor is None
        self._thread = threading.Thread(target=self._draw, name=f"dhlive-draw-{name}", daemon=True)
        self._stopping = threading.Event()
        self._ticks_done = threading.Event()  # the conductor has posted the last tick
        self._fade_out_at: int | None = None
        self._started = False
        self._stopped = False
        self.crashed = False

    # ------------------------------------------------------------------ conductor thread
    def _tick_collect(self, windows: np.ndarray) -> int:
        """Pull this tick's audio and queue its features; returns model windows written (0 or 1)."""
        k = self._k
        if self._stopping.is_set() and self._fade_out_at is None:
            self._fade_out_at = k
        tick = self._tick
        r0 = self.speech.read_pos
        got = self.speech.pull(tick) if self._fade_out_at is None else (tick.fill(0.0) or 0)
        # talking = audible speech, not merely samples: a mic sends silence too
        if got and float(np.dot(tick, tick)) > self._gate_energy:
            self._last_speech = k
        if got:
            us = self.speech.utterance_start
            if us is not None and r0 <= us[0] < r0 + got:
                self._pending_latency.append((k, us[1]))  # drawn `lag` ticks from now
                self.speech.utterance_start = None
        # audio of tick k enters the delay line; frame k - lag comes out with its mouth
        self._audio_ring[k % self._ticks] = tick
        self._tick_speech_end[k % self._ticks] = self.speech.last_pull_end
        self.analyzer.push(tick, 1)
        return self.analyzer.collect(windows)

    def _tick_post(self, raw: np.ndarray, n: int) -> bool:
        """Mouth of this tick's frame -> the draw thread. Returns False once the session is done."""
        k = self._k
        self._k = k + 1
        talking = k - self._last_speech <= self._hang
        fade = self._fade_frames
        self._level = min(1.0, self._level + 1.0 / fade) if talking else max(0.0, self._level - 1.0 / fade)
        if n:
            self.analyzer.apply(raw, n, self._mouth)
            f = k - self.lag
            g = _ease(self._level)
            m = self._mouth[0]
            with self._post_cv:
                behind = f - self._drawn
                row = f % self._ticks
                self._post_shape[row, 0] = m[0] * g
                self._post_shape[row, 1] = m[1] * g
                self._post_shape[row, 2] = m[2] * g
                self._post_shape[row, 3] = REST_CLOSE + (m[3] - REST_CLOSE) * g
                self._post_push_ns[row] = 0
                if self._pending_latency and self._pending_latency[0][0] <= f:
                    self._post_push_ns[row] = self._pending_latency.pop(0)[1]
                self._posted = f + 1
                if behind >= self._max_behind:
                    # the draw thread has stalled for a whole queue: skip it forward rather than
                    # let it read ticks whose audio rows are about to be overwritten
                    self._drawn = f - self._max_behind // 2
                    with self.stats.lock:
                        self.stats.skipped += behind - self._max_behind // 2
                self._post_cv.notify()
            with self.stats.lock:
                self.stats.state = "talking" if talking else "idle"
        if self._fade_out_at is not None and k - self._fade_out_at >= fade + self.lag:
            self._ticks_done.set()
            with self._post_cv:
                self._post_cv.notify()
            return False
        return True

    # ------------------------------------------------------------------ draw thread
    def _draw(self) -> None:
        from dhlive_cli.avatar.drawn import MouthShape

        prev_slot = -1
        draw = Composer(self.avatar).draw  # this thread's BGR canvas -> I420 ring slots
        warm = getattr(self.avatar, "warm", None)
        if warm is not None:
            warm()  # e.g. start this thread's video decoder before the first frame is due
        try:
            while True:
                with self._post_cv:
                    while self._drawn >= self._posted and not self._ticks_done.is_set() and not self.cancel.is_set():
                        self._post_cv.wait(0.5)
                    if self._drawn >= self._posted or self.cancel.is_set():
                        break
                    f = self._drawn
                    behind = self._posted - 1 > f  # a newer tick waits: this one is already late
                    self._drawn = f + 1
                row = f % self._ticks
                sh = self._post_shape[row]
                t_draw = time.perf_counter()
                if behind and prev_slot >= 0:
                    slot = prev_slot  # behind schedule: repeat the last picture, keep the sound
                    late = True
                else:
                    slot = self.ring.acquire_free()
                    late = slot < 0
                    if late:
                        slot = prev_slot
                    else:
                        draw(self.ring.frames[slot], f,
                             MouthShape(float(sh[0]), float(sh[1]), float(sh[2]), float(sh[3])),
                             fresh=not self.ring.drawn[slot])
                        self.ring.drawn[slot] = True
                draw_ms = (time.perf_counter() - t_draw) * 1000
                if slot >= 0:
                    audio = self._audio_ring[row]
                    for out in self.outputs:
                        out.offer(slot, audio)
                    # viewers get the same picture, copied only when it is a new one
                    self.preview.offer(self.ring.frames[slot] if slot != prev_slot else None, f, audio)
                    self.playback.advance(int(self._tick_speech_end[row]))
                    if slot != prev_slot:
                        if prev_slot >= 0:
                            self.ring.unhold(prev_slot)
                        prev_slot = slot
                t_push = int(self._post_push_ns[row])
                with self.stats.lock:
                    st = self.stats
                    st.frames += 1
                    st.late += late
                    st.frame_ms[st.frames % st.frame_ms.shape[0]] = draw_ms
                    if t_push:
                        st.latency_ms[st.latencies % st.latency_ms.shape[0]] = (time.monotonic_ns() - t_push) / 1e6
                        st.latencies += 1
        finally:
            if prev_slot >= 0:
                self.ring.unhold(prev_slot)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"session {self.name!r} already started")
        self._started = True
        for out in self.outputs:
            out.start()
        self._thread.start()
        if self._conductor is None:
            from dhlive_cli.live.conductor import TickConductor

            self._conductor = TickConductor(self.pool, self.tb, max_sessions=1)
        with self.stats.lock:
            self.stats.started = time.monotonic()
        self._conductor.add(self)
        for f in self.feeders:
            f.start()

    def stop(self, timeout: float = 2.5) -> None:
        """Fade to idle, flush and close every output, end every thread it owns. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if not self._started:  # built but never started: no thread, no child to end
            self.cancel.set()
            return
        deadline = time.monotonic() + timeout
        if self._started:
            # the fade-out runs on the conductor's ticks; the draw thread emits what was posted
            self._ticks_done.wait(max(0.1, deadline - time.monotonic() - 1.0))
            self._conductor.remove(self)
            self._thread.join(max(0.1, deadline - time.monotonic() - 1.0))
        self.cancel.set()
        with self._post_cv:
            self._post_cv.notify()
        if self._started:
            self._thread.join(0.5)
        for f in self.feeders:
            stop = getattr(f, "stop", None)
            if stop is not None:
                stop()
        for out in self.outputs:
            out.close(timeout=max(0.5, deadline - time.monotonic()))
        for f in self.feeders:
            t = getattr(f, "thread", None)  # the mic has PortAudio's thread, stopped above
            if t is not None and t.is_alive():
                t.join(max(0.1, deadline - time.monotonic()))
        if self._own_conductor and self._conductor is not None:
            self._conductor.close()

    def _fail(self) -> None:
        """Conductor thread: this session raised; end its ticks (stop() still cleans it up)."""
        self.crashed = True
        self._ticks_done.set()
        self.cancel.set()
        with self._post_cv:
            self._post_cv.notify()

    @property
    def failed(self) -> bool:
        """Every output has failed for good (a file output whose encoder died): nothing to stream to."""
        return self.crashed or (bool(self.outputs) and all(o.failed for o in self.outputs))

    def interrupt(self) -> int:
        return self.speech.clear()

    def snapshot(self) -> dict:
        with self.stats.lock:
            st = self.stats
            n = min(st.frames, st.frame_ms.shape[0])
            ms = np.sort(st.frame_ms[:n]) if n else np.zeros(1, np.float32)
            elapsed = time.monotonic() - st.started
            return {
                "session": self.name, "state": st.state, "frames": st.frames, "late_frames": st.late,
                "skipped_ticks": st.skipped,
                "fps": st.frames / elapsed if elapsed > 0 else 0.0,
                "frame_ms_p50": float(ms[int(0.5 * (len(ms) - 1))]), "frame_ms_p99": float(ms[int(0.99 * (len(ms) - 1))]),
                "queued_speech_s": self.speech.queued() / SAMPLE_RATE,
                "latency_ms_median": (float(np.median(st.latency_ms[: min(st.latencies, st.latency_ms.shape[0])]))
                                      if st.latencies else None),
                "latency_samples": st.latencies,
                "size": f"{self.avatar.width}x{self.avatar.height}",
                "viewers": self.preview.viewers, "preview_skipped_frames": self.preview.skipped_frames,
                "outputs": [{"target": o.label, "connected": o.connected, "reconnects": o.reconnects,
                             "frames_written": o.frames_written, "frames_dropped": o.frames_dropped,
                             "queue_fill": len(o.queue), "error": o.last_error,
                             "publish_refusals": o.publish_refusals, "refused": o.refused} for o in self.outputs],
            }
