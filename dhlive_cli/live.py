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
from dhlive_cli.errors import DhliveError
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
            self.sink = FfmpegSink(self.target, self.width, self.height, self.fps, self.enc, fmt=self.fmt).open()
            return True
        except DhliveError as e:
            self.last_error = str(e)
            return False

    def _run(self) -> None:
        backoff = self.opts.reconnect_min_s
        retry_at = 0.0
        while True:
            if self.sink is None and not self._closing.is_set():
                if time.monotonic() >= retry_at:
                    if self._open():
                        self.connected = True
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
                backoff = self.opts.reconnect_min_s if self.frames_written % 250 == 0 else backoff
            except DhliveError as e:
                self.last_error = str(e)
                self.connected = False
                self.sink.abort()
                self.sink = None
                if not self.reconnect:
                    self.failed = True
                    log.error("output %s failed: %s", self.target, e)
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
        self.state = "idle"
        self.frame_ms = np.zeros(256, dtype=np.float32)  # ring of recent draw times
        self.latency_ms = np.zeros(64, dtype=np.float32)  # ring: utterance pushed -> its first frame drawn
        self.latencies = 0
        self.started = time.monotonic()


class LiveSession:
    """One avatar streaming live. Shares the InferencePool and avatar with other sessions."""

    def __init__(self, *, avatar, pool: InferencePool, tb: Timebase, enc: EncoderOptions,
                 outputs: list[tuple[str, str]], opts: LiveOptions | None = None, name: str = "main"):
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
        self.stats = LiveStats()
        # Audio of the last ticks, indexed by tick: the look-ahead delay line, and what the output
        # queues point into. Drop-oldest queues of queue_frames items can only reach back
        # queue_frames ticks, so 4x that (plus the lag) is never overwritten while referenced.
        self._ticks = 4 * (self.opts.queue_frames + 1) + self.lag
        self._audio_ring = np.zeros((self._ticks, tb.samples_per_frame), dtype=np.float32)
        self._mouth = np.zeros((4, 4), dtype=np.float32)
        self._thread = threading.Thread(target=self._clock, name=f"dhlive-clock-{name}", daemon=True)
        self._stopping = threading.Event()
        self._fade_out_at: int | None = None

    # ------------------------------------------------------------------ clock thread
    def _clock(self) -> None:
        from dhlive_cli.avatar.drawn import MouthShape

        tb = self.tb
        spf = tb.samples_per_frame
        frame_ns = tb.frame_ns
        hang = max(1, self.opts.hangover_ms * tb.fps // 1000)
        fade_frames = max(1, self.opts.crossfade_ms * tb.fps // 1000)
        last_speech = -10**9
        level = 0.0
        prev_slot = -1
        t0 = time.monotonic_ns()
        with self.stats.lock:
            self.stats.started = t0 / 1e9
        k = 0
        tick = np.zeros(spf, dtype=np.float32)
        pending_latency: list[tuple[int, int]] = []  # (tick of an utterance's first sample, push time)
        gate_energy = spf * (10 ** (self.analyzer.track.o.gate_dbfs / 20)) ** 2
        try:
            while not self.cancel.is_set():
                deadline = t0 + k * frame_ns
                now = time.monotonic_ns()
                if deadline > now:
                    time.sleep((deadline - now) / 1e9)
                if self._stopping.is_set() and self._fade_out_at is None:
                    self._fade_out_at = k
                r0 = self.speech.read_pos
                got = self.speech.pull(tick) if self._fade_out_at is None else (tick.fill(0.0) or 0)
                # talking = audible speech, not merely samples: a mic sends silence too
                if got and float(np.dot(tick, tick)) > gate_energy:
                    last_speech = k
                if got:
                    us = self.speech.utterance_start
                    if us is not None and r0 <= us[0] < r0 + got:
                        pending_latency.append((k, us[1]))  # drawn `lag` ticks from now
                        self.speech.utterance_start = None
                talking = k - last_speech <= hang
                level = min(1.0, level + 1.0 / fade_frames) if talking else max(0.0, level - 1.0 / fade_frames)
                # audio of frame k enters the delay line; frame k - lag comes out with its mouth
                self._audio_ring[k % self._ticks] = tick
                self.analyzer.push(tick, 1)
                n = self.analyzer.take(self._mouth)
                if n == 0:  # the first `lag` ticks: nothing to show yet
                    k += 1
                    continue
                f = k - self.lag
                g = _ease(level)
                m = self._mouth[0]
                shape = MouthShape(float(m[0]) * g, float(m[1]) * g, float(m[2]) * g,
                                   REST_CLOSE + (float(m[3]) - REST_CLOSE) * g)
                late = time.monotonic_ns() > deadline + frame_ns
                t_draw = time.perf_counter()
                if late and prev_slot >= 0:
                    slot = prev_slot  # behind schedule: repeat the last picture, keep the sound
                    with self.stats.lock:
                        self.stats.late += 1
                else:
                    slot = self.ring.acquire_free()
                    if slot < 0:
                        slot = prev_slot
                        with self.stats.lock:
                            self.stats.late += 1
                    else:
                        self.avatar.render(self.ring.frames[slot], f, shape, fresh=not self.ring.drawn[slot])
                        self.ring.drawn[slot] = True
                draw_ms = (time.perf_counter() - t_draw) * 1000
                audio = self._audio_ring[f % self._ticks]
                for out in self.outputs:
                    out.offer(slot, audio)
                if slot != prev_slot:
                    if prev_slot >= 0:
                        self.ring.unhold(prev_slot)
                    prev_slot = slot
                if pending_latency and pending_latency[0][0] <= f:
                    _, t_push = pending_latency.pop(0)
                    with self.stats.lock:
                        st = self.stats
                        st.latency_ms[st.latencies % st.latency_ms.shape[0]] = (time.monotonic_ns() - t_push) / 1e6
                        st.latencies += 1
                with self.stats.lock:
                    st = self.stats
                    st.frames += 1
                    st.frame_ms[st.frames % st.frame_ms.shape[0]] = draw_ms
                    st.state = "talking" if talking else "idle"
                k += 1
                if self._fade_out_at is not None and k - self._fade_out_at > fade_frames + self.lag:
                    break
        finally:
            if prev_slot >= 0:
                self.ring.unhold(prev_slot)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        for out in self.outputs:
            out.start()
        self._thread.start()

    def stop(self, timeout: float = 2.5) -> None:
        """Fade to idle, flush and close every output. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.1, deadline - time.monotonic() - 1.0))
        self.cancel.set()
        self._thread.join(0.5)
        for out in self.outputs:
            out.close(timeout=max(0.5, deadline - time.monotonic()))

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
                "fps": st.frames / elapsed if elapsed > 0 else 0.0,
                "frame_ms_p50": float(ms[int(0.5 * (len(ms) - 1))]), "frame_ms_p99": float(ms[int(0.99 * (len(ms) - 1))]),
                "queued_speech_s": self.speech.queued() / SAMPLE_RATE,
                "latency_ms_median": (float(np.median(st.latency_ms[: min(st.latencies, st.latency_ms.shape[0])]))
                                      if st.latencies else None),
                "latency_samples": st.latencies,
                "outputs": [{"target": o.target, "connected": o.connected, "reconnects": o.reconnects,
                             "frames_written": o.frames_written, "frames_dropped": o.frames_dropped,
                             "queue_fill": len(o.queue), "error": o.last_error} for o in self.outputs],
            }


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




__all__ = ["LiveSession", "LiveOptions", "SpeechBuffer", "HoldRing"]
