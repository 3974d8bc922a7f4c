"""One live session: its speech, mouth track, idle/talking envelope, draw thread and outputs."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from dhlive_cli.analysis import MouthAnalyzer
from dhlive_cli.compositor import Composer, i420_shape
from dhlive_cli.errors import EngineError
from dhlive_cli.inference import InferencePool
from dhlive_cli.live.drawing import DrawPool, RemoteDrawer, shared_frames
from dhlive_cli.live.options import LiveOptions
from dhlive_cli.live.outputs import HoldRing, Output
from dhlive_cli.live.preview import PreviewTap
from dhlive_cli.live.playback import PlaybackWatch
from dhlive_cli.live.speech import SpeechBuffer
from dhlive_cli.mouth import REST_CLOSE
from dhlive_cli.mouth_rate import MouthResampler, last_model_frame
from dhlive_cli.sinks import EncoderOptions
from dhlive_cli.timebase import MODEL_FRAME, SAMPLE_RATE, Timebase

if TYPE_CHECKING:
    from dhlive_cli.live.conductor import TickConductor

log = logging.getLogger(__name__)


# Ticks a frame may still be drawn after its own: a draw that overran its tick by less than a
# tick is shown (one tick later, with its own sound: the outputs' queues absorb it) instead of
# being replaced by a repeat. 16 sessions' draws arrive together each tick; the last of a draw
# process's queue round-trips in 10-30 ms, with rare tails past 40 ms (bench_sessions, 2026-12-01).
DRAW_SLACK_TICKS = 1

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
        self.ended: float | None = None  # set by stop()
        self.first_post_ns = 0  # monotonic ns when frame 0 left the clock
        self.posted = 0
        # least-squares fit of hand-out time (s after frame 0) against frame index: its slope is
        # the clock's frame time, robust to one late tick at either end of the run
        self.fit = [0.0, 0.0, 0.0, 0.0]  # sums of f, t, f*f, f*t

    def clock_fps(self) -> float | None:
        """Frames per second of the session clock over the run (least squares), None before 3 frames."""
        n = self.posted
        sf, st, sff, sft = self.fit
        den = n * sff - sf * sf
        if n < 3 or den <= 0:
            return None
        slope = (n * sft - sf * st) / den
        return 1.0 / slope if slope > 0 else None


def video_delay(fps: int, model_lag: int) -> int:
    """Ticks between pulling frame f's audio (tick f) and knowing its mouth: the smallest D such
    that at every tick k = f + D the model frames video frame f needs (mouth_rate) and their
    look-ahead (model_lag model frames) have been pulled. Tick k has pulled 16 kHz samples up to
    floor((k + 1) * 16000 / fps), i.e. that many // 640 whole model frames. The pattern repeats
    every second, so two seconds of frames give the exact maximum. 25 fps: D = model_lag."""
    d = 0
    for f in range(2 * fps + 1):
        need = last_model_frame(f, fps) + 1 + model_lag  # model frames pushed before f's mouth is out
        k = f
        while ((k + 1) * SAMPLE_RATE // fps) // MODEL_FRAME < need:
            k += 1
        d = max(d, k - f)
    return d


class LiveSession:
    """One avatar streaming live: its own speech buffer, mouth track, state envelope, frames and
    outputs. Its ticks come from a TickConductor, which may pace many sessions and batch their
    inference; a session started without one gets a private conductor.

    Tick k is video frame k at the session fps: it pulls that frame's 16 kHz samples
    [floor(k * 16000 / fps), floor((k + 1) * 16000 / fps)) (timebase). The model runs on whole
    40 ms model frames as they fill up, and its 25 Hz track is resampled to the video rate
    (mouth_rate); frame f's mouth is known `lag` ticks later (video_delay), always, so exactly
    one frame is posted per tick.

    Per tick the conductor thread runs _tick_collect() (pull 1 frame of audio, features, model
    windows) for every session, one inference for all, then _tick_post() (mouth smoothing,
    resampling, state envelope, hand the frame to the session's draw thread). The draw thread renders and offers
    the frame with that tick's audio to every output; if it is behind (more than DRAW_SLACK_TICKS
    newer ticks already waiting) it repeats the previous picture, counted as late, so the sound
    never waits.
    """

    def __init__(self, *, avatar, pool: InferencePool, tb: Timebase, enc: EncoderOptions,
                 outputs: list[tuple], opts: LiveOptions | None = None, name: str = "main",
                 conductor: "TickConductor | None" = None, draw_pool: "DrawPool | None" = None,
                 avatar_dir=None):
        """draw_pool: draw this session's frames in one of the pool's processes (the avatar is
        loaded there again from avatar_dir, as load_avatar takes it: None is the embedded one);
        None: in this process, in the session's draw thread."""
        self.name = name
        self.avatar, self.pool, self.tb, self.enc = avatar, pool, tb, enc
        self.opts = opts or LiveOptions()
        self.cancel = threading.Event()
        self.speech = SpeechBuffer(self.opts.max_queued_s)
        self.playback = PlaybackWatch()  # which speech positions have gone out with their frames
        tick_max = tb.max_frame_samples()
        # model frames one tick can complete (25 / fps, plus one for the carry-over)
        self.max_windows = -(-tick_max // MODEL_FRAME) + 1
        self.analyzer = MouthAnalyzer(pool, max_push_frames=self.max_windows)
        self.lag = video_delay(tb.fps, -(-pool.ahead // 4))
        # rows held: those of the `lag` frames in flight plus one tick's worth
        self._resampler = MouthResampler(tb.fps, max_push_rows=self.max_windows + (self.lag + 2) * -(-25 // tb.fps) + 4)
        self._model_acc = np.zeros(MODEL_FRAME * (self.max_windows + 1), dtype=np.float32)  # pulled, not yet pushed
        self._model_acc_n = 0
        # per-output queues hold the same time at any fps (queue_frames is counted at 25 fps); a
        # recording holds at least half a second, so a busy moment does not cost it frames
        q_stream = max(2, self.opts.queue_frames * tb.fps // 25)
        q_file = max(q_stream, tb.fps // 2)
        queues = [q_stream if o[1] in STREAM_FORMATS else q_file for o in outputs] or [q_stream]
        # every output may hold its whole queue, plus the frame on screen and the one being drawn
        slots = sum(q + 1 for q in queues) + 3
        self._draw_pool, self._avatar_dir = draw_pool, avatar_dir
        self._remote: RemoteDrawer | None = None
        self._shm_fd: int | None = None
        shared = None
        if draw_pool is not None:
            shared, self._shm_fd = shared_frames((slots, *i420_shape(avatar.height, avatar.width)), name)
        self.ring = HoldRing(slots, avatar.height, avatar.width, frames=shared)
        # outputs: (target, format) or (target, format, open file descriptor of the recording)
        # a bit-rate cap is for ingest servers: recordings stay at the preset's quality
        file_enc = replace(enc, maxrate=None, bufsize=None)
        self.outputs = [Output(o[0], o[1], avatar.width, avatar.height, tb.fps,
                               enc if o[1] in STREAM_FORMATS else file_enc, self.ring, self.opts,
                               self.cancel, reconnect=o[1] in STREAM_FORMATS, fd=o[2] if len(o) > 2 else None,
                               queue_frames=q)
                        for o, q in zip(outputs, queues)]
        # browser viewers read the frames drawn for the outputs from here (allocated on the first)
        self.preview = PreviewTap(avatar.height, avatar.width, tick_max, self.opts.max_viewers, fps=tb.fps)
        self.feeders: list = []  # input threads pushing into self.speech; stopped with the session
        self.stats = LiveStats()
        # Audio of the last ticks, indexed by tick: the look-ahead delay line, what the draw thread
        # reads and what the output queues point into. Drop-oldest queues of queue_frames items
        # reach back queue_frames ticks and the draw thread at most _max_behind, so this many
        # rows are never overwritten while referenced.
        self._max_behind = 2 * (max(queues) + 1)
        self._ticks = 2 * self._max_behind + self.lag + 2
        self._audio_ring = np.zeros((self._ticks, tick_max), dtype=np.float32)
        self._audio_len = np.zeros(self._ticks, dtype=np.int64)  # samples of each tick (rate / fps, rounded)
        # ticks handed to the draw thread: mouth shape, frame index and utterance push time
        self._post_shape = np.zeros((self._ticks, 4), dtype=np.float32)
        self._post_push_ns = np.zeros(self._ticks, dtype=np.int64)
        # speech read position after each tick's pull: played once that tick's frame goes out
        self._tick_speech_end = np.zeros(self._ticks, dtype=np.int64)
        self._posted = 0  # frames posted (frame f is post number f)
        self._drawn = 0  # frames the draw thread has emitted
        self._post_cv = threading.Condition()
        self._mouth = np.zeros((self.max_windows, 4), dtype=np.float32)
        self._frame_mouth = np.zeros((1, 4), dtype=np.float32)
        self._tick = np.zeros(tick_max, dtype=np.float32)
        # clock state, touched by the conductor thread only
        self._k = 0
        self._level = 0.0
        self._last_speech = -10**9
        self._pending_latency: list[tuple[int, int]] = []  # (frame of an utterance's first sample, push ns)
        self._hang = max(1, self.opts.hangover_ms * tb.fps // 1000)
        self._fade_frames = max(1, self.opts.crossfade_ms * tb.fps // 1000)
        self._gate_level2 = (10 ** (self.analyzer.track.o.activity_dbfs / 20)) ** 2  # mean square
        self._last_frame = None if self.opts.stop_after_frames is None else self.opts.stop_after_frames - 1
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
        if self._fade_out_at is None:
            if self._stopping.is_set():
                self._fade_out_at = k
                self._last_frame = k + self._fade_frames
            elif self._last_frame is not None and k >= self._last_frame - self._fade_frames:
                self._fade_out_at = k  # a frame-exact end (stop_after_frames): fade out to reach it
        n_tick = self.tb.frame_samples(k)
        tick = self._tick[:n_tick]
        r0 = self.speech.read_pos
        got = self.speech.pull(tick) if self._fade_out_at is None else (tick.fill(0.0) or 0)
        # talking = audible speech, not merely samples: a mic sends silence too
        if got and float(np.dot(tick, tick)) > self._gate_level2 * n_tick:
            self._last_speech = k
        if got:
            us = self.speech.utterance_start
            if us is not None and r0 <= us[0] < r0 + got:
                self._pending_latency.append((k, us[1]))  # drawn `lag` ticks from now
                self.speech.utterance_start = None
        # audio of tick k enters the delay line; frame k - lag comes out with its mouth
        self._audio_ring[k % self._ticks, :n_tick] = tick
        self._audio_len[k % self._ticks] = n_tick
        self._tick_speech_end[k % self._ticks] = self.speech.last_pull_end
        acc, a = self._model_acc, self._model_acc_n
        acc[a : a + n_tick] = tick
        a += n_tick
        whole = a // MODEL_FRAME
        if whole:
            self.analyzer.push(acc, whole)
            rest = a - whole * MODEL_FRAME
            acc[:rest] = acc[whole * MODEL_FRAME : a]
            a = rest
        self._model_acc_n = a
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
            self._resampler.push(self._mouth[:n])
        f = k - self.lag
        if f >= 0:
            # frame f's model frames are all in by now (video_delay): exactly one frame per tick
            if self._resampler.take(self._frame_mouth, limit=f + 1 - self._resampler.frames_done) != 1:
                raise AssertionError(f"mouth of frame {f} not ready at tick {k}")
            g = _ease(self._level)
            m = self._frame_mouth[0]
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
                now = time.monotonic_ns()
                with self.stats.lock:
                    st = self.stats
                    if f == 0:
                        st.first_post_ns = now
                    t = (now - st.first_post_ns) / 1e9
                    fit = st.fit
                    fit[0] += f
                    fit[1] += t
                    fit[2] += f * f
                    fit[3] += f * t
                    st.posted = f + 1
                if behind >= self._max_behind:
                    # the draw thread has stalled for a whole queue: skip it forward rather than
                    # let it read ticks whose audio rows are about to be overwritten
                    self._drawn = f - self._max_behind // 2
                    with self.stats.lock:
                        self.stats.skipped += behind - self._max_behind // 2
                self._post_cv.notify()
            with self.stats.lock:
                self.stats.state = "talking" if talking else "idle"
        if self._last_frame is not None and f >= self._last_frame:
            self._ticks_done.set()
            with self._post_cv:
                self._post_cv.notify()
            return False
        return True

    # ------------------------------------------------------------------ draw thread
    def _draw(self) -> None:
        from dhlive_cli.avatar.drawn import MouthShape

        prev_slot = -1
        frames = self.ring.frames
        if self._remote is not None:
            paint = self._remote.draw  # a draw process writes the slot in shared memory
        else:
            draw = Composer(self.avatar).draw  # this thread's BGR canvas -> I420 ring slots

            def paint(slot, f, mouth, fresh):
                draw(frames[slot], f, mouth, fresh=fresh)
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
                    # late: two newer ticks wait. One newer tick is the pipeline's slack: a frame
                    # that took a little over its tick (a burst of sessions drawing at once, a draw
                    # process serving several) is still drawn, and the next one catches up
                    behind = self._posted - 1 > f + DRAW_SLACK_TICKS
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
                        try:
                            paint(slot, f, MouthShape(float(sh[0]), float(sh[1]), float(sh[2]), float(sh[3])),
                                  not self.ring.drawn[slot])
                        except EngineError as e:  # the draw process failed or is gone
                            log.error("live session %s: %s; stopping it", self.name, e)
                            self.ring.unhold(slot)
                            self._fail()
                            break
                        self.ring.drawn[slot] = True
                draw_ms = (time.perf_counter() - t_draw) * 1000
                if slot >= 0:
                    audio = self._audio_ring[row, : self._audio_len[row]]
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
            if self._remote is not None:
                # this thread's last use of it: stop() may have given up waiting for this thread
                # (a draw process that stalled), and then left the session open in the process
                self._remote.close()

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"session {self.name!r} already started")
        if self._draw_pool is not None:
            try:
                self._remote = self._draw_pool.connect(self.name, self._avatar_dir, self.avatar.width,
                                                       self.avatar.height, self.tb.fps, self.ring.frames,
                                                       self._shm_fd)
            finally:
                os.close(self._shm_fd)  # the draw process has its own descriptor (or none: failed)
                self._shm_fd = None
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
        """Fade to idle, flush and close every output, end every thread it owns. Idempotent.
        A session that ended by itself (stop_after_frames) gives its outputs up to 20 s to
        write every frame: its recording must hold them all."""
        if self._stopped:
            return
        if self.finished and self.opts.stop_after_frames is not None and not self.crashed:
            timeout = max(timeout, 20.0)
        self._stopped = True
        self._stopping.set()
        if not self._started:  # built but never started: no thread, no child to end
            self.cancel.set()
            if self._shm_fd is not None:
                os.close(self._shm_fd)
                self._shm_fd = None
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
        if self._remote is not None and not self._thread.is_alive():
            self._remote.close()
        for f in self.feeders:
            stop = getattr(f, "stop", None)
            if stop is not None:
                stop()
        for out in self.outputs:
            out.close(timeout=max(0.5, deadline - time.monotonic()))
        with self.stats.lock:
            self.stats.ended = time.monotonic()
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
    def finished(self) -> bool:
        """It has emitted its last frame (stop_after_frames reached, or stopped)."""
        return self._ticks_done.is_set()

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
            elapsed = (st.ended or time.monotonic()) - st.started
            return {
                "session": self.name, "state": st.state, "frames": st.frames, "late_frames": st.late,
                "skipped_ticks": st.skipped,
                # frames per second of the session clock over the run (not diluted by start-up
                # or the final flush), until it has 3 frames: frames over time since start
                "fps": st.clock_fps() or (st.frames / elapsed if elapsed > 0 else 0.0),
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
                             "publish_refusals": o.publish_refusals, "refused": o.refused,
                             "went_on_air": o.went_on_air} for o in self.outputs],
            }
