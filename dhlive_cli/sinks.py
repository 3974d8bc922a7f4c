"""Sinks: where finished frames and their audio go.

FfmpegSink runs one ffmpeg child fed raw frames on stdin -- I420 (yuv420p), the format x264
encodes, so ffmpeg converts nothing -- and float32 PCM on a second pipe, so the audio written is
exactly the samples the engine clocked. NullSink counts and discards (benchmarks). A sink is a
context manager; close() flushes and waits so the file is valid, abort() kills the child at once.

Why a child process and not libav* in-process (PyAV): the child keeps x264's threads and
memory out of our process (a crash or a leak in the encoder cannot take the engine with it, a
live output restarts it alone on reconnect), writes RTMP/flv/mp4 with ffmpeg's own muxers, and
the pipe costs little once frames are I420; see BENCHMARKS.md ("encoder input") for figures.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import numpy as np

from dhlive_cli.errors import EngineError, OutputError
from dhlive_cli.ffmpeg_bin import StderrTail, ffmpeg_path, wait_child
from dhlive_cli.publish_log import PublishLog
from dhlive_cli.redact import redact_text, redact_url, secrets_of
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)

_F_SETPIPE_SZ = 1031  # Linux: grow a pipe so the audio can run ahead of the video freely
# ffmpeg (5.1 at least) can report a fatal error -- "Could not write header ... No space left on
# device" -- and then hang in its own cleanup without reading its input again, so our write
# blocks forever. Once it has printed an error (it runs with -loglevel error), it may keep a
# write or close blocked this long before it is killed.
WEDGED_GRACE_S = 3.0
# A live recording (mp4 fragments, Matroska clusters) reaches the disk at least this often: what a
# kill leaves behind is playable up to about this long before it
LIVE_FLUSH_S = 0.5

# x264 speed presets -> NVENC's p1 (fastest) .. p7 (slowest), nearest in intent
_NVENC_PRESET = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7"}


class _Lines:
    """A child's stderr as StderrTail iterates it, calling on_line as each line arrives."""

    def __init__(self, stream, on_line):
        self._stream, self._on_line = stream, on_line

    def __iter__(self):
        for raw in self._stream:
            if raw.strip():
                self._on_line()
            yield raw


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    """Video/audio encoder settings of one FfmpegSink.

    codec: "libx264" (CPU) or "h264_nvenc" (NVIDIA GPU; see hwenc.pick_video_codec).
    preset: x264 speed/size trade-off (mapped to NVENC p1..p7). crf: x264 quality (NVENC -cq).
    threads: encoder threads, 0 = x264 picks (1.5 x cores, frame threads plus look-ahead).
    tune: x264 --tune, e.g. "zerolatency" for live: no B-frames, no rate-control look-ahead, so
    no frames are held back (less latency, far less memory per encoder).
    lookahead: x264 rc-lookahead in frames (None = the preset's/tune's own).
    input_queue: packets ffmpeg may buffer per input (raw frames are large: 64 at 720p is 88 MB
    of address space if the encoder stalls; live keeps it small).
    maxrate, bufsize: a video bit-rate cap for ingest servers that require one, in ffmpeg's
    notation ("2500k"): x264's VBV on top of CRF ("capped CRF"), NVENC's maxrate; None: no cap.
    aac_coder: ffmpeg's AAC quantiser search, "twoloop" (its default: best quality per bit) or
    "fast" (live: about half the CPU; see build_encode_command).
    reuse_freed: the encoder's allocator keeps freed frame-sized blocks for reuse instead of
    giving them back to the system (encoder_env). ffmpeg's raw-video reader allocates each
    frame's packet anew; given back each time, every frame cost page faults that zero its
    pages again: a 20 s 720p render took 0.68-1.12 s of system CPU, 0.46-0.52 s with this
    (three alternating runs each). For renders; live encoders keep glibc's defaults (at 360p no
    CPU was saved and each encoder's PSS grew by 2 MB).
    """

    preset: str = "veryfast"
    crf: int = 23
    threads: int = 0
    audio_bitrate: str = "128k"
    gop_seconds: float = 2.0  # keyframe interval; live needs <= 2 s so late joiners start fast
    codec: str = "libx264"
    tune: str | None = None
    lookahead: int | None = None
    input_queue: int = 64
    maxrate: str | None = None
    bufsize: str | None = None
    aac_coder: str = "twoloop"
    reuse_freed: bool = False


