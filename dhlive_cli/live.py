"""Live session: a fixed-rate stream on the engine's clock, idle when silent, talking when fed.

    inputs --push--> SpeechBuffer (bounded seconds) --pull 1 frame per tick--> clock thread:
        MouthAnalyzer (1 frame in, mouth of frame k - lag out) -> state envelope -> avatar
        -> one bounded drop-oldest queue per output -> encode thread per output -> ffmpeg

The clock thread runs at deadline = t0 + k * frame time, never "sleep one frame". Audio tick k
is pulled at tick k and written with video frame k, delayed together by the model's look-ahead,
so picture and sound cannot drift. When drawing falls behind, the previous frame is repeated
(counted as late) and the audio still goes out: the lag never accumulates.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from dhlive_cli.analysis import MouthAnalyzer
from dhlive_cli.errors import DhliveError, EngineError
from dhlive_cli.inference import InferencePool
from dhlive_cli.mouth import REST_CLOSE
from dhlive_cli.queues import BoundedQueue
from dhlive_cli.queues import Cancelled as QueueCancelled
from dhlive_cli.sinks import EncoderOptions, FfmpegSink
from dhlive_cli.timebase import SAMPLE_RATE, Timebase

log = logging.getLogger(__name__)


class SpeechBuffer:
    """Queued speech, at most max_seconds: a preallocated ring. push() never grows memory."""

    def __init__(self, max_seconds: float):
        self._buf = np.zeros(int(max_seconds * SAMPLE_RATE), dtype=np.float32)
        self._r = 0  # read position (absolute samples)
        self._w = 0  # write position
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self.pushed_samples = 0
        self.rejected = 0
        # (sample index, monotonic ns) of the first push into an empty buffer: an utterance
        # start, from which the clock measures input -> first talking frame latency
        self.utterance_start: tuple[int, int] | None = None

    @property
    def capacity(self) -> int:
        return self._buf.shape[0]

    def queued(self) -> int:
        with self._lock:
            return self._w - self._r

    def free(self) -> int:
        return self.capacity - self.queued()

    def push(self, samples: np.ndarray, block: bool = False, cancel: threading.Event | None = None) -> bool:
        """Append samples. Non-blocking: False (and nothing written) when they do not fit."""
        n = samples.shape[0]
        if n > self.capacity:
            raise ValueError(f"{n} samples exceed the speech buffer ({self.capacity})")
        with self._lock:
            while self.capacity - (self._w - self._r) < n:
                if not block:
                    self.rejected += 1
                    return False
                if cancel is not None and cancel.is_set():
                    return False
                self._space.wait(0.1)
            cap = self.capacity
            if self._w == self._r and self.utterance_start is None:
                self.utterance_start = (self._w, time.monotonic_ns())
            i = self._w % cap
            first = min(n, cap - i)
            self._buf[i : i + first] = samples[:first]
            if first < n:
                self._buf[: n - first] = samples[first:]
            self._w += n
            self.pushed_samples += n
        return True

    @property
    def read_pos(self) -> int:
        return self._r

    def pull(self, out: np.ndarray) -> int:
        """Fill out with the next queued samples, zeros after them; returns how many were speech."""
        want = out.shape[0]
        with self._lock:
            n = min(want, self._w - self._r)
            cap = self.capacity
            i = self._r % cap
            first = min(n, cap - i)
            out[:first] = self._buf[i : i + first]
            if first < n:
                out[first:n] = self._buf[: n - first]
            self._r += n
            if n:
                self._space.notify_all()
        out[n:] = 0.0
        return n

    def trim_to(self, keep: int) -> int:
        """Drop the oldest queued samples beyond `keep` (a live mic must not build up latency)."""
        with self._lock:
            excess = (self._w - self._r) - keep
            if excess <= 0:
                return 0
            self._r += excess
            self._space.notify_all()
            return excess

    def clear(self) -> int:
        """Interrupt: drop everything queued; returns the samples dropped."""
        with self._lock:
            n = self._w - self._r
            self._r = self._w
            self._space.notify_all()
            return n


@dataclass(frozen=True, slots=True)
class LiveOptions:
    crossfade_ms: int = 160  # idle <-> talking mouth envelope
    hangover_ms: int = 400  # pauses shorter than this stay "talking"
    max_queued_s: float = 30.0  # speech buffer size
    queue_frames: int = 8  # per-output queue (frames); full -> drop oldest
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0


class Output:
    """One destination (RTMP URL or file) with its own encode thread, queue and reconnect loop."""

    def __init__(self, target: str, fmt: str, width: int, height: int, fps: int, enc: EncoderOptions,
                 ring: "HoldRing", opts: LiveOptions, cancel: threading.Event, reconnect: bool):
        self.target, self.fmt = target, fmt
        self.width, self.height, self.fps, self.enc = width, height, fps, enc
        self.ring, self.opts, self.cancel = ring, opts, cancel
        self.reconnect = reconnect
        self.queue: BoundedQueue[tuple] = BoundedQueue(f"out:{target}", opts.queue_frames, "drop_oldest", cancel)
        self.sink: FfmpegSink | None = None
        self.connected = False
        self.reconnects = 0
        self.frames_written = 0
        self.frames_dropped = 0
        self.last_error: str | None = None
        self.failed = False
        self._closing = threading.Event()
        self._audio = np.zeros(SAMPLE_RATE // fps, dtype=np.float32)
        self.thread = threading.Thread(target=self._run, name=f"dhlive-out-{fmt}", daemon=True)

    def offer(self, slot: int, audio: np.ndarray) -> None:
        self.ring.hold(slot)
        dropped = self.queue.put((slot, audio))
        if dropped is not None:
            self.frames_dropped += 1
            self.ring.unhold(dropped[0])

    def _open(self) -> bool:
        try:
            self.sink = FfmpegSink(self.target, self.width, self.height, self.fps, self.enc, fmt=self.fmt,
                                   fragmented=True).open()
            return True
        except DhliveError as e:
            self.last_error = str(e)
            return False

    def _run(self) -> None:
        backoff = self.opts.reconnect_min_s
        retry_at = 0.0
        since_open = 0
        while True:
            if self.sink is None and not self._closing.is_set():
                if time.monotonic() >= retry_at:
                    if self._open():
                        self.connected = True
                        since_open = 0
                    else:
                        retry_at = time.monotonic() + backoff
                        backoff = min(backoff * 2, self.opts.reconnect_max_s)
            try:
                item = self.queue.get(timeout=0.2)
            except TimeoutError:
                if self._closing.is_set():
                    break
                continue
            except QueueCancelled:
                break
            slot, tick_audio = item
            # the clock's tick ring is reused a few dozen ticks later: take our copy now
            audio = self._audio[: tick_audio.shape[0]]
            audio[:] = tick_audio
            try:
                if self.sink is None:
                    self.frames_dropped += 1  # disconnected: the stream's clock does not wait
                    continue
                self.sink.write(self.ring.frames[slot], audio)
                self.frames_written += 1
                since_open += 1
                if since_open == 250:  # 10 s up again: the next loss starts from the short wait
                    backoff = self.opts.reconnect_min_s
            except DhliveError as e:
                self.last_error = str(e)
                self.connected = False
                self.sink.abort()
                self.sink = None
                if not self.reconnect:
                    self.failed = True  # the studio stops the session and says why, once
                    log.debug("output %s failed: %s", self.target, e)
                    break
                self.reconnects += 1
                log.warning("output %s lost (%s); reconnecting in %.0f s", self.target, e, backoff)
                retry_at = time.monotonic() + backoff
                backoff = min(backoff * 2, self.opts.reconnect_max_s)
            finally:
                self.ring.unhold(slot)
        # drain what is left so its slots are free again
        while (item := self.queue.get_nowait()) is not None:
            self.ring.unhold(item[0])

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Flush the queued frames, then finish the file/stream."""
        self._closing.set()
        self.thread.join(timeout)
        if self.sink is not None:
            try:
                self.sink.close(timeout=timeout)
            except DhliveError as e:
                self.last_error = str(e)
            self.sink = None

    def abort(self) -> None:
        self._closing.set()
        if self.sink is not None:
            self.sink.abort()
            self.sink = None
        self.thread.join(1.0)


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
                 outputs: list[tuple[str, str]], opts: LiveOptions | None = None, name: str = "main",
                 conductor: "TickConductor | None" = None):
        self.name = name
        self.avatar, self.pool, self.tb, self.enc = avatar, pool, tb, enc
        self.opts = opts or LiveOptions()
        self.cancel = threading.Event()
        self.speech = SpeechBuffer(self.opts.max_queued_s)
        self.analyzer = MouthAnalyzer(pool, tb, max_push_frames=1)
        self.lag = -(-pool.ahead // tb.hops_per_frame)
        n_out = max(1, len(outputs))
        # every output may hold its whole queue, plus the frame on screen and the one being drawn
        self.ring = HoldRing(n_out * (self.opts.queue_frames + 1) + 3, avatar.height, avatar.width)
        self.outputs = [Output(t, f, avatar.width, avatar.height, tb.fps, enc, self.ring, self.opts, self.cancel,
                               reconnect=(f == "flv")) for t, f in outputs]
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
        self._gate_energy = tb.samples_per_frame * (10 ** (self.analyzer.track.o.gate_dbfs / 20)) ** 2
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
                        self.avatar.render(self.ring.frames[slot], f,
                                           MouthShape(float(sh[0]), float(sh[1]), float(sh[2]), float(sh[3])),
                                           fresh=not self.ring.drawn[slot])
                        self.ring.drawn[slot] = True
                draw_ms = (time.perf_counter() - t_draw) * 1000
                if slot >= 0:
                    audio = self._audio_ring[row]
                    for out in self.outputs:
                        out.offer(slot, audio)
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
                "outputs": [{"target": o.target, "connected": o.connected, "reconnects": o.reconnects,
                             "frames_written": o.frames_written, "frames_dropped": o.frames_dropped,
                             "queue_fill": len(o.queue), "error": o.last_error} for o in self.outputs],
            }


