"""Audio -> mouth track for one session: log-mel, model windows, inference, smoothing.

The one analysis path shared by render, lipsync and live. It runs at the model's own rate
whatever the video's: a frame here is a model frame (MODEL_FRAME = 640 samples at 16 kHz,
40 ms). push() takes whole model frames of audio; take() returns the smoothed mouth of every
model frame whose look-ahead has arrived, in order (mouth_rate resamples it to the video fps).
All buffers are sized once from the largest push.
"""

from __future__ import annotations

import numpy as np

from dhlive_cli.features import LogMelStream, WindowAssembler
from dhlive_cli.inference import InferencePool
from dhlive_cli.mouth import MouthTrack, MouthTrackOptions, frame_rms
from dhlive_cli.timebase import MODEL_FRAME, MODEL_HOPS


class MouthAnalyzer:
    """pool: the shared model; max_push_frames: the most model frames one push() carries."""

    def __init__(self, pool: InferencePool, max_push_frames: int, track: MouthTrackOptions | None = None):
        self.pool = pool
        hpf = MODEL_HOPS
        self.max_push_frames = max_push_frames
        self._mel = LogMelStream(max_hops=max_push_frames * hpf)
        self._mel_out = np.zeros((max_push_frames * hpf, self._mel.n_mels), dtype=np.float32)
        lag = -(-pool.ahead // hpf)  # frames that wait for look-ahead
        cap = max_push_frames + lag + 1
        self._asm = WindowAssembler(pool.past, pool.ahead, max_frames=cap, hops_per_frame=hpf)
        self._windows = np.zeros((cap, pool.window, self._mel.n_mels), dtype=np.float32)
        self._raw = np.zeros((cap, 4), dtype=np.float32)
        self._rms = np.zeros(2 * cap, dtype=np.float32)  # rms of frames pushed but not yet taken
        self._rms_n = 0
        self.track = MouthTrack(track)
        self.frames_pushed = 0
        self.frames_done = 0

    def reset(self) -> None:
        self._mel.reset()
        self._asm.reset()
        self.track.reset()
        self._rms_n = 0
        self.frames_pushed = self.frames_done = 0

    def push(self, audio: np.ndarray, n_frames: int) -> None:
        """audio (float32, 16 kHz mono) holds n_frames whole model frames of 640 samples (the
        caller pads the last partial one with zeros)."""
        spf = MODEL_FRAME
        if n_frames > self.max_push_frames:
            raise ValueError(f"push of {n_frames} frames, at most {self.max_push_frames}")
        if self._rms_n + n_frames > self._rms.shape[0]:
            raise ValueError("take() the ready frames before pushing more")
        frame_rms(audio, n_frames, spf, self._rms[self._rms_n :])
        self._rms_n += n_frames
        hops = self._mel.push(audio[: n_frames * spf], self._mel_out)
        self._asm.feed(self._mel_out[:hops])
        self.frames_pushed += n_frames

    def finish(self) -> None:
        """End of stream: the last frames' look-ahead is silence."""
        self._asm.finish()

    def ready(self) -> int:
        return self._asm.ready()

    def take(self, out: np.ndarray) -> int:
        """Smoothed mouth (n, 4) of the next ready frames into out; returns n (0 if none)."""
        n = self.collect(self._windows[: min(out.shape[0], self._windows.shape[0])])
        if n == 0:
            return 0
        self.pool.infer(self._windows[:n], self._raw[:n])
        self.apply(self._raw, n, out)
        return n

    # Live splits take() in two so that one caller can batch the windows of many sessions into
    # one inference call: collect() -> (caller infers every session's windows at once) -> apply().
    def collect(self, windows: np.ndarray) -> int:
        """Model windows of the next ready frames (at most len(windows)); returns how many."""
        return self._asm.take(windows, limit=windows.shape[0])

    def apply(self, raw: np.ndarray, n: int, out: np.ndarray) -> None:
        """raw model output of the n frames collect() returned -> smoothed mouth rows in out."""
        self.track.apply(raw[:n], self._rms[:n], out[:n])
        # drop the taken frames' rms (a few floats: cheap to move)
        self._rms[: self._rms_n - n] = self._rms[n : self._rms_n]
        self._rms_n -= n
        self.frames_done += n


def whole_track(pool: InferencePool, audio: np.ndarray, block: int = 25) -> np.ndarray:
    """The smoothed mouth track (ceil(len / 640), 4) float32 of a whole signal (float32, 16 kHz
    mono; the last partial model frame padded with zeros), pushed `block` model frames at a time
    as a stream is (`dhlive lipsync` pushes 25), then finished: the track the commands give for
    that audio. For evaluation and tests; the commands stream from their sources."""
    n = -(-audio.shape[0] // MODEL_FRAME)
    x = np.zeros(n * MODEL_FRAME, np.float32)
    x[: audio.shape[0]] = audio
    an = MouthAnalyzer(pool, max_push_frames=block)
    buf = np.zeros((an._windows.shape[0], 4), np.float32)
    rows = []
    for s in range(0, n, block):
        k = min(block, n - s)
        an.push(x[s * MODEL_FRAME : (s + k) * MODEL_FRAME], k)
        while (got := an.take(buf)) > 0:
            rows.append(buf[:got].copy())
    an.finish()
    while (got := an.take(buf)) > 0:
        rows.append(buf[:got].copy())
    return np.concatenate(rows) if rows else np.zeros((0, 4), np.float32)
