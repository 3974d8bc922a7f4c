"""The engine: one render session = analysis -> compose -> encode threads over bounded queues.

    source --(audio blocks)--> analyse: log-mel -> windows -> InferencePool -> MouthTrack
           --blocks queue--> compose: avatar.render into a BGR canvas, its changed regions
                             converted to I420 into FrameRing slots (compositor.Composer)
           --frames queue--> encode: sink.write(I420 frame, that frame's audio)

Shared between sessions (passed in, never global): the InferencePool and the AvatarCache.
Owned by a session: its clock (the sample count), mouth track, blocks, frame ring, sink.
States: NULL -> READY (inputs checked, buffers allocated) -> PLAYING -> STOPPED.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from dhlive_cli.analysis import MouthAnalyzer
from dhlive_cli.compositor import Composer, FrameRing
from dhlive_cli.errors import Cancelled, EngineError, InputError, OutputError
from dhlive_cli.inference import InferencePool
from dhlive_cli.presets import Preset
from dhlive_cli.queues import BoundedQueue
from dhlive_cli.queues import Cancelled as QueueCancelled
from dhlive_cli.sinks import EncoderOptions, FfmpegSink, NullSink
from dhlive_cli.sources import FileAudioSource
from dhlive_cli.timebase import Timebase

log = logging.getLogger(__name__)


class State(Enum):
    NULL = "null"
    READY = "ready"
    PLAYING = "playing"
    STOPPED = "stopped"


class AudioBlock:
    """block_frames frames of audio and their mouth track; recycled through a pool."""

    __slots__ = ("audio", "mouth", "first_frame", "n_frames", "n_samples", "eos")

    def __init__(self, block_frames: int, samples_per_frame: int):
        self.audio = np.zeros(block_frames * samples_per_frame, dtype=np.float32)
        self.mouth = np.zeros((block_frames, 4), dtype=np.float32)
        self.first_frame = 0
        self.n_frames = 0
        self.n_samples = 0
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
    peak_children_rss_mb: float = 0.0  # the ffmpeg children (encoder, decoder) together, at their peak
    cpu_s: float = 0.0  # CPU seconds (user + system) of this process and its children during run()

    @property
    def realtime_factor(self) -> float:
        return self.duration_s / self.elapsed_s if self.elapsed_s else 0.0


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


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as e:  # a name too long, a path through a file
        raise OutputError(f"{path}: {e.strerror or e}") from e


def is_special_file(path: str | os.PathLike) -> bool:
    """An existing output that is not a regular file (/dev/null, /dev/full, a FIFO): it is
    written in place. Writing beside it and renaming over it would replace the device node."""
    st = _stat(Path(path))
    return st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def sibling_name(out: Path, tag: str, suffix: str = "") -> Path:
    """.NAME.TAG[SUFFIX] beside out, NAME shortened so the whole stays within NAME_MAX (255 bytes)."""
    name = out.name
    while len(f".{name}.{tag}{suffix}".encode()) > 255:
        name = name[:-1]
    return out.with_name(f".{name}.{tag}{suffix}")


def check_output_path(output: str | os.PathLike) -> Path:
    out = Path(output)
    st = _stat(out)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{out}: is a directory; give a file name such as {out / 'out.mp4'}")
    if len(out.name.encode()) > 255:
        raise OutputError(f"{out}: file name too long")
    if st is not None and not stat.S_ISREG(st.st_mode):  # a device or FIFO: written in place
        if not os.access(out, os.W_OK):
            raise OutputError(f"{out}: not writable")
        return out
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: directory {parent} is not writable")
    if st is not None and not os.access(out, os.W_OK):
        raise OutputError(f"{out}: file exists and is not writable")
    # os.access says yes to root everywhere; only creating a file proves the place is writable
    probe = sibling_name(out, "dhlive-probe")
    try:
        with open(probe, "wb"):
            pass
        probe.unlink()
    except OSError as e:
        raise OutputError(f"{out}: cannot write in {parent}: {e.strerror or e}") from e
    return out


def check_not_input(output: Path, input_path: str | os.PathLike) -> None:
    """Writing the output over the input would destroy the user's speech file."""
    try:
        same = os.path.samefile(output, input_path)
    except OSError:  # one of them does not exist (yet)
        return
    if same:
        raise OutputError(f"{output}: is the input file; give a different output name")


