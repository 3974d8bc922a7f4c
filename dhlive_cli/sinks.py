"""Sinks: where finished frames and their audio go.

FfmpegSink runs one ffmpeg child fed raw BGR frames on stdin and float32 PCM on a second pipe,
so the audio written is exactly the samples the engine clocked. NullSink counts and discards
(benchmarks). A sink is a context manager; close() flushes and waits so the file is valid,
abort() kills the child at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
from dataclasses import dataclass

import numpy as np

from dhlive_cli.errors import EngineError, OutputError
from dhlive_cli.ffmpeg_bin import StderrTail, ffmpeg_path
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)

_F_SETPIPE_SZ = 1031  # Linux: grow a pipe so the audio can run ahead of the video freely


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    preset: str = "veryfast"  # x264 speed/size trade-off
    crf: int = 23
    threads: int = 0  # 0 = x264 picks
    audio_bitrate: str = "128k"
    gop_seconds: float = 2.0  # keyframe interval; live needs <= 2 s so late joiners start fast


def build_encode_command(target: str, fmt: str, width: int, height: int, fps: int, audio_fd: int,
                         enc: EncoderOptions, faststart: bool) -> list[str]:
    import ffmpeg  # ffmpeg-python: only builds the argument list; we own the process

    video = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt="bgr24", s=f"{width}x{height}",
                         framerate=fps, thread_queue_size=64, probesize=32, analyzeduration=0)
    # Raw inputs need no probing; without these limits ffmpeg reads seconds of audio before it
    # takes the first frame, while we wait to write that frame: a deadlock.
    audio = ffmpeg.input(f"pipe:{audio_fd}", format="f32le", ar=SAMPLE_RATE, ac=1, thread_queue_size=64,
                         probesize=32, analyzeduration=0)
    out_kwargs = {
        "vcodec": "libx264", "pix_fmt": "yuv420p", "preset": enc.preset, "crf": enc.crf,
        "g": max(1, int(round(enc.gop_seconds * fps))), "threads": enc.threads,
        "acodec": "aac", "audio_bitrate": enc.audio_bitrate, "ar": 48000 if fmt == "flv" else SAMPLE_RATE,
        "format": fmt,
    }
    if faststart:
        out_kwargs["movflags"] = "+faststart"
    stream = ffmpeg.output(video, audio, target, **out_kwargs)
    args = ffmpeg.compile(stream, cmd=ffmpeg_path(), overwrite_output=True)
    # -nostdin would close our video pipe; quiet logging keeps stderr small and useful
    return [args[0], "-hide_banner", "-loglevel", "error"] + args[1:]


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

    write() sends a frame's audio first, then its picture, so ffmpeg never waits for audio it
    needs to interleave the video it already holds.
    """

    def __init__(self, target: str, width: int, height: int, fps: int, enc: EncoderOptions | None = None,
                 fmt: str = "mp4"):
        self.target, self.width, self.height, self.fps = target, width, height, fps
        self.enc = enc or EncoderOptions()
        self.fmt = fmt
        self._proc: subprocess.Popen | None = None
        self._audio_w: int | None = None
        self._stderr: StderrTail | None = None
        self.frames = 0
        self.samples = 0

    @property
    def pids(self) -> list[int]:
        return [self._proc.pid] if self._proc is not None else []

    def open(self) -> "FfmpegSink":
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, 1 << 20)
        except OSError:  # pragma: no cover - not Linux, or over /proc/sys/fs/pipe-max-size
            pass
        cmd = build_encode_command(self.target, self.fmt, self.width, self.height, self.fps, r, self.enc,
                                   faststart=self.fmt == "mp4")
        log.debug("encoder: %s", " ".join(cmd))
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(r,), start_new_session=True, bufsize=0,
            )
        finally:
            os.close(r)
        self._audio_w = w
        try:
            fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, 1 << 22)
        except OSError:  # pragma: no cover
            pass
        self._stderr = StderrTail(self._proc.stderr, "dhlive-encode-err")
        return self

    def _why(self) -> str:
        return self._stderr.last("ffmpeg exited") if self._stderr else "ffmpeg exited"

    def _fail(self, exc: BaseException) -> None:
        rc = self._proc.poll() if self._proc else None
        why = self._why()
        if "No space left" in why or getattr(exc, "errno", None) == 28:
            raise OutputError(f"{self.target}: no space left on device") from exc
        if rc is not None and rc < 0:
            raise EngineError(f"encoder ffmpeg was killed by signal {-rc}") from exc
        raise EngineError(f"encoder failed: {why}") from exc

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        if self._proc is None or self._audio_w is None:
            raise EngineError("encoder is closed")
        try:
            if audio.shape[0]:
                mv = memoryview(audio).cast("B")
                while mv:
                    n = os.write(self._audio_w, mv)
                    mv = mv[n:]
            self._proc.stdin.write(memoryview(frame).cast("B"))
        except (BrokenPipeError, OSError) as e:
            self._fail(e)
        self.frames += 1
        self.samples += audio.shape[0]

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
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -9
        self._proc = None
        why = self._why()
        if proc.stderr:
            proc.stderr.close()
        if rc != 0:
            if "No space left" in why:
                raise OutputError(f"{self.target}: no space left on device")
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
