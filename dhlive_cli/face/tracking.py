"""Landmarks for every frame of a video, with jitter smoothing.

Like MediaPipe's face_landmark_front graph: the detector runs on the first frame (and whenever
tracking is lost); afterwards each frame's region comes from the previous frame's landmarks,
which is both cheaper and steadier than detecting again. The region is always built from the
raw landmarks; only the returned copy is smoothed, so smoothing lag cannot make the crop drift.

Smoothing is a one-euro filter (Casiez, Roussel, Vogel, CHI 2012) per coordinate: a low-pass
whose cutoff rises with the speed of the point, so a still face stops trembling while a moving
head or a speaking mouth is followed without visible lag. Speeds are measured in face sizes per
second (the landmarks' bounding-box long side), which makes the same parameters work for a
small face in a wide shot and for a close-up.
"""

from __future__ import annotations

import math

import numpy as np

from dhlive_cli.face.detection import FaceDetector
from dhlive_cli.face.mesh import FaceMesh

# Presence below this means the crop no longer holds a face (MediaPipe uses 0.5 too).
MIN_PRESENCE = 0.5


class OneEuroFilter:
    """One-euro low-pass over an array of values sampled at a fixed rate.

    min_cutoff (Hz) sets how much a still point is smoothed (lower: steadier, more lag when it
    starts moving); beta sets how fast the cutoff rises with speed (in face sizes per second);
    d_cutoff (Hz) smooths the speed estimate itself.
    """

    def __init__(self, rate_hz: float, *, min_cutoff: float = 1.0, beta: float = 20.0, d_cutoff: float = 1.0):
        if rate_hz <= 0:
            raise ValueError(f"rate must be positive, not {rate_hz}")
        self.dt = 1.0 / rate_hz
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def reset(self) -> None:
        self._value = self._speed = None

    def __call__(self, value: np.ndarray, scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, np.float64)
        if self._value is None:
            self._value, self._speed = value.copy(), np.zeros_like(value)
            return value.copy()
        raw_speed = (value - self._value) / self.dt
        self._speed += self._alpha(self.d_cutoff) * (raw_speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed) / max(scale, 1e-6)
        self._value += self._alpha(cutoff) * (value - self._value)
        return self._value.copy()


class FaceTracker:
    """Landmarks per frame of a video: detection on the first frame (or when tracking is lost),
    then the region from the previous frame's landmarks; one-euro smoothing of the output.

    Call `update` once per frame, in order, at the `fps` given; `reset` before an unrelated clip.
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        mesh: FaceMesh | None = None,
        *,
        smooth: bool = True,
        fps: float = 25.0,
        min_cutoff: float = 1.0,
        beta: float = 20.0,
    ):
        self.detector = detector if detector is not None else FaceDetector()
        self.mesh = mesh if mesh is not None else FaceMesh()
        self.smooth = smooth
        self._filter = OneEuroFilter(fps, min_cutoff=min_cutoff, beta=beta)
        self._raw: np.ndarray | None = None  # last unsmoothed landmarks: the next frame's region
        self.presence = 0.0  # presence score of the last frame's landmarks
        self.detections = 0  # how often the detector ran (tracking restarts + 1)

    def reset(self) -> None:
        self._raw = None
        self._filter.reset()
        self.presence = 0.0

    def _from_detector(self, bgr: np.ndarray):
        self.detections += 1
        faces = self.detector.detect(bgr)
        if not faces:
            return None, 0.0
        landmarks, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_detection(faces[0], bgr.shape))
        if presence < MIN_PRESENCE:
            return landmarks, presence
        # The detector's box frames the face differently from the landmarks' box, and the mesh
        # answers a few px differently in the two crops; one more pass in the tracking crop
        # makes the first frame agree with the ones tracked after it (no jump at frame 2).
        return self.mesh.landmarks(bgr, self.mesh.roi_from_landmarks(landmarks, bgr.shape))

    def update(self, bgr: np.ndarray) -> np.ndarray | None:
        """(468, 3) landmarks of this frame (smoothed if asked), or None when no face is found."""
        landmarks, presence = None, 0.0
        if self._raw is not None:
            landmarks, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_landmarks(self._raw, bgr.shape))
        if presence < MIN_PRESENCE:
            was_tracking = self._raw is not None
            landmarks, presence = self._from_detector(bgr)
            if was_tracking:
                # The face jumped or was lost for a moment: smoothing across that would drag
                # the landmarks through the gap.
                self._filter.reset()
        if landmarks is None or presence < MIN_PRESENCE:
            self.reset()
            return None
        self._raw, self.presence = landmarks, presence
        if not self.smooth:
            return landmarks.copy()
        xy = landmarks[:, :2]
        face_size = float(np.max(xy.max(axis=0) - xy.min(axis=0)))
        return self._filter(landmarks, face_size).astype(np.float32)