class RenderSession:
    """Renders one audio file with one avatar to one output (or the null sink when output is None)."""

    STDOUT = "-"  # the output that means: stream the video to this process's standard output
    STREAM_FORMATS = {"mkv": "matroska", "mp4": "mp4"}  # what `-o -` can write (both play while written)

    def __init__(self, input_path: str | os.PathLike, output: str | os.PathLike | None, *, avatar,
                 pool: InferencePool, preset: Preset, fps: int | None = None, sink=None,
                 stream_format: str = "mkv", encoder: EncoderOptions | None = None):
        """input_path: an audio file, or "-" for any container ffmpeg reads on stdin. output: an
        .mp4/.mkv path, "-" for stdout (stream_format "mkv", or "mp4" written as fragmented mp4),
        or None for the null sink. encoder: the video/audio encoder settings (default: from the
        preset, x264). Raises InputError/OutputError before anything is written."""
        self.state = State.NULL
        self.tb = Timebase(fps or preset.fps)
        self.preset = preset
        self.pool = pool
        self.avatar = avatar
        self.width, self.height = avatar.width, avatar.height
        self.to_stdout = output is not None and str(output) == self.STDOUT
        if self.to_stdout and stream_format not in self.STREAM_FORMATS:
            raise InputError(f"--format {stream_format}: stdout takes mkv or mp4 (fragmented)")
        self.output = check_output_path(output) if output is not None and not self.to_stdout else None
        if self.output is not None:
            check_not_input(self.output, input_path)
        self.source = FileAudioSource(input_path)  # probes: bad input fails here, before any output
        est = self.source.info.estimated_samples
        self.stats = Stats(frames_total=-(-est // self.tb.samples_per_frame) if est else None)
        self.cancel = threading.Event()
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()
        self._stop_lock = threading.Lock()

        bf = preset.block_frames
        spf = self.tb.samples_per_frame
        # the queue + one being read + those held for look-ahead + one each in compose and encode
        held_max = 1 + -(-pool.ahead // (self.tb.hops_per_frame * bf))
        n_blocks = preset.queue_blocks + 3 + held_max
        self._block_pool: BoundedQueue[AudioBlock] = BoundedQueue("block-pool", n_blocks, "block", self.cancel)
        for _ in range(n_blocks):
            self._block_pool.put(AudioBlock(bf, spf))
        self._blocks: BoundedQueue[AudioBlock] = BoundedQueue("analysis->compose", preset.queue_blocks, "block", self.cancel)
        self._frames: BoundedQueue[tuple] = BoundedQueue("compose->encode", preset.queue_frames, "block", self.cancel)
        if preset.frame_ring < preset.queue_frames + 2:
            raise InputError("preset: engine.frame_ring must exceed engine.queue_frames + 2")
        self.ring = FrameRing(preset.frame_ring, self.height, self.width, self.cancel)
        self._analyzer = MouthAnalyzer(pool, self.tb, max_push_frames=bf)
        self._mouth = np.zeros((bf + 1 + -(-pool.ahead // self.tb.hops_per_frame), 4), dtype=np.float32)
        self._tmp_path: Path | None = None
        if sink is not None:  # tests and benchmarks bring their own
            self.sink = sink
        elif self.to_stdout:
            fmt = self.STREAM_FORMATS[stream_format]
            self.sink = FfmpegSink("pipe:1", self.width, self.height, self.tb.fps,
                                   encoder or self._encoder_options(preset), fmt=fmt, fragmented=fmt == "mp4")
        elif self.output is not None:
            fmt = "mp4" if self.output.suffix.lower() in (".mp4", ".m4v", ".mov", "") else None
            if fmt is None and self.output.suffix.lower() == ".mkv":
                fmt = "matroska"
            if fmt is None:
                raise OutputError(f"{self.output}: unsupported output type {self.output.suffix!r} (use .mp4 or .mkv)")
            target = self.output
            if not is_special_file(self.output):  # a device (/dev/null, /dev/full) is written in place
                self._tmp_path = sibling_name(self.output, "dhlive-partial", self.output.suffix or ".mp4")
                target = self._tmp_path
            self.sink = FfmpegSink(str(target), self.width, self.height, self.tb.fps,
                                   encoder or self._encoder_options(preset), fmt=fmt)
        else:
            self.sink = NullSink()
        self.state = State.READY

    @staticmethod
    def _encoder_options(preset: Preset) -> EncoderOptions:
        return EncoderOptions(preset=preset.encoder_preset, crf=preset.crf, threads=preset.encoder_threads,
                              audio_bitrate=preset.audio_bitrate, gop_seconds=preset.gop_seconds)

    # ------------------------------------------------------------------ threads
    def _analyse(self) -> None:
        spf = self.tb.samples_per_frame
        analyzer = self._analyzer
        held: list[AudioBlock] = []  # blocks waiting for the mouth of their last frames
        frame0 = 0
        eos = False
        while not eos:
            block = self._block_pool.get()
            n = self.source.read_into(block.audio)
            frames = -(-n // spf)
            block.audio[n : frames * spf] = 0.0  # pad the last partial frame with silence
            block.first_frame, block.n_frames, block.n_samples, block.eos = frame0, frames, n, False
            frame0 += frames
            if frames:
                analyzer.push(block.audio, frames)
                held.append(block)
            else:
                self._block_pool.put(block)
            if n < block.audio.shape[0]:
                eos = True
                analyzer.finish()
            while (k := analyzer.take(self._mouth)) > 0:
                self._distribute(held, analyzer.frames_done - k, k)
                with self.stats._lock:
                    self.stats.inference_calls += 1
            # a block is complete when every frame of it has its mouth
            while held and analyzer.frames_done >= held[0].first_frame + held[0].n_frames:
                self._blocks.put(held.pop(0))
        assert not held, "all frames inferred at end of stream"
        if frame0 == 0:
            raise InputError(f"{self.source.path}: contains no audio samples")
        with self.stats._lock:
            self.stats.frames_total = frame0
        end = self._block_pool.get()
        end.n_frames, end.n_samples, end.eos = 0, 0, True
        self._blocks.put(end)

    def _distribute(self, held: list[AudioBlock], first: int, n: int) -> None:
        """Copy the mouth rows of frames [first, first + n) into the blocks that own them."""
        for b in held:
            lo = max(first, b.first_frame)
            hi = min(first + n, b.first_frame + b.n_frames)
            if hi > lo:
                b.mouth[lo - b.first_frame : hi - b.first_frame] = self._mouth[lo - first : hi - first]

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
        spf = self.tb.samples_per_frame
        ring = self.ring
        stats = self.stats
        while True:
            slot, block, i = self._frames.get()
            if slot < 0:
                self._block_pool.put(block)
                return
            a0 = i * spf
            a1 = min(a0 + spf, block.n_samples)
            self.sink.write(ring.frames[slot], block.audio[a0:a1])
            ring.release(slot)
            if i == block.n_frames - 1:
                self._block_pool.put(block)
            with stats._lock:
                stats.frames_done += 1
                stats.samples_done += a1 - a0

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
        import psutil

        proc = psutil.Process()
        budget = self.preset.memory_budget_mb * 2**20
        t0 = time.monotonic()
        cpu0 = _cpu_seconds()
        self.stats.started_at = t0
        try:
            self.source.open()
            self.sink.open()
        except BaseException:
            self.stop()
            raise
        self.state = State.PLAYING
        for name, fn in (("dhlive-analyse", self._analyse), ("dhlive-compose", self._compose), ("dhlive-encode", self._encode)):
            t = threading.Thread(target=self._guard(fn), name=name, daemon=True)
            self._threads.append(t)
            t.start()
        try:
            encoder = self._threads[-1]
            while encoder.is_alive():
                encoder.join(tick_s)
                rss = proc.memory_info().rss
                kids = _children_rss(proc)
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
            self.sink.close()
            if self._tmp_path is not None:
                os.replace(self._tmp_path, self.output)
        except BaseException:
            self.stop()
            raise
        finally:
            self.source.close()
        self.state = State.STOPPED
        snap = self.stats.snapshot()
        return RenderResult(
            output=str(self.output) if self.output else self.STDOUT if self.to_stdout else None, frames=snap["frames_done"],
            samples=snap["samples_done"], duration_s=snap["samples_done"] / 16000.0,
            elapsed_s=time.monotonic() - t0, cpu_s=_cpu_seconds() - cpu0, peak_rss_mb=snap["peak_rss_mb"],
            peak_children_rss_mb=snap["peak_children_rss_mb"], model=self.pool.name,
            provider=self.pool.provider, width=self.width, height=self.height, fps=self.tb.fps,
        )

    def stop(self, timeout: float = 1.5) -> None:
        """Idempotent: cancel every thread, kill the children, remove the partial output."""
        with self._stop_lock:
            if self.state is State.STOPPED:
                return
            self.cancel.set()
            self.sink.abort()  # unblocks an encode thread stuck writing to ffmpeg
            self.source.close()
            deadline = time.monotonic() + timeout
            for t in self._threads:
                t.join(max(0.0, deadline - time.monotonic()))
            alive = [t.name for t in self._threads if t.is_alive()]
            if alive:
                log.warning("threads still running after stop(): %s", ", ".join(alive))
            if self._tmp_path is not None:
                try:
                    self._tmp_path.unlink()
                except FileNotFoundError:
                    pass
            self.state = State.STOPPED

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


__all__ = ["RenderSession", "RenderResult", "State", "Stats", "check_not_input", "check_output_path",
           "is_special_file", "sibling_name"]