def video_args(enc: EncoderOptions, fps: int) -> dict:
    """ffmpeg output options (ffmpeg-python keyword form) for the video stream of enc."""
    g = max(1, int(round(enc.gop_seconds * fps)))
    if enc.codec == "h264_nvenc":
        args = {"vcodec": "h264_nvenc", "preset": _NVENC_PRESET.get(enc.preset, "p4"), "rc": "vbr",
                "cq": enc.crf, "b:v": 0, "g": g, "pix_fmt": "yuv420p"}
        if enc.tune == "zerolatency":
            args.update({"tune": "ll", "zerolatency": 1, "bf": 0, "rc-lookahead": 0})
        return _capped(args, enc)
    if enc.codec != "libx264":
        raise EngineError(f"unknown video codec {enc.codec!r}")
    args = {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": enc.preset, "crf": enc.crf, "g": g,
            "threads": enc.threads}
    if enc.tune:
        args["tune"] = enc.tune
    if enc.lookahead is not None:
        args["rc-lookahead"] = enc.lookahead
    return _capped(args, enc)


def _capped(args: dict, enc: EncoderOptions) -> dict:
    if enc.maxrate:
        args["maxrate"] = enc.maxrate
        args["bufsize"] = enc.bufsize or enc.maxrate  # one second of the cap when not given
    return args


STREAM_AUDIO = (48000, 2)  # what RTMP ingest expects (and what live recordings get too)
# ffmpeg opens its inputs one after the other and reads the audio in packets of 1024 samples
# (64 ms at 16 kHz): while it waits for audio, the video pipe (64 KB by default: less than one
# frame) fills up and our write blocks before we have sent that audio. Measured here: at 60 fps
# with 16 kHz audio the encoder hung at start, and later with a 4-packet input queue. So the
# audio pipe gets this much silence first, which ffmpeg cuts off again (atrim, exact to the
# sample), and the input queues hold at least two audio packets' worth of frames.
AUDIO_LEAD_S = 0.1


def audio_lead(rate: int) -> int:
    """Samples of silence written ahead of the audio (cut again by the encoder): 100 ms."""
    return max(1, int(rate * AUDIO_LEAD_S))


