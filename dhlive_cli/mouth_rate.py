"""The mouth track at the video's frame rate: resampled from the model's 25 Hz track.

The model gives one row (open, spread, round, close) per 40 ms model frame; model frame j stands
for the interval [j, j + 1) x 40 ms. Video frame k at F fps stands for [k, k + 1) / F seconds.

- F >= 25 (upsampling): linear interpolation between the two model frames whose centres
  bracket the centre of video frame k, i.e. at model position x = (k + 1/2) * 25 / F - 1/2.
  Nothing is lost, and at 25 fps x = k exactly (the track passes through unchanged).
- F < 25 (downsampling): the mean of the model frames over the video frame's interval, each
  weighted by how much of its 40 ms falls inside (a box filter, like a camera whose shutter is
  open the whole frame). Point samples would alias: at 1 fps they would show whatever 40 ms
  happened to fall on the frame's centre.

Positions are exact rationals (integers over 2F, or over F), so a track of any length maps
without drift. Frames before the first model frame's centre hold the first row, frames after
the last one hold the last row.
"""

from __future__ import annotations

import numpy as np

from dhlive_cli.timebase import MODEL_FPS, check_fps


def frame_weights(k: int, fps: int) -> list[tuple[int, float]]:
    """Model frames and weights (summing to 1) that make video frame k at fps.

    Indices may be < 0 or past the end of a track; callers clamp them (hold the end row)."""
    if fps >= MODEL_FPS:
        num = (2 * k + 1) * MODEL_FPS - fps  # x = num / (2 fps), in model frames
        den = 2 * fps
        j0, rem = divmod(num, den)
        if rem == 0:
            return [(j0, 1.0)]
        w = rem / den
        return [(j0, 1.0 - w), (j0 + 1, w)]
    a, b = k * MODEL_FPS, (k + 1) * MODEL_FPS  # the frame's interval, in model frames x fps
    out = []
    for j in range(a // fps, -(-b // fps)):
        lo, hi = max(j * fps, a), min((j + 1) * fps, b)
        if hi > lo:
            out.append((j, (hi - lo) / MODEL_FPS))
    return out


def last_model_frame(k: int, fps: int) -> int:
    """The newest model frame video frame k needs (so a stream knows when it may emit k)."""
    return frame_weights(k, fps)[-1][0]


def resample_track(track: np.ndarray, fps: int, n_frames: int | None = None) -> np.ndarray:
    """A whole (M, C) float32 track at 25 Hz -> (n_frames, C) at fps (default: frames that span
    the same M x 40 ms). Raises ValueError for an fps outside 1..60 or an empty track."""
    check_fps(fps)
    if track.shape[0] == 0:
        raise ValueError("empty track")
    if n_frames is None:
        n_frames = -(-track.shape[0] * fps // MODEL_FPS)
    r = MouthResampler(fps, max_push_rows=track.shape[0])
    r.push(track)
    r.finish(n_frames)
    out = np.zeros((n_frames, track.shape[1]), dtype=np.float32)
    got = r.take(out)
    assert got == n_frames
    return out


class MouthResampler:
    """Streaming twin of resample_track: push() model rows as they come, take() the video rows
    whose model frames have all arrived, finish(n_frames) once the video's length is known.

    It keeps only the model rows future video frames still need: max_push_rows + 25 / fps + 3 rows
    of `channels` float32 when frames are taken as they become ready. When the caller cannot take
    frames for a while (render waits for the program audio, the decoder's other output, which
    may lag the 16 kHz output by what the pipes between them hold) the buffer doubles instead of
    failing; that lag is bounded by the pipe sizes, so the growth is too."""

    def __init__(self, fps: int, max_push_rows: int, channels: int = 4):
        self.fps = check_fps(fps)
        cap = max_push_rows + -(-MODEL_FPS // fps) + 3
        self._hist = np.zeros((cap, channels), dtype=np.float32)
        self._base = 0  # model frame index of _hist[0]
        self._n = 0  # rows held
        self.rows_pushed = 0
        self.frames_done = 0
        self.n_frames: int | None = None  # the video's length, once finish() said it

    def reset(self) -> None:
        self._base = self._n = self.rows_pushed = self.frames_done = 0
        self.n_frames = None

    def push(self, rows: np.ndarray) -> None:
        """Append model rows (n, channels) in order."""
        n = rows.shape[0]
        if self._n + n > self._hist.shape[0]:
            grown = np.zeros((max(2 * self._hist.shape[0], self._n + n), self._hist.shape[1]), dtype=np.float32)
            grown[: self._n] = self._hist[: self._n]
            self._hist = grown
        self._hist[self._n : self._n + n] = rows
        self._n += n
        self.rows_pushed += n

    def finish(self, n_frames: int) -> None:
        """No more model rows: the video has n_frames frames; the last ones hold the last row."""
        self.n_frames = n_frames

    def ready(self) -> int:
        """Video frames take() would give now."""
        k = self.frames_done
        n = 0
        while self._can_make(k + n):
            n += 1
        return n

    def _can_make(self, k: int) -> bool:
        if self.n_frames is not None:
            return k < self.n_frames and self.rows_pushed > 0
        return last_model_frame(k, self.fps) < self.rows_pushed

    def take(self, out: np.ndarray, limit: int | None = None) -> int:
        """Rows of the next ready video frames into out (at most len(out), and limit); returns n."""
        cap = out.shape[0] if limit is None else min(limit, out.shape[0])
        hist, base, last = self._hist, self._base, self.rows_pushed - 1
        n = 0
        while n < cap and self._can_make(self.frames_done + n):
            k = self.frames_done + n
            row = out[n]
            row[:] = 0.0
            for j, w in frame_weights(k, self.fps):
                j = 0 if j < 0 else last if j > last else j
                row += w * hist[j - base]
            n += 1
        self.frames_done += n
        self._compact()
        return n

    def _compact(self) -> None:
        first = frame_weights(self.frames_done, self.fps)[0][0]
        first = min(max(first, 0), max(self.rows_pushed - 1, 0))  # the last row is held to the end
        drop = first - self._base
        if drop > 0:
            keep = self._n - drop
            self._hist[:keep] = self._hist[drop : self._n]
            self._n = keep
            self._base = first
