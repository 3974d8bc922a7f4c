"""Sinks: where finished frames and their audio go.

FfmpegSink runs one ffmpeg child fed raw frames on stdin -- I420 (yuv420p), the format x264
encodes, so ffmpeg converts nothing -- and float32 PCM on a second pipe, so the audio written is
exactly the samples the engine clocked. NullSink counts and discards (benchmarks). A sink is a
context manager; close() flushes and waits so the file is valid, abort() kills the child at once.
What the child is told (EncoderOptions, its command line) is encode_command's.

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

import numpy as np

from dhlive_cli.encode_command import (  # noqa: F401 - re-exported: the sinks' settings are imported from here
    AUDIO_LEAD_S,
    STREAM_AUDIO,
    EncoderOptions,
    audio_lead,
    build_encode_command,
    encoder_env,
    frame_bytes,
    video_args,
)
from dhlive_cli.errors import EngineError, OutputError
from dhlive_cli.ffmpeg_bin import StderrTail, wait_child
from dhlive_cli.interrupts import interrupts_held
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

class _Lines:
    """A child's stderr as StderrTail iterates it, calling on_line as each line arrives."""

    def __init__(self, stream, on_line):
        self._stream, self._on_line = stream, on_line

    def __iter__(self):
        for raw in self._stream:
            if raw.strip():
                self._on_line()
            yield raw


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
        # path again: a link swapped in at the path after we created it cannot redirect the write.
        # With target "pipe:N" (N = fd, a copy of a descriptor the user named: /dev/stdout) ffmpeg
        # writes the descriptor itself, opening nothing
        self.fd = fd
        self._dest = target  # what ffmpeg is given (open(): pipe:N, /dev/fd/N, the URL or path)
        self.enc = enc or EncoderOptions()
        self.fmt = fmt
        # a finished mp4 gets its index up front (faststart); a recording that may be cut off at
        # any moment (live) is written in fragments, so whatever was recorded stays playable.
        # delay_moov: the header waits for the first fragment, so its edit lists know x264's
        # B-frame delay as well as AAC's priming; written before any frame (empty_moov alone),
        # the first picture of `render -o - --format mp4` came 80 ms in, behind the sound
        self.movflags = (("+frag_keyframe+empty_moov+default_base_moof+delay_moov" if fragmented else "+faststart")
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
        # fd with a target "pipe:N" (N = fd): ffmpeg writes that descriptor as it is, never opening it
        dest = self.target if self.fd is None or self.target.startswith("pipe:") else f"/dev/fd/{self.fd}"
        self._dest = dest
        publish = self.fmt == "flv" and self.target.startswith(("rtmp://", "rtmps://"))
        cmd = build_encode_command(dest, self.fmt, self.width, self.height, self.fps, r, self.enc,
                                   movflags=self.movflags, pix_fmt=self.pix_fmt, flush_s=self.flush_s,
                                   log_level="level+verbose" if publish else "error",
                                   audio_rate=self.audio_rate, audio_channels=self.audio_channels,
                                   audio_out=self.audio_out)
        log.debug("encoder: %s", redact_text(" ".join(cmd), self._secrets))
        try:
            # Ctrl+C inside Popen would leave a child that abort() cannot see (interrupts)
            with interrupts_held():
                self._proc = subprocess.Popen(
                    # target pipe:1 streams to our own stdout (`render -o -`): the child writes it directly
                    cmd, stdin=subprocess.PIPE, stdout=None if self.target == "pipe:1" else subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    pass_fds=(r,) if self.fd is None else (r, self.fd), start_new_session=True, bufsize=0,
                    env=encoder_env(self.enc),
                )
                self._audio_w = w
        except BaseException:
            if self._audio_w is None:
                os.close(w)
            raise
        finally:
            os.close(r)
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
            watch = threading.Thread(target=self._watch_wedged, args=(proc,), name="dhlive-encode-watch", daemon=True)
            watch.start()
            # published once started: close() on another thread joined it in between ("cannot join
            # thread before it is started", a render to /dev/full under load)
            self._watch = watch

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
        if self.label != self._dest:  # our descriptor's name, a stream key: what the user knows it by instead
            why = why.replace(self._dest, self.label)
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
        # ffmpeg exits 0 when only its trailer failed ("Error writing trailer of ...: No space
        # left on device"): the file is cut short (an mp4 without its index plays nowhere), and
        # was reported written
        if self._no_space():
            raise OutputError(f"{self.label}: no space left on device")
        trailer = next((ln for ln in (self._stderr.lines if self._stderr else []) if "Error writing trailer" in ln), None)
        if trailer is not None:
            raise EngineError(f"encoder failed: {redact_text(trailer, self._secrets)}")

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