def build_encode_command(target: str, fmt: str, width: int, height: int, fps: int, audio_fd: int,
                         enc: EncoderOptions, movflags: str | None, pix_fmt: str = "yuv420p",
                         flush_s: float | None = None, log_level: str = "error", audio_rate: int = SAMPLE_RATE,
                         audio_channels: int = 1, audio_out: tuple[int, int] | None = None) -> list[str]:
    """The ffmpeg argument list: raw `pix_fmt` frames (yuv420p or bgr24) on stdin, interleaved
    float32 PCM at `audio_rate` Hz with `audio_channels` channels on `audio_fd`,
    H.264 + AAC into `target` as `fmt` (an ffmpeg muxer name: mp4, matroska, flv).

    audio_out: (rate, channels) of the AAC track; None keeps the input's (a render keeps its
    source's quality), except flv, which always gets STREAM_AUDIO (48 kHz stereo). When the track's
    rate is above the input's, AAC's bandwidth (-cutoff) is the input's Nyquist frequency: the
    bands above it are empty, and skipping them halves the AAC encoder's CPU.

    flush_s: for a recording that may be cut off at any moment (a kill, a power loss), write
    what is muxed to the file at least this often (seconds), so all but that much stays
    playable: mp4 in fragments of at most flush_s (movflags must ask for fragments), Matroska
    in clusters of at most flush_s, each packet written out at once. None: the muxer's own
    buffering (a Matroska file stays empty for tens of seconds at low bit rates).

    log_level: ffmpeg's -loglevel; anything above "error" also turns the progress line off
    (PublishLog reads an RTMP encoder's "level+verbose" log)."""
    import ffmpeg  # ffmpeg-python: only builds the argument list; we own the process

    # frames per 1024-sample audio packet, twice, plus slack (see AUDIO_LEAD_S)
    queue = max(enc.input_queue, 2 * -(-fps * 1024 // audio_rate) + 4)
    video = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt=pix_fmt, s=f"{width}x{height}",
                         framerate=fps, thread_queue_size=queue, probesize=32, analyzeduration=0)
    # Raw inputs need no probing; without these limits ffmpeg reads seconds of audio before it
    # takes the first frame, while we wait to write that frame: a deadlock.
    audio = ffmpeg.input(f"pipe:{audio_fd}", format="f32le", ar=audio_rate, ac=audio_channels,
                         thread_queue_size=queue, probesize=32, analyzeduration=0)
    out_rate, out_channels = audio_out or (STREAM_AUDIO if fmt == "flv" else (audio_rate, audio_channels))
    out_kwargs = {
        **video_args(enc, fps),
        "acodec": "aac", "audio_bitrate": enc.audio_bitrate, "ar": out_rate, "ac": out_channels,
        "af": f"atrim=start_sample={audio_lead(audio_rate)},asetpts=PTS-STARTPTS",  # the lead's silence
        "format": fmt,
    }
    if out_rate > audio_rate:
        # Upsampled audio (live's 16 kHz speech sent as 48 kHz for RTMP ingest) holds nothing above
        # the input's Nyquist: telling AAC so makes it skip the empty bands' quantiser search, which
        # was most of a live encoder's CPU (twoloop, 128k stereo, 20 s: 1.45 s of CPU -> 0.73 s)
        out_kwargs["cutoff"] = audio_rate // 2
    if enc.aac_coder != "twoloop":
        out_kwargs["aac_coder"] = enc.aac_coder
        if enc.aac_coder == "fast" and audio_channels == 1 and out_channels == 2:
            # Both channels carry the same mono signal. The fast coder's per-band mid/side search
            # then spends about half of the encoder's CPU to find what is known: measured on 60 s of
            # 16 kHz speech sent as 128k 48 kHz stereo, twoloop 1.43 s of CPU (decoded SNR 38.5
            # dB), fast 1.42 s, fast without M/S 0.75 s (35.6 dB, 131 kb/s).
            out_kwargs["aac_ms"] = 0
    if movflags:
        out_kwargs["movflags"] = movflags
        if "empty_moov" in movflags:
            # an edit list absorbs the AAC encoder's priming delay; without one the muxer shifts
            # the video instead and the first frame lasts 21 ms (48 kHz) to 64 ms (16 kHz) longer
            out_kwargs["use_editlist"] = 1
    if flush_s is not None:
        if fmt == "mp4":
            out_kwargs["frag_duration"] = int(flush_s * 1_000_000)  # microseconds
        elif fmt == "matroska":
            out_kwargs["cluster_time_limit"] = int(flush_s * 1000)  # milliseconds
        out_kwargs["flush_packets"] = 1
    stream = ffmpeg.output(video, audio, target, **out_kwargs)
    args = ffmpeg.compile(stream, cmd=ffmpeg_path(), overwrite_output=True)
    # -nostdin would close our video pipe; quiet logging keeps stderr small and useful
    quiet = ["-hide_banner", "-loglevel", log_level] + ([] if log_level == "error" else ["-nostats"])
    return [args[0], *quiet] + args[1:]


# glibc's allocator settings for an encoder that reuses freed frames (EncoderOptions.reuse_freed):
# blocks up to 32 MB (the most glibc's own dynamic threshold reaches) come from the heap, and up
# to 256 MB of free heap is kept rather than given back to the system
_REUSE_FREED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"


def encoder_env(enc: EncoderOptions) -> dict | None:
    """The environment of the ffmpeg child for enc: None (ours, unchanged) unless
    enc.reuse_freed, which adds _REUSE_FREED to GLIBC_TUNABLES (tunables the caller set win).
    glibc ignores tunables it does not know; other C libraries ignore the variable."""
    if not enc.reuse_freed:
        return None
    env = dict(os.environ)
    have = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    names = {t.split("=", 1)[0] for t in have}
    env["GLIBC_TUNABLES"] = ":".join(have + [t for t in _REUSE_FREED.split(":") if t.split("=", 1)[0] not in names])
    return env


def frame_bytes(width: int, height: int, pix_fmt: str) -> int:
    """Bytes of one raw frame: yuv420p 1.5 per pixel, bgr24 3."""
    if pix_fmt == "yuv420p":
        return width * height * 3 // 2
    if pix_fmt == "bgr24":
        return width * height * 3
    raise ValueError(f"unsupported raw pixel format {pix_fmt!r}")


class NullSink:
    """Discards everything; counts what it was given."""

    def __init__(self) -> None:
        self.frames = 0
        self.samples = 0

    def open(self) -> "NullSink":
        return self

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        self.frames += 1
        self.samples += audio.shape[0]

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    @property
    def pids(self) -> list[int]:
        return []

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


class FfmpegSink:
    """Encodes frames + PCM to a file or URL with one ffmpeg child.

    write(frame, audio): frame is one picture in `pix_fmt` -- yuv420p: a C-contiguous uint8
    array of (height * 3 / 2, width) (compositor.i420_shape); bgr24: (height, width, 3), kept
    for comparisons with the old path -- and audio that frame's float32 samples at audio_rate,
    audio_channels interleaved (16 kHz mono by default: 640 at 25 fps). The audio goes first, then the picture, so ffmpeg never waits for audio it
    needs to interleave the video it already holds. Errors: OutputError (disk full),
    EngineError (the encoder failed or was killed), ValueError (a frame of the wrong size).
    """

    def __init__(self, target: str, width: int, height: int, fps: int, enc: EncoderOptions | None = None,
                 fmt: str = "mp4", fragmented: bool = False, pix_fmt: str = "yuv420p", fd: int | None = None,
                 audio_rate: int = SAMPLE_RATE, audio_channels: int = 1, audio_out: tuple[int, int] | None = None):
        self.target, self.width, self.height, self.fps = target, width, height, fps
        # the PCM write() takes (rate, channels: set_audio() may change it before open()) and
        # the AAC track's (None: the same, flv: 48 kHz stereo)
        self.audio_rate, self.audio_channels, self.audio_out = audio_rate, audio_channels, audio_out
        self.pix_fmt = pix_fmt
        self.frame_bytes = frame_bytes(width, height, pix_fmt)
        # what messages show of the target: an RTMP stream key never leaves this object
        self.label = redact_url(target)
        self._secrets = secrets_of(target)
        # fd: a file we already opened (created O_EXCL|O_NOFOLLOW in a granted folder). ffmpeg
        # gets that descriptor and opens /dev/fd/N, i.e. the same inode through /proc, never the
        # path again: a link swapped in at the path after we created it cannot redirect the write
        self.fd = fd
        self.enc = enc or EncoderOptions()
        self.fmt = fmt
        # a finished mp4 gets its index up front (faststart); a recording that may be cut off at
        # any moment (live) is written in fragments, so whatever was recorded stays playable
        self.movflags = (("+frag_keyframe+empty_moov+default_base_moof" if fragmented else "+faststart")
                         if fmt == "mp4" else None)
        self.flush_s = LIVE_FLUSH_S if fragmented and fmt in ("mp4", "matroska") else None
        self._proc: subprocess.Popen | None = None
        self._audio_w: int | None = None
        self._stderr: StderrTail | None = None
        # an RTMP publish is followed step by step (PublishLog) so a refused one can be named
        self._publish_log: PublishLog | None = None
        self._blocked_since: float | None = None  # a write or close waiting on ffmpeg since then
        self._wedged = False  # killed by the watch: it reported an error and stopped reading
        self._watch: threading.Thread | None = None
        self._gone = threading.Event()
        self.frames = 0
        self.samples = 0

    @property
    def pids(self) -> list[int]:
        return [self._proc.pid] if self._proc is not None else []

    def set_audio(self, rate: int, channels: int) -> None:
        """The PCM that write() will get: float32 at `rate` Hz, `channels` interleaved. Before open()."""
        if self._proc is not None:
            raise EngineError("set_audio() after open()")
        self.audio_rate, self.audio_channels = rate, channels

    def open(self) -> "FfmpegSink":
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, 1 << 20)
        except OSError:  # pragma: no cover - not Linux, or over /proc/sys/fs/pipe-max-size
            pass
        dest = self.target if self.fd is None else f"/dev/fd/{self.fd}"
        publish = self.fmt == "flv" and self.target.startswith(("rtmp://", "rtmps://"))
        cmd = build_encode_command(dest, self.fmt, self.width, self.height, self.fps, r, self.enc,
                                   movflags=self.movflags, pix_fmt=self.pix_fmt, flush_s=self.flush_s,
                                   log_level="level+verbose" if publish else "error",
                                   audio_rate=self.audio_rate, audio_channels=self.audio_channels,
                                   audio_out=self.audio_out)
        log.debug("encoder: %s", redact_text(" ".join(cmd), self._secrets))
        try:
            self._proc = subprocess.Popen(
                # target pipe:1 streams to our own stdout (`render -o -`): the child writes it directly
                cmd, stdin=subprocess.PIPE, stdout=None if self.target == "pipe:1" else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(r,) if self.fd is None else (r, self.fd), start_new_session=True, bufsize=0,
                env=encoder_env(self.enc),
            )
        finally:
            os.close(r)
        self._audio_w = w
        for size in (1 << 22, 1 << 20):  # 4 MB, else 1 MB (the usual limit without CAP_SYS_RESOURCE)
            try:
                fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, size)
                break
            except OSError:
                pass
        lead = np.zeros(audio_lead(self.audio_rate) * self.audio_channels, dtype=np.float32)
        try:
            os.write(w, memoryview(lead).cast("B"))  # fits: the pipe holds 64 KB or more
        except OSError:  # the child is gone already: write() will say why
            pass
        proc = self._proc
        self._gone.clear()
        self._watch, self._wedged = None, False
        if publish:
            self._publish_log = PublishLog(proc.stderr, lambda: self._on_error(proc), self.target)
            lines = self._publish_log
        else:
            self._publish_log, lines = None, _Lines(proc.stderr, lambda: self._on_error(proc))
        self._stderr = StderrTail(lines, "dhlive-encode-err")
        return self

    @property
    def on_air(self) -> bool:
        """An RTMP target accepted the publish (always True for other targets once open)."""
        return self._proc is not None and (self._publish_log is None or self._publish_log.on_air)

    @property
    def publish_refused(self) -> str | None:
        """After a failure: why the RTMP server refused the publish (key refused, already
        publishing), or None when it failed for another reason (down, lost, encoder error)."""
        if self._publish_log is None:
            return None
        if self._stderr is not None:
            self._stderr.join(1.0)  # the child has exited: its last lines are read at once
        return self._publish_log.refused

    def _on_error(self, proc: subprocess.Popen) -> None:
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_wedged, args=(proc,), name="dhlive-encode-watch",
                                           daemon=True)
            self._watch.start()

    def _watch_wedged(self, proc: subprocess.Popen) -> None:
        while proc.poll() is None and not self._gone.wait(0.2):
            since = self._blocked_since
            if since is not None and time.monotonic() - since > WEDGED_GRACE_S:
                log.debug("encoder reported an error and stopped reading: killing it")
                self._wedged = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                return

    def _end_watch(self) -> None:
        self._gone.set()
        if self._watch is not None and self._watch is not threading.current_thread():
            self._watch.join(1.0)

    def _why(self) -> str:
        # ffmpeg names its output in its messages ("Error closing file rtmp://host/app/KEY: ...")
        why = self._stderr.last("ffmpeg exited") if self._stderr else "ffmpeg exited"
        return redact_text(why, self._secrets)

    def _first_error(self) -> str:
        why = self._why()  # waits for the stderr thread to read what is left
        if self._stderr is not None and self._stderr.lines:
            return redact_text(self._stderr.lines[0], self._secrets)
        return why

    def _no_space(self) -> bool:
        # ffmpeg's last line is often a consequence ("Error initializing output stream",
        # "Conversion failed!"); the reason is a line or two above it
        return self._stderr is not None and any("No space left" in ln for ln in self._stderr.lines)

    def _fail(self, exc: BaseException) -> None:
        rc = None
        if self._proc is not None:
            try:  # the pipe broke because ffmpeg is exiting: let it finish so its status is known
                rc = self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                rc = self._proc.poll()
        why = self._why()
        if self._no_space() or getattr(exc, "errno", None) == 28:
            raise OutputError(f"{self.label}: no space left on device") from exc
        if self._wedged:
            raise EngineError(f"encoder failed: {self._first_error()}") from exc
        if rc is not None and rc < 0:
            raise EngineError(f"encoder ffmpeg was killed by signal {-rc}") from exc
        raise EngineError(f"encoder failed: {why}") from exc

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        if self._proc is None or self._audio_w is None:
            raise EngineError("encoder is closed")
        if frame.nbytes != self.frame_bytes:
            raise ValueError(f"frame of {frame.shape} is not one {self.width}x{self.height} {self.pix_fmt} picture")
        self._blocked_since = time.monotonic()
        try:
            if audio.shape[0]:
                mv = memoryview(audio).cast("B")
                while mv:
                    n = os.write(self._audio_w, mv)
                    mv = mv[n:]
            self._proc.stdin.write(memoryview(frame).cast("B"))
        except (BrokenPipeError, OSError) as e:
            self._fail(e)
        finally:
            self._blocked_since = None
        self.frames += 1
        self.samples += audio.shape[0] // self.audio_channels

    def close(self, timeout: float = 30.0) -> None:
        """End of stream: close both pipes and wait for ffmpeg to finish the file."""
        proc = self._proc
        if proc is None:
            return
        if self._audio_w is not None:
            os.close(self._audio_w)
            self._audio_w = None
        try:
            proc.stdin.close()
        except OSError:
            pass
        self._blocked_since = time.monotonic()
        try:
            rc = wait_child(proc, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -9
        finally:
            self._blocked_since = None
        self._proc = None
        self._end_watch()
        why = self._why()
        if proc.stderr:
            proc.stderr.close()
        if rc != 0:
            if "No space left" in why or self._no_space():
                raise OutputError(f"{self.label}: no space left on device")
            if self._wedged:
                raise EngineError(f"encoder failed: {self._first_error()}")
            raise EngineError(f"encoder failed (exit {rc}): {why}")

    def abort(self) -> None:
        """Stop now (Ctrl+C, error): no flush, the child is gone when this returns."""
        proc, self._proc = self._proc, None
        if self._audio_w is not None:
            try:
                os.close(self._audio_w)
            except OSError:
                pass
            self._audio_w = None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self._end_watch()
        for f in (proc.stdin, proc.stderr):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
