"""Mouth track: turns per-frame model output into the mouth the avatar shows.

Per session and stateful across blocks, so a stream cut anywhere gives the same track. Two
rules on top of the model: a silence gate (frame RMS below the gate closes the mouth whatever
the model says, so breath noise does not mumble) and one-pole smoothing that opens fast and
releases fast enough that the mouth is closed within 120 ms (3 frames) after speech stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLOSED_OPEN = 0.08  # opening below this counts as a closed mouth (tests and metrics use it)
REST_CLOSE = 0.8  # lips together but relaxed: the model's target at rest (1.0 is a pressed p/b/m)


@dataclass(frozen=True, slots=True)
class MouthTrackOptions:
    gate_dbfs: float = -50.0  # frames quieter than this are silence
    attack: float = 0.85  # share of the step toward a larger target taken per frame
    release: float = 0.6  # ... toward a smaller one: 0.4^3 = 6 % of an opening left after 3 frames
    shape_follow: float = 0.5  # spread/round/close follow more smoothly


class MouthTrack:
    def __init__(self, options: MouthTrackOptions | None = None):
        self.o = options or MouthTrackOptions()
        self._gate = 10.0 ** (self.o.gate_dbfs / 20.0)
        # start at rest (closed, relaxed lips), not at zeros: silence must show rest from frame 0
        self._state = np.array([0.0, 0.0, 0.0, REST_CLOSE], dtype=np.float32)

    def reset(self) -> None:
        self._state[:] = (0.0, 0.0, 0.0, REST_CLOSE)

    def apply(self, raw: np.ndarray, rms: np.ndarray, out: np.ndarray) -> None:
        """raw (n, 4) model output, rms (n,) frame RMS -> out (n, 4) smoothed, gated track."""
        s = self._state
        o = self.o
        gate = self._gate
        for i in range(raw.shape[0]):
            silent = rms[i] < gate
            target_open = 0.0 if silent else float(raw[i, 0])
            a = o.attack if target_open > s[0] else o.release
            s[0] += a * (target_open - s[0])
            k = o.shape_follow
            s[1] += k * ((0.0 if silent else float(raw[i, 1])) - s[1])
            s[2] += k * ((0.0 if silent else float(raw[i, 2])) - s[2])
            s[3] += k * ((REST_CLOSE if silent else float(raw[i, 3])) - s[3])
            out[i] = s


def frame_rms(audio: np.ndarray, n_frames: int, samples_per_frame: int, out: np.ndarray) -> None:
    """RMS of each of the n_frames frames of audio into out[:n_frames] (no allocation)."""
    frames = audio[: n_frames * samples_per_frame].reshape(n_frames, samples_per_frame)
    np.einsum("ij,ij->i", frames, frames, out=out[:n_frames])
    out[:n_frames] /= samples_per_frame
    np.sqrt(out[:n_frames], out=out[:n_frames])


def dbfs(x: float) -> float:
    return 20.0 * math.log10(max(x, 1e-10))
