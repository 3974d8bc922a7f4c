"""Mouth track: turns per-frame model output into the mouth the avatar shows.

Per session and stateful across blocks, so a stream cut anywhere gives the same track. Two
rules on top of the model: an adaptive silence gate and one-pole smoothing that opens fast and
releases fast enough that the mouth is closed within 120 ms (3 frames) after speech stops.

The gate follows the input's level instead of a fixed dBFS threshold, so speech recorded at low
gain moves the lips as much as speech at full scale: a peak-hold of the frame level (dBFS, decaying
by `peak_release_db_per_s`) tracks how loud this source's speech is, and a frame more than
`gate_below_peak_db` under it, or under the absolute `gate_floor_dbfs`, is silence (the mouth
closes whatever the model says, so breath and hiss between words do not mumble). Whether sound
is a voice at all (music, noise) is the model's decision: lipsync-v2 is trained to keep the mouth
closed on voiceless audio at any level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLOSED_OPEN = 0.08  # opening below this counts as a closed mouth (tests and metrics use it)
REST_CLOSE = 0.8  # lips together but relaxed: the model's target at rest (1.0 is a pressed p/b/m)


@dataclass(frozen=True, slots=True)
class MouthTrackOptions:
    """Gate and smoothing settings. Levels are frame RMS in dBFS (40 ms frames, full scale = 1.0)."""

    gate_floor_dbfs: float = -75.0  # frames quieter than this are always silence
    gate_below_peak_db: float = 40.0  # ... and so are frames this far under the recent peak
    peak_release_db_per_s: float = 3.0  # how fast the peak-hold forgets a loud passage
    activity_dbfs: float = -50.0  # live's idle/talking state only (idle motion), not the mouth
    attack: float = 0.85  # share of the step toward a larger target taken per frame
    release: float = 0.6  # ... toward a smaller one: 0.4^3 = 6 % of an opening left after 3 frames
    shape_follow: float = 0.5  # spread/round/close follow more smoothly
    # While the model says the lips close (its `close` rising from `closing_from`, where the photo
    # avatar's lips meet, to `closing_full`, the lips-together rest value), the opening's release
    # speeds up from `release` to 1 (no smoothing): a p/b/m closure lasts 1-3 frames, and the
    # release that hides jitter elsewhere would keep the lips apart through it.
    closing_from: float = 0.5
    closing_full: float = 0.8


class MouthTrack:
    def __init__(self, options: MouthTrackOptions | None = None):
        self.o = options or MouthTrackOptions()
        self._floor = 10.0 ** (self.o.gate_floor_dbfs / 20.0)
        self._below = 10.0 ** (-self.o.gate_below_peak_db / 20.0)
        self._decay = 10.0 ** (-self.o.peak_release_db_per_s / 20.0 / 25.0)  # per 40 ms frame
        # start at rest (closed, relaxed lips), not at zeros: silence must show rest from frame 0
        self._state = np.array([0.0, 0.0, 0.0, REST_CLOSE], dtype=np.float32)
        self._peak = 0.0  # peak-hold of frame RMS (linear)

    def reset(self) -> None:
        self._state[:] = (0.0, 0.0, 0.0, REST_CLOSE)
        self._peak = 0.0

    def apply(self, raw: np.ndarray, rms: np.ndarray, out: np.ndarray) -> None:
        """raw (n, 4) float32 model output in [0, 1], rms (n,) float32 frame RMS (full scale 1.0)
        -> out (n, 4) float32 smoothed, gated track (open, spread, round, close)."""
        s = self._state
        o = self.o
        floor, below, decay = self._floor, self._below, self._decay
        peak = self._peak
        c0, c_span = o.closing_from, max(o.closing_full - o.closing_from, 1e-6)
        for i in range(raw.shape[0]):
            r = float(rms[i])
            peak = r if r > peak else peak * decay
            silent = r < floor or r < peak * below
            target_open = 0.0 if silent else float(raw[i, 0])
            if target_open > s[0]:
                a = o.attack
            else:  # also under the gate: the model's closure shuts the lips at once there too
                a = o.release + (1.0 - o.release) * min(1.0, max(0.0, (float(raw[i, 3]) - c0) / c_span))
            s[0] += a * (target_open - s[0])
            k = o.shape_follow
            s[1] += k * ((0.0 if silent else float(raw[i, 1])) - s[1])
            s[2] += k * ((0.0 if silent else float(raw[i, 2])) - s[2])
            s[3] += k * ((REST_CLOSE if silent else float(raw[i, 3])) - s[3])
            out[i] = s
        self._peak = peak


def frame_rms(audio: np.ndarray, n_frames: int, samples_per_frame: int, out: np.ndarray) -> None:
    """RMS of each of the n_frames frames of audio into out[:n_frames] (no allocation)."""
    frames = audio[: n_frames * samples_per_frame].reshape(n_frames, samples_per_frame)
    np.einsum("ij,ij->i", frames, frames, out=out[:n_frames])
    out[:n_frames] /= samples_per_frame
    np.sqrt(out[:n_frames], out=out[:n_frames])


def dbfs(x: float) -> float:
    return 20.0 * math.log10(max(x, 1e-10))
