"""Measurements on rendered frames, made the way a viewer's eye would check them: landmarks are
re-detected on the output picture (never taken from the renderer), colours compared in CIE L*a*b*.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHEEKS = (50, 280, 205, 425)


def lab(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 L*a*b* with L* in 0..100 of a BGR uint8 picture."""
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)


class Landmarker:
    """Face-mesh landmarks of output frames: detector on the first frame, then tracked."""

    def __init__(self):
        from dhlive_cli.face import FaceDetector, FaceMesh

        self.det, self.mesh, self.lm = FaceDetector(), FaceMesh(), None

    def __call__(self, bgr: np.ndarray, fresh: bool = False) -> np.ndarray:
        if self.lm is None or fresh:
            faces = self.det.detect(bgr)
            assert faces, "no face in an output frame"
            self.lm, _ = self.mesh.landmarks(bgr, self.mesh.roi_from_detection(faces[0], bgr.shape))
        self.lm, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_landmarks(self.lm, bgr.shape))
        assert presence > 0.5, presence
        return np.asarray(self.lm, np.float64)


def lip_gap(lm: np.ndarray) -> float:
    """Inner lip gap (mesh 13-14) over face height (10-152)."""
    return float(np.linalg.norm(lm[14, :2] - lm[13, :2]) / np.linalg.norm(lm[152, :2] - lm[10, :2]))


def poly_mask(shape, pts) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts)[:, :2]).astype(np.int32)], 1)
    return m.astype(bool)


@dataclass
class TeethFigures:
    skin_l: float
    skin_chroma: float
    bright_l: float  # median L* of the brightest 30 % of inner-mouth pixels
    bright_along: float  # their a*b* projected on the skin's a*b* direction
    p10_l: float  # 10th percentile L* inside the mouth
    pixels: int

    @property
    def light_ratio(self) -> float:
        return self.bright_l / self.skin_l

    @property
    def tint_ratio(self) -> float:
        return self.bright_along / max(self.skin_chroma, 1e-6)

    @property
    def cavity_ratio(self) -> float:
        return self.p10_l / self.skin_l

    def line(self, name: str) -> str:
        return (f"{name:10s} skin L* {self.skin_l:5.1f} C* {self.skin_chroma:4.1f} | teeth L*/skin {self.light_ratio:.2f} "
                f"tint {self.tint_ratio:.2f} | cavity p10 L*/skin {self.cavity_ratio:.2f} | {self.pixels} px")


def teeth_figures(bgr: np.ndarray, lm: np.ndarray) -> TeethFigures:
    """Inner-mouth figures of one frame against its cheek skin (landmarks of that frame)."""
    L = lab(bgr)
    inner = poly_mask(bgr.shape, np.concatenate([lm[list(UPPER_INNER)], lm[list(LOWER_INNER)][::-1]]))
    face_h = float(np.linalg.norm(lm[152, :2] - lm[10, :2]))
    cheek = np.zeros(bgr.shape[:2], np.uint8)
    for i in CHEEKS:
        cv2.circle(cheek, (int(lm[i, 0]), int(lm[i, 1])), max(2, int(0.03 * face_h)), 1, -1)
    skin = np.median(L[cheek > 0], axis=0)
    skin_ab = skin[1:3]
    chroma = float(np.hypot(*skin_ab))
    d = skin_ab / max(chroma, 1e-6)
    px = L[inner]
    order = np.argsort(px[:, 0])
    top = px[order[int(0.7 * len(px)) :]]
    return TeethFigures(float(skin[0]), chroma, float(np.median(top[:, 0])), float(np.median(top[:, 1:3] @ d)),
                        float(np.percentile(px[:, 0], 10)), int(inner.sum()))


def face_oval_mask(shape, lm: np.ndarray, dilate_frac: float) -> np.ndarray:
    """The face oval (from the mesh) dilated by dilate_frac x face height, as a bool mask."""
    m = poly_mask(shape, lm[list(FACE_OVAL)]).astype(np.uint8)
    face_h = float(np.linalg.norm(lm[152, :2] - lm[10, :2]))
    r = max(1, int(round(dilate_frac * face_h)))
    return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)
