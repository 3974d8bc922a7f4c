"""Face mesh: MediaPipe's 468-landmark model (192x192 crop), run on onnxruntime.

The crop follows MediaPipe's face_landmark graphs: a square region of interest, rotated so the
eye line is horizontal, 1.5 times the size of the face box, warped bilinearly to 192x192 with
the region's corners on the tensor's corners, RGB in [0, 1], border pixels replicated. The model
gives 468 (x, y, z) in crop pixels and a face-presence logit; the landmarks go back to the image
through the inverse of the same transform (z is scaled like x).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from dhlive_cli.errors import InputError
from dhlive_cli.face._runtime import MESH_FILE, model_path, open_session
from dhlive_cli.face.detection import FaceDetection, check_bgr
from dhlive_cli.face.landmarks import LEFT_EYE_OUTER, N_LANDMARKS, RIGHT_EYE_OUTER

INPUT_SIZE = 192
ROI_SCALE = 1.5
SCORE_CLIP = 100.0  # as for the detector scores: keeps exp() finite


@dataclass(slots=True)
class FaceRoi:
    """The square, rotated image region the mesh model looks at."""

    center: tuple[float, float]  # px
    size: float  # side of the square in px
    rotation: float  # radians, clockwise in the image (y down); the angle that levels the eyes

    def crop_to_image(self, crop_size: int = INPUT_SIZE) -> np.ndarray:
        """2x3 affine taking crop pixel coordinates (0..crop_size across the square) to image px."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = self.size / crop_size
        cx, cy = self.center
        # image = centre + R(rotation) @ ((u, v) * k - size / 2)
        return np.array(
            [
                [c * k, -s * k, cx - (c - s) * self.size / 2.0],
                [s * k, c * k, cy - (s + c) * self.size / 2.0],
            ]
        )

    def image_to_crop(self, crop_size: int = INPUT_SIZE) -> np.ndarray:
        return cv2.invertAffineTransform(self.crop_to_image(crop_size))


def _normalize_radians(angle: float) -> float:
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def roi_from_box(box, eye_start, eye_end, scale: float = ROI_SCALE) -> FaceRoi:
    """MediaPipe's DetectionsToRects + RectTransformation: the box centre, its long side times
    `scale`, and the rotation that makes the vector eye_start -> eye_end point right (target 0)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = float(eye_end[0] - eye_start[0]), float(eye_end[1] - eye_start[1])
    rotation = _normalize_radians(-math.atan2(-dy, dx))
    size = max(x1 - x0, y1 - y0) * scale
    return FaceRoi(center=((x0 + x1) / 2.0, (y0 + y1) / 2.0), size=size, rotation=rotation)


class FaceMesh:
    """468 face landmarks inside a region of interest. One session; not thread-safe."""

    def __init__(self, models_dir: str | os.PathLike | None = None, *, threads: int = 1):
        self._session = open_session(model_path(models_dir, MESH_FILE), threads=threads)
        self._input_name = self._session.get_inputs()[0].name
        # Outputs told apart by size: 1404 landmark values vs one presence logit.
        outs = {int(np.prod(o.shape)): o.name for o in self._session.get_outputs()}
        self._landmarks_name, self._presence_name = outs[N_LANDMARKS * 3], outs[1]
        # One input buffer reused by every call: no per-frame allocation (hence not thread-safe).
        self._tensor = np.empty((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)

    # image_shape is part of the interface (MediaPipe works in coordinates normalised by it);
    # in pixels the region does not depend on it.
    def roi_from_detection(self, det: FaceDetection, image_shape) -> FaceRoi:
        """Region from a detection: box x1.5, eyes (keypoints 0 -> 1) levelled."""
        return roi_from_box(det.box, det.keypoints[0], det.keypoints[1])

    def roi_from_landmarks(self, landmarks: np.ndarray, image_shape) -> FaceRoi:
        """Region for the next frame from this frame's landmarks: their bounding box x1.5,
        outer eye corners 33 -> 263 levelled (MediaPipe's tracking ROI)."""
        xy = np.asarray(landmarks)[:, :2]
        box = (*xy.min(axis=0), *xy.max(axis=0))
        return roi_from_box(box, xy[RIGHT_EYE_OUTER], xy[LEFT_EYE_OUTER])

    def crop(self, bgr: np.ndarray, roi: FaceRoi) -> np.ndarray:
        """The model's input tensor (1, 192, 192, 3) RGB in [0, 1] for this region."""
        check_bgr(bgr)
        if not (roi.size > 1.0 and math.isfinite(roi.size)):
            raise InputError(f"face region too small: {roi.size:.1f} px")
        patch = cv2.warpAffine(
            bgr, roi.image_to_crop(), (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        np.multiply(patch[:, :, ::-1], 1.0 / 255.0, out=self._tensor[0], casting="unsafe")
        return self._tensor

    def landmarks(self, bgr: np.ndarray, roi: FaceRoi) -> tuple[np.ndarray, float]:
        """(468, 3) float32 landmarks (x, y in image px, z in the same px scale, smaller is
        nearer the camera) and the face presence score in [0, 1]."""
        tensor = self.crop(bgr, roi)
        raw, logit = self._session.run([self._landmarks_name, self._presence_name], {self._input_name: tensor})
        raw = raw.reshape(N_LANDMARKS, 3).astype(np.float64)
        to_image = roi.crop_to_image()
        out = np.empty((N_LANDMARKS, 3), np.float32)
        out[:, :2] = raw[:, :2] @ to_image[:, :2].T + to_image[:, 2]
        out[:, 2] = raw[:, 2] * (roi.size / INPUT_SIZE)
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(logit.reshape(-1)[0], -SCORE_CLIP, SCORE_CLIP))))
        return out, presence

