"""The engine: one render session = analysis -> compose -> encode threads over bounded queues.

    source --(16 kHz mono)--> analyse: log-mel -> windows -> InferencePool -> MouthTrack (25 Hz)
           --(program audio: the input's rate/channels)--> -> MouthResampler (video fps)
           --blocks queue--> compose: avatar.render into a BGR canvas, its changed regions
                             converted to I420 into FrameRing slots (compositor.Composer)
           --frames queue--> encode: sink.write(I420 frame, that frame's program audio)

The clock is the program audio's sample count: video frame k carries its samples
[floor(k * rate / fps), floor((k + 1) * rate / fps)) (timebase), the video has
ceil(samples * fps / rate) frames, and its last frame is the only one with less sound.

Shared between sessions (passed in, never global): the InferencePool and the AvatarCache.
Owned by a session: its clock (the sample count), mouth track, blocks, frame ring, sink.
States: NULL -> READY (inputs checked, buffers allocated) -> PLAYING -> STOPPED.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from dhlive_cli.analysis import MouthAnalyzer
from dhlive_cli.compositor import Composer, FrameRing
from dhlive_cli.errors import Cancelled, EngineError, InputError
from dhlive_cli.inference import InferencePool
from dhlive_cli.mouth_rate import MouthResampler
from dhlive_cli.outpaths import check_not_input, check_output_path, is_special_file, sibling_name
from dhlive_cli.presets import Preset
from dhlive_cli.queues import BoundedQueue
from dhlive_cli.queues import Cancelled as QueueCancelled
from dhlive_cli.render_io import STDOUT, STREAM_FORMATS, RenderIO
from dhlive_cli.sinks import EncoderOptions
from dhlive_cli.timebase import MODEL_FRAME, SAMPLE_RATE, Timebase

log = logging.getLogger(__name__)


class State(Enum):
    NULL = "null"
    READY = "ready"
    PLAYING = "playing"
    STOPPED = "stopped"


class FrameBlock:
    """Up to block_frames video frames: their mouth rows and program audio; recycled through a pool.

    Frame i of the block (video frame first_frame + i) has mouth[i] (open, spread, round, close)
    and the interleaved float32 samples audio[offsets[i]:offsets[i + 1]] (values, i.e. frames of
    sound x channels)."""

    __slots__ = ("audio", "mouth", "offsets", "first_frame", "n_frames", "eos")

    def __init__(self, block_frames: int, max_values_per_frame: int):
        self.audio = np.zeros(block_frames * max_values_per_frame, dtype=np.float32)
        self.mouth = np.zeros((block_frames, 4), dtype=np.float32)
        self.offsets = np.zeros(block_frames + 1, dtype=np.int64)
        self.first_frame = 0
        self.n_frames = 0
        self.eos = False


@dataclass
class Stats:
    """Figures the UI reads; written by engine threads under a lock, read as a snapshot."""

    frames_total: int | None = None
    frames_done: int = 0
    samples_done: int = 0
    started_at: float = 0.0
    rss_bytes: int = 0
    peak_rss_bytes: int = 0
    children_rss_bytes: int = 0  # the encoder/decoder ffmpeg children together
    peak_children_rss_bytes: int = 0
    over_budget: bool = False
    queue_fill: dict = field(default_factory=dict)
    inference_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict:
        with self._lock:
            elapsed = max(time.monotonic() - self.started_at, 1e-9) if self.started_at else 0.0
            return {
                "frames_total": self.frames_total, "frames_done": self.frames_done,
                "samples_done": self.samples_done, "elapsed_s": elapsed,
                "fps": self.frames_done / elapsed if elapsed else 0.0,
                "rss_mb": self.rss_bytes / 2**20, "peak_rss_mb": self.peak_rss_bytes / 2**20,
                "children_rss_mb": self.children_rss_bytes / 2**20,
                "peak_children_rss_mb": self.peak_children_rss_bytes / 2**20,
                "over_budget": self.over_budget, "queue_fill": dict(self.queue_fill),
                "inference_calls": self.inference_calls,
            }


@dataclass
class RenderResult:
    output: str | None
    frames: int
    samples: int
    duration_s: float
    elapsed_s: float
    peak_rss_mb: float
    model: str
    provider: str
    width: int
    height: int
    fps: int
    audio_rate: int = SAMPLE_RATE  # the output's audio track (program audio): Hz and channels
    audio_channels: int = 1
    peak_children_rss_mb: float = 0.0  # the ffmpeg children (encoder, decoder) together, at their peak
    cpu_s: float = 0.0  # CPU seconds (user + system) of this process and its children during run()
    # seconds from the start of the decoder and encoder (render_io, often before run()) to the
    # end: the span an encoder run alone is compared with, its own start-up included
    io_elapsed_s: float = 0.0

    @property
    def realtime_factor(self) -> float:
        return self.duration_s / self.elapsed_s if self.elapsed_s else 0.0


def _memory_reader():
    """A function () -> (this process's RSS, its children's RSS summed), bytes: read from /proc
    (procstat), or through psutil where /proc lacks what that needs."""
    from dhlive_cli import procstat

    if procstat.available():
        return lambda: (procstat.rss_bytes(), procstat.descendants_rss_bytes())
    import psutil

    proc = psutil.Process()
    return lambda: (proc.memory_info().rss, _children_rss(proc))


def _children_rss(proc) -> int:
    """Bytes resident in proc's child processes (the ffmpeg encoder and decoder), summed."""
    import psutil

    total = 0
    try:
        kids = proc.children(recursive=True)
    except psutil.Error:
        return 0
    for c in kids:
        try:
            total += c.memory_info().rss
        except psutil.Error:  # exited between the listing and the read
            pass
    return total


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for
    (the decoder and encoder ffmpeg, once they exit)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system