class TickConductor:
    """The clock of every live session in a process: one thread, one tick grid, one inference.

    Tick k is due at t0 + k * frame time (never "sleep one frame"). At each tick every session
    pulls one frame of audio and assembles its model window; the windows of all sessions go to
    the shared InferencePool in ONE call; each session then smooths its mouth and hands the tick
    to its own draw thread. Heavy work (drawing, encoding) stays in the sessions' threads, so a
    slow session repeats its own frames while the others keep their pace. Sessions join at the
    next tick and keep their own frame count from there.
    """

    def __init__(self, pool: InferencePool, tb: Timebase, max_sessions: int = 32):
        self.pool, self.tb = pool, tb
        self.max_sessions = max_sessions
        self._batch = np.zeros((max_sessions, pool.window, pool.n_mels), dtype=np.float32)
        self._raw = np.zeros((max_sessions, 4), dtype=np.float32)
        self._counts = np.zeros(max_sessions, dtype=np.int64)
        self._active: tuple[LiveSession, ...] = ()  # replaced whole on add/remove: the tick reads it lock-free
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.ticks = 0  # ticks run with at least one session
        self.infer_calls = 0  # inference calls made by the conductor
        self.late_ticks = 0  # ticks that started more than a frame after their due time
        self.infer_errors = 0

    @property
    def sessions(self) -> tuple["LiveSession", ...]:
        return self._active

    def add(self, session: LiveSession) -> None:
        with self._lock:
            if self._closed:
                raise EngineError("the live clock is closed")
            if len(self._active) >= self.max_sessions:
                raise EngineError(f"at most {self.max_sessions} live sessions per process")
            self._active = self._active + (session,)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dhlive-tick", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def remove(self, session: LiveSession) -> None:
        with self._lock:
            self._active = tuple(s for s in self._active if s is not session)

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._closed = True
            self._active = ()
            self._lock.notify_all()
            t = self._thread
        if t is not None:
            t.join(timeout)

    def snapshot(self) -> dict:
        return {"sessions": len(self._active), "ticks": self.ticks, "inference_calls": self.infer_calls,
                "inference_calls_per_tick": self.infer_calls / self.ticks if self.ticks else 0.0,
                "late_ticks": self.late_ticks}

    def _run(self) -> None:
        frame_ns = self.tb.frame_ns
        batch, raw, counts = self._batch, self._raw, self._counts
        t0 = None
        k = 0
        while True:
            active = self._active
            if not active:
                with self._lock:
                    while not self._active and not self._closed:
                        self._lock.wait(1.0)
                    if self._closed:
                        return
                t0 = None  # idle in between: the grid restarts with the next session
                continue
            if self._closed:
                return
            now = time.monotonic_ns()
            if t0 is None:
                t0, k = now, 0
            deadline = t0 + k * frame_ns
            if deadline > now:
                time.sleep((deadline - now) / 1e9)
            elif now - deadline > frame_ns:
                self.late_ticks += 1
            active = self._active  # sessions added while sleeping join this tick
            n = 0
            for i, s in enumerate(active):
                try:
                    c = s._tick_collect(batch[n : n + 1])
                except Exception:  # one broken session must not stop the others' clock
                    log.exception("live session %s failed; stopping it", s.name)
                    s._fail()
                    c = 0
                counts[i] = c
                n += c
            if n:
                try:
                    self.pool.infer(batch[:n], raw[:n])
                except Exception:  # e.g. a GPU gone away: keep every stream going with a closed mouth
                    if not self.infer_errors:
                        log.exception("inference failed; mouths stay closed until it works again")
                    self.infer_errors += 1
                    raw[:n] = 0.0
                self.infer_calls += 1
            j = 0
            for i, s in enumerate(active):
                c = int(counts[i])
                try:
                    going = s._tick_post(raw[j : j + c], c)
                except Exception:
                    log.exception("live session %s failed; stopping it", s.name)
                    s._fail()
                    going = False
                if not going:
                    self.remove(s)
                j += c
            self.ticks += 1
            k += 1


class HoldRing:
    """Preallocated frames whose slots are reference-counted: a frame may sit in several output
    queues at once. Unlike render's FrameRing, acquiring never waits: the clock must not block."""

    def __init__(self, slots: int, height: int, width: int):
        self.frames = np.zeros((slots, height, width, 3), dtype=np.uint8)
        self.drawn = np.zeros(slots, dtype=bool)  # see FrameRing.drawn
        self._refs = np.zeros(slots, dtype=np.int32)
        self._lock = threading.Lock()
        self._free_list = list(range(slots))

    def acquire_free(self) -> int:
        """A free slot (held once by the caller) or -1; never waits: the clock must not block."""
        with self._lock:
            if not self._free_list:
                return -1
            s = self._free_list.pop()
            self._refs[s] = 1
            return s

    def hold(self, slot: int) -> None:
        with self._lock:
            self._refs[slot] += 1

    def unhold(self, slot: int) -> None:
        with self._lock:
            self._refs[slot] -= 1
            if self._refs[slot] == 0:
                self._free_list.append(slot)




__all__ = ["LiveSession", "LiveOptions", "SpeechBuffer", "HoldRing", "TickConductor"]
