"""Video in and out for video avatars (still photos are read by stills.py).

- ``fit_within``: the size a picture is stored at (--size).
- ``VideoFrames``: an input video's frames, in order, resampled to the avatar frame rate
  (OpenCV's bundled FFmpeg; orientation metadata applied).
- ``FrameEncoder``: raw BGR frames to H.264 through an ffmpeg child (frames on stdin).
- ``LoopDecoder``: an avatar's loop video decoded by an ffmpeg child, already scaled and placed
  at the output size, read one frame ahead by a thread into a pair of reused buffers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import subprocess
import threading
from pathlib import Path

import numpy as np

from dhlive_cli.errors import EngineError, InputError, OutputError
from dhlive_cli.ffmpeg_bin import StderrTail, ffmpeg_path, file_arg
from dhlive_cli.queues import BoundedQueue, Cancelled

log = logging.getLogger(__name__)

_F_SETPIPE_SZ = 1031

def fit_within(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The size to scale (width, height) to so it fits in box (either orientation), never up."""
    bw, bh = max(box), min(box)
    s = min(1.0, bw / max(width, height), bh / min(width, height))
    w, h = max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)
    return w, h


class VideoFrames:
    """Frames of an input video, resampled to `fps` by picking the nearest source frame."""

    def __init__(self, path: Path, fps: int, max_seconds: float):
        import cv2

        # OpenCV's FFmpeg would print demuxer errors on stderr; we raise one line instead.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self.path = path
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            cap = cv2.VideoCapture(file_arg(path), cv2.CAP_FFMPEG)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not cap.isOpened():
            from dhlive_cli.avatar.integrity import cut_before_its_index, stream_kinds

            why = cut_before_its_index(path)
            if why:
                raise InputError(f"{path}: the video is damaged or cut short ({why})")
            kinds = stream_kinds(path)
            if kinds and "audio" in kinds and "video" not in kinds:  # chapters, subtitles, fonts beside it
                raise InputError(f"{path}: holds sound but no picture: give a photo or a video of the face")
            raise InputError(f"{path}: not an image or a video that can be decoded (corrupt or unsupported file)")
        self._cap = cap
        src_fps = cap.get(cv2.CAP_PROP_FPS)
        if not (src_fps and math.isfinite(src_fps) and 1.0 <= src_fps <= 240.0):
            src_fps = float(fps)
        self.src_fps = float(src_fps)
        self.fps = int(fps)
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.src_frames_hint = int(n) if n and math.isfinite(n) and n > 0 else None
        self.max_frames = max(1, int(round(max_seconds * fps)))
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise InputError(f"{path}: no video frame could be decoded (corrupt or unsupported file)")
        self._next = first
        self.first = first.copy()  # the first frame, for checks made before iterating
        self._src_index = 0
        self._t_first = self._timestamp(0)
        self.height, self.width = first.shape[:2]

    @property
    def decoded(self) -> int:
        """Source frames decoded so far (iteration reads one frame ahead, so after it a file with
        a single picture says 1 however long that picture is shown)."""
        return self._src_index + 1

    @property
    def expected_frames(self) -> int | None:
        if self.src_frames_hint is None:
            return None
        return min(self.max_frames, int(self.src_frames_hint * self.fps / self.src_fps))

    def _timestamp(self, index: int) -> float:
        """Seconds of the frame just read, from its timestamp; index / fps where there is none."""
        import cv2

        ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if ms is None or not math.isfinite(ms) or (ms <= 0.0 and index > 0):
            return index / self.src_fps
        return ms / 1000.0

    def __iter__(self):
        """Yields (k, bgr) for output frames k = 0, 1, ...; a frame object may be reused.

        Output frame k shows the last source frame whose timestamp is at or before k / fps
        (half an output frame of tolerance), so a variable-frame-rate clip plays at its real
        speed throughout instead of at its average rate.
        """
        k = 0
        cur = self._next
        t0 = self._t_first
        nxt, t_next = None, None
        t_cur, step = 0.0, 1.0 / self.src_fps  # shown frame's time, and the last gap between frames
        half = 0.5 / self.fps
        while k < self.max_frames and cur is not None:
            t_k = k / self.fps
            while True:
                if nxt is None:
                    ok, frame = self._cap.read()
                    if not ok:
                        nxt = False
                        break
                    self._src_index += 1
                    nxt, t_next = frame, self._timestamp(self._src_index) - t0
                if nxt is False or t_next > t_k + half:
                    break
                if t_next > t_cur:
                    step = t_next - t_cur
                cur, t_cur, nxt = nxt, t_next, None
            if nxt is False and t_k >= t_cur + step - half:
                return  # past the last frame's display time (as long as the gap before it)
            yield k, cur
            k += 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FrameEncoder:
    """BGR frames on stdin of an ffmpeg child -> H.264 mp4 (a keyframe every `gop` frames)."""

    def __init__(self, path: Path, width: int, height: int, fps: int, *, crf: int = 17, preset: str = "medium",
                 gop: int = 25, pix_fmt: str = "yuv420p", tune: str | None = None):
        import ffmpeg

        self.path, self.width, self.height = path, width, height
        stream = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt="bgr24", s=f"{width}x{height}", framerate=fps)
        kwargs = {"vcodec": "libx264", "pix_fmt": pix_fmt, "crf": crf, "preset": preset, "g": gop,
                  "bf": 0, "format": "mp4", "movflags": "+faststart", "an": None}
        if tune:
            kwargs["tune"] = tune
        args = ffmpeg.compile(ffmpeg.output(stream, file_arg(path), **kwargs), cmd=ffmpeg_path(), overwrite_output=True)
        args = [args[0], "-hide_banner", "-loglevel", "error"] + args[1:]
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            raise OutputError(f"cannot start ffmpeg: {e}") from e
        self._stderr = StderrTail(self._proc.stderr, "dhlive-avatar-encoder-stderr")
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        if bgr.shape != (self.height, self.width, 3):
            raise ValueError(f"frame {bgr.shape} is not {self.height}x{self.width}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(bgr).data)
        except BrokenPipeError:
            why = self._stderr.last("ffmpeg stopped", wait=2.0)
            raise OutputError(f"{self.path}: encoder failed: {why}") from None
        self.frames += 1

    def close(self) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        rc = self._proc.wait()
        self._stderr.join()
        if rc != 0:
            raise OutputError(f"{self.path}: encoder failed: {self._stderr.last(f'ffmpeg exit {rc}')}")

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._stderr.join()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_frames_at(path: Path, start: int, count: int, fps: int, width: int, height: int) -> np.ndarray:
    """`count` frames of a (CFR, our own) video from frame `start`, as (count, H, W, 3)."""
    args = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{start / fps:.6f}", "-i", file_arg(path),
            "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    p = subprocess.run(args, capture_output=True)
    n = len(p.stdout) // (width * height * 3)
    if p.returncode != 0 or n < count:
        why = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EngineError(f"{path}: could not read back frames {start}..{start + count - 1}: "
                          f"{why[-1] if why else f'got {n}'}")
    return np.frombuffer(p.stdout, np.uint8, count * width * height * 3).reshape(count, height, width, 3)


class _FrameReader:
    """One ffmpeg child's raw frames, read ahead by a thread into a pair of reused buffers.

    The pipe holds at most 1 MB (Linux's limit for an unprivileged F_SETPIPE_SZ), less than one
    720p BGR frame (2.6 MB), so without a reader the child could not decode ahead at all: the
    drawing thread would wait for the rest of every frame. Here a thread ("dhlive-avatar-read")
    fills one buffer while the drawing thread uses the other (double buffering): `free` holds
    buffer indices to fill, `ready` the filled ones as (index, position) in file order, then END
    or an error line. Both queues block (nothing is dropped) and hold at most the two buffers, so
    the child is never more than one frame and a pipe ahead. The thread holds no reference to
    the LoopDecoder, so dropping the decoder (its drawing thread ended) still closes it.
    """

    END = "end"

    def __init__(self, proc: subprocess.Popen, views: list, start: int, frames: int, looping: bool, path: Path):
        self.proc = proc
        self.cancel = threading.Event()
        self.free: BoundedQueue[int] = BoundedQueue("avatar-free", len(views), "block", self.cancel)
        self.ready: BoundedQueue = BoundedQueue("avatar-ready", len(views) + 1, "block", self.cancel)
        self._views, self._start, self._n, self._looping, self._path = views, start, frames, looping, path
        for i in range(len(views)):
            self.free.put(i)
        self._thread = threading.Thread(target=self._run, name="dhlive-avatar-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd, pos = self.proc.stdout, self._start
        try:
            while True:
                i = self.free.get()
                view, got, need = self._views[i], 0, len(self._views[i])
                while got < need:
                    try:
                        n = fd.readinto(view[got:])
                    except (OSError, ValueError):  # closed under us by close()
                        n = 0
                    if not n:
                        if self.cancel.is_set():
                            return
                        err = ""
                        if self.proc.poll() is not None:
                            lines = self.proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
                            err = f": {lines[-1]}" if lines else ""
                        self.ready.put(f"{self._path}: avatar video ended early at frame {pos}{err}")
                        return
                    got += n
                self.ready.put((i, pos))
                pos += 1
                if pos >= self._n:
                    if not self._looping:  # a seeking child ends with the file
                        self.ready.put(self.END)
                        return
                    pos = 0
        except Cancelled:
            return

    def close(self) -> None:
        """Stop the thread and the child (idempotent); the buffers are free again afterwards."""
        self.cancel.set()
        p = self.proc
        if p.poll() is None:
            p.kill()
        self._thread.join(timeout=10.0)
        p.wait()
        for f in (p.stdout, p.stderr):
            with contextlib.suppress(OSError):
                f.close()


class LoopDecoder:
    """An avatar's loop video as frames at the output size, decoded ahead by an ffmpeg child.

    Positions are frame numbers in the file. Reading forward (the usual case: one frame per
    tick) streams from the child, which a reader thread keeps one frame ahead (_FrameReader);
    repeating a position costs nothing; a short jump forward is read through; anything else
    restarts the child at that position with an accurate seek. The child normally loops the
    file itself (-stream_loop), so wrapping around costs nothing. Two frame buffers of
    (height, width, 3) uint8 are allocated once and reused for the decoder's life.
    """

    MAX_SKIP = 12

    def __init__(self, path: Path, frames: int, fps: int, width: int, height: int, filters):
        self.path, self.n, self.fps = path, int(frames), int(fps)
        self.width, self.height = width, height
        self._filters = filters  # callable(ffmpeg stream) -> stream at (width, height)
        self._bufs = [np.zeros((height, width, 3), np.uint8) for _ in range(2)]
        self._views = [memoryview(b).cast("B") for b in self._bufs]
        self.frame = self._bufs[0]
        self._held: int | None = None  # buffer index of self.frame while it came from the reader
        self._reader: _FrameReader | None = None
        self._next = -1  # position the reader will deliver next
        self.pos = -1  # position held in self.frame
        self.restarts = 0

    def _spawn(self, pos: int) -> None:
        import ffmpeg

        self.close()
        if pos == 0:
            src = ffmpeg.input(file_arg(self.path), stream_loop=-1)
        else:
            # -stream_loop after a seek loops back to the seek point, not to 0: no loop here, a
            # fresh looping child is started from 0 when this one reaches the end
            src = ffmpeg.input(file_arg(self.path), ss=f"{pos / self.fps:.6f}")
        out = ffmpeg.output(self._filters(src.video), "pipe:1", format="rawvideo", pix_fmt="bgr24")
        args = ffmpeg.compile(out, cmd=ffmpeg_path())
        args = [args[0], "-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "2", "-filter_threads", "1"] + args[1:]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, bufsize=0)
        except OSError as e:
            raise EngineError(f"cannot start ffmpeg for the avatar video: {e}") from e
        try:
            fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, 1 << 20)
        except OSError:  # pragma: no cover - not Linux
            pass
        self._reader = _FrameReader(proc, self._views, pos, self.n, pos == 0, self.path)
        self._next = pos
        self.restarts += 1

    def read(self, pos: int) -> np.ndarray:
        """The frame at position pos (0 <= pos < frames): one of two reused (H, W, 3) uint8 BGR
        buffers, valid until the next read or close. Raises EngineError if the video fails."""
        pos = int(pos) % self.n
        if pos == self.pos:
            return self.frame
        if self._reader is None or not (0 <= (pos - self._next) % self.n <= self.MAX_SKIP):
            self._spawn(pos)
        while True:
            if self._reader is None:  # the seeking child reached the end: loop from the start
                self._spawn(0)
            r = self._reader
            try:
                item = r.ready.get()
            except Cancelled:  # closed by another thread (the avatar was closed while drawing)
                raise EngineError(f"{self.path}: the avatar video was closed while a frame was read") from None
            if item == _FrameReader.END:
                self.close()
                continue
            if isinstance(item, str):
                self.close()
                raise EngineError(item)
            i, p = item
            if self._held is not None:
                r.free.put(self._held)  # the reader fills it with the frame after next
            self._held, self.frame, self.pos, self._next = i, self._bufs[i], p, (p + 1) % self.n
            if p == pos:
                return self.frame

    def close(self) -> None:
        """Stop the reader thread and the ffmpeg child (idempotent; a later read restarts them)."""
        r, self._reader = self._reader, None
        if r is None:
            return
        r.close()
        self._held = None
        self.pos = self._next = -1

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()