def render_encoder(preset: Preset, codec: str = "libx264") -> EncoderOptions:
    """Encoder settings of a render (`dhlive render`, RenderSession's own sink) from a preset:
    its x264 preset, CRF, threads, audio bit rate and keyframe interval, on `codec`
    ("libx264" or "h264_nvenc", see hwenc.pick_video_codec); the encoder reuses freed frame
    buffers (EncoderOptions.reuse_freed). Live streams take studio.live_encoder instead."""
    return EncoderOptions(preset=preset.encoder_preset, crf=preset.crf, threads=preset.encoder_threads,
                          audio_bitrate=preset.audio_bitrate, gop_seconds=preset.gop_seconds, codec=codec,
                          reuse_freed=True)

class RenderSession:
    """Renders one audio file with one avatar to one output (or the null sink when output is None)."""

    STDOUT = STDOUT  # the output that means: stream the video to this process's standard output
    STREAM_FORMATS = STREAM_FORMATS  # what `-o -` can write (both play while written)

    def __init__(self, input_path: str | os.PathLike, output: str | os.PathLike | None, *, avatar,
                 pool: InferencePool, preset: Preset, fps: int | None = None, sink=None,
                 stream_format: str = "mkv", encoder: EncoderOptions | None = None, io: RenderIO | None = None):
        """input_path: an audio file, or "-" for any container ffmpeg reads on stdin. output: an
        .mp4/.mkv path, "-" for stdout (stream_format "mkv", or "mp4" written as fragmented mp4),
        or None for the null sink. fps: 1..60 (default: the preset's). encoder: the video/audio
        encoder settings (default: from the preset, x264). The output's sound is the input's own
        rate and channels (see program_audio); a sink without set_audio() (NullSink, tests' own)
        gets the 16 kHz mono analysis stream. io: the decoder and encoder already made (and maybe
        started, see render_io) for this input and output at the avatar's size and this fps;
        the session then owns them. Raises InputError/OutputError (ValueError for an fps outside
        1..60) before anything is written, EngineError when io was made for another size or fps."""
        self.state = State.NULL
        self.tb = Timebase(fps or preset.fps)
        self.preset = preset
        self.pool = pool
        self.avatar = avatar
        self.width, self.height = avatar.width, avatar.height
        if io is None:
            io = RenderIO(input_path, output, self.width, self.height, self.tb.fps, preset=preset,
                          encoder=encoder or render_encoder(preset), stream_format=stream_format, sink=sink)
        elif (io.width, io.height, io.fps) != (self.width, self.height, self.tb.fps):
            raise EngineError(f"the encoder was made for {io.width}x{io.height}@{io.fps}, "
                              f"the avatar is {self.width}x{self.height}@{self.tb.fps}")
        self.io = io
        self.to_stdout, self.output = io.to_stdout, io.output
        self.source, self.sink = io.source, io.sink
        bf = preset.block_frames
        est = self.source.info.estimated_samples
        self.stats = Stats(frames_total=self.tb.frames_for_samples(est) if est else None)
        self.cancel = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()
        self._stop_lock = threading.Lock()

        # the queue + one being filled + one each in compose and encode (allocated in run(), once
        # the program audio's rate and channels are known)
        self._n_blocks = preset.queue_blocks + 3
        self._block_pool: BoundedQueue[FrameBlock] = BoundedQueue("block-pool", self._n_blocks, "block", self.cancel)
        self._blocks: BoundedQueue[FrameBlock] = BoundedQueue("analysis->compose", preset.queue_blocks, "block", self.cancel)
        self._frames: BoundedQueue[tuple] = BoundedQueue("compose->encode", preset.queue_frames, "block", self.cancel)
        if preset.frame_ring < preset.queue_frames + 2:
            raise InputError("preset: engine.frame_ring must exceed engine.queue_frames + 2")
        self.ring = FrameRing(preset.frame_ring, self.height, self.width, self.cancel)
        self._analyzer = MouthAnalyzer(pool, max_push_frames=bf)
        self._model_rows = np.zeros((bf + 2 + -(-pool.ahead // 4), 4), dtype=np.float32)
        self._resampler = MouthResampler(self.tb.fps, max_push_rows=self._model_rows.shape[0])
        self._read_buf = np.zeros(bf * MODEL_FRAME, dtype=np.float32)
        self.audio_rate, self.audio_channels = SAMPLE_RATE, 1  # the program audio's, once open
        self.state = State.READY


    # ------------------------------------------------------------------ threads
    def _analyse(self) -> None:
        """Read 16 kHz blocks, infer the 25 Hz mouth, resample it to the video rate and pack
        video frames (mouth + their program audio) into blocks for compose."""
        analyzer, resampler, src = self._analyzer, self._resampler, self.source
        prog = src.program
        tb, rate, ch = self.tb, self.audio_rate, self.audio_channels
        buf = self._read_buf
        taken = 0  # program frames (samples per channel) moved into blocks
        n_total: int | None = None  # video frames, once the program audio has ended
        analysing = True
        block: FrameBlock | None = None
        while True:
            if analysing:
                n = src.read_into(buf)
                frames = -(-n // MODEL_FRAME)
                buf[n : frames * MODEL_FRAME] = 0.0  # pad the last partial model frame with silence
                if frames:
                    analyzer.push(buf, frames)
                if n < buf.shape[0]:
                    analysing = False
                    analyzer.finish()
                while (k := analyzer.take(self._model_rows)) > 0:
                    resampler.push(self._model_rows[:k])
                    with self.stats._lock:
                        self.stats.inference_calls += 1
            if not analysing and n_total is None:
                src.pump_program()  # the decoder's other output may still be ahead of us
                if prog.eof:
                    if analyzer.frames_done == 0 or taken + prog.frames() == 0:
                        raise InputError(f"{src.path}: contains no audio samples{src.why_empty()}")
                    n_total = tb.frames_for_samples(taken + prog.frames(), rate)
                    resampler.finish(n_total)
                    with self.stats._lock:
                        self.stats.frames_total = n_total
            # frames whose program audio is all here (the last one: whatever is left)
            have = taken + prog.frames()
            k0 = resampler.frames_done
            can = (n_total - k0) if n_total is not None else max(0, have * tb.fps // rate - k0)
            while can > 0:
                if block is None:
                    block = self._block_pool.get()
                    block.first_frame, block.n_frames, block.eos = k0, 0, False
                    block.offsets[0] = 0
                room = block.mouth.shape[0] - block.n_frames
                got = resampler.take(block.mouth[block.n_frames :], limit=min(can, room))
                if got == 0:
                    break
                for i in range(block.n_frames, block.n_frames + got):
                    k = block.first_frame + i
                    end = tb.frame_start(k + 1, rate)
                    if n_total is not None and k == n_total - 1:
                        end = taken + prog.frames()  # the last frame takes the rest, often less
                    o = int(block.offsets[i])
                    m = prog.read(block.audio[o:], end - taken)
                    taken += m
                    block.offsets[i + 1] = o + m * ch
                block.n_frames += got
                can -= got
                k0 += got
                if block.n_frames == block.mouth.shape[0]:
                    self._blocks.put(block)
                    block = None
            if n_total is not None and resampler.frames_done >= n_total:
                break
        if block is not None:
            self._blocks.put(block)
        end = self._block_pool.get()
        end.n_frames, end.eos = 0, True
        self._blocks.put(end)

    def _compose(self) -> None:
        from dhlive_cli.avatar.drawn import MouthShape

        ring = self.ring
        draw = Composer(self.avatar).draw
        warm = getattr(self.avatar, "warm", None)
        if warm is not None:
            warm()  # per-thread resources (a video avatar's decoder) start before the first frame
        while True:
            block = self._blocks.get()
            if block.eos:
                self._frames.put((-1, block, 0))
                return
            for i in range(block.n_frames):
                slot = ring.acquire()
                m = block.mouth[i]
                draw(ring.frames[slot], block.first_frame + i,
                     MouthShape(float(m[0]), float(m[1]), float(m[2]), float(m[3])), fresh=not ring.drawn[slot])
                ring.drawn[slot] = True
                self._frames.put((slot, block, i))

    def _encode(self) -> None:
        ch = self.audio_channels
        ring = self.ring
        stats = self.stats
        while True:
            slot, block, i = self._frames.get()
            if slot < 0:
                self._block_pool.put(block)
                return
            a0, a1 = int(block.offsets[i]), int(block.offsets[i + 1])
            self.sink.write(ring.frames[slot], block.audio[a0:a1])
            ring.release(slot)
            if i == block.n_frames - 1:
                self._block_pool.put(block)
            with stats._lock:
                stats.frames_done += 1
                stats.samples_done += (a1 - a0) // ch

    def _guard(self, fn):
        def run():
            try:
                fn()
            except (QueueCancelled, Cancelled):
                pass
            except BaseException as e:  # noqa: BLE001 - carried to the caller of run()
                # after stop() the children are gone on purpose: what breaks then is not an error
                if self._error is None and not self.cancel.is_set():
                    self._error = e
                self.cancel.set()
        return run

    # ------------------------------------------------------------------ control
    def run(self, on_tick=None, tick_s: float = 0.25) -> RenderResult:
        """Render to the end (or until stop()). on_tick(stats_snapshot) is called from this thread."""
        if self.state is not State.READY:
            raise EngineError(f"run() in state {self.state.value}")
        budget = self.preset.memory_budget_mb * 2**20
        t0 = time.monotonic()
        cpu0 = _cpu_seconds()
        self.stats.started_at = t0
        try:
            self.audio_rate, self.audio_channels = self.io.open_sink()  # starts what io.start() did not
            per_frame = self.tb.max_frame_samples(self.audio_rate) * self.audio_channels
            for _ in range(self._n_blocks):
                self._block_pool.put(FrameBlock(self.preset.block_frames, per_frame))
        except BaseException:
            self.stop()
            raise
        self.state = State.PLAYING
        for name, fn in (("dhlive-analyse", self._analyse), ("dhlive-compose", self._compose), ("dhlive-encode", self._encode)):
            t = threading.Thread(target=self._guard(fn), name=name, daemon=True)
            self._threads.append(t)
            t.start()
        try:
            memory = _memory_reader()
            encoder = self._threads[-1]
            while encoder.is_alive():
                encoder.join(tick_s)
                try:
                    rss, kids = memory()
                except (OSError, ValueError, IndexError):  # a failed sample must not fail the render
                    rss, kids = self.stats.rss_bytes, self.stats.children_rss_bytes
                with self.stats._lock:
                    self.stats.rss_bytes = rss
                    self.stats.peak_rss_bytes = max(self.stats.peak_rss_bytes, rss)
                    self.stats.children_rss_bytes = kids
                    self.stats.peak_children_rss_bytes = max(self.stats.peak_children_rss_bytes, kids)
                    self.stats.queue_fill = {q.name: q.fill() for q in (self._blocks, self._frames)}
                    if rss > budget and not self.stats.over_budget:
                        self.stats.over_budget = True
                        log.warning("RSS %.0f MB is over the preset's memory budget of %d MB",
                                    rss / 2**20, self.preset.memory_budget_mb)
                if on_tick is not None:
                    on_tick(self.stats.snapshot())
            if self._error is not None:
                raise self._error
            if self.cancel.is_set():
                raise Cancelled("stopped")
            for t in self._threads:
                t.join(5)
            self.io.finish()
        except BaseException:
            self.stop()
            raise
        finally:
            self.source.close()
        self.state = State.STOPPED
        snap = self.stats.snapshot()
        end = time.monotonic()
        return RenderResult(
            output=self.io.output_name, frames=snap["frames_done"],
            samples=self.source.samples_read, duration_s=snap["samples_done"] / self.audio_rate,
            elapsed_s=end - t0, io_elapsed_s=end - (self.io.started_at or t0),
            cpu_s=_cpu_seconds() - cpu0, peak_rss_mb=snap["peak_rss_mb"],
            peak_children_rss_mb=snap["peak_children_rss_mb"], model=self.pool.name,
            provider=self.pool.provider, width=self.width, height=self.height, fps=self.tb.fps,
            audio_rate=self.audio_rate, audio_channels=self.audio_channels,
        )

    def stop(self, timeout: float = 1.5) -> None:
        """Idempotent: cancel every thread, kill the children, remove the partial output."""
        with self._stop_lock:
            if self.state is State.STOPPED:
                return
            self.cancel.set()
            self.io.abort()  # unblocks an encode thread stuck writing to ffmpeg; the partial file goes
            deadline = time.monotonic() + timeout
            for t in self._threads:
                t.join(max(0.0, deadline - time.monotonic()))
            alive = [t.name for t in self._threads if t.is_alive()]
            if alive:
                log.warning("threads still running after stop(): %s", ", ".join(alive))
            self.state = State.STOPPED

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


__all__ = ["RenderSession", "RenderResult", "State", "Stats", "check_not_input", "check_output_path",
           "is_special_file", "sibling_name"]
