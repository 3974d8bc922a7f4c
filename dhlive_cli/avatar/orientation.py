"""Pictures the right way up, and transparent photos on a background, before a face is measured.

``find_upright`` tries the picture as it is and turned by 180, 90 and 270 degrees; in each it asks
the face detector for the face and reads the face's roll from its keypoints (the eyes' line and
where the mouth lies from it) and has the face mesh confirm it. The picture as it is wins
unless a turn shows an upright face clearly better. A picture in which no turn shows an upright face is refused with one
line, so a mouth is never drawn between the eyes of an upside-down face.

``flatten_alpha`` composites a photo with an alpha channel onto the default avatar's background
gradient, so transparent parts do not render black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dhlive_cli.errors import InputError

__all__ = ["Upright", "find_upright", "rotate", "flatten_alpha", "TURN_NAMES"]

# cv2.rotate codes for k quarter turns clockwise
_ROTATE = {1: cv2.ROTATE_90_CLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_COUNTERCLOCKWISE}
TURN_NAMES = {0: "as is", 1: "90 degrees clockwise", 2: "180 degrees", 3: "90 degrees counter-clockwise"}
# a face whose eyes' line is tilted more than this is not "upright" in that turn
MAX_ROLL_DEGREES = 45.0


def rotate(bgr: np.ndarray, k: int) -> np.ndarray:
    """The picture turned by k quarter turns clockwise (k = 0..3; 0 returns it unchanged)."""
    k = int(k) % 4
    return bgr if k == 0 else cv2.rotate(bgr, _ROTATE[k])


@dataclass(frozen=True, slots=True)
class Upright:
    """The quarter turns (clockwise) that make the face upright, and its roll after them (deg)."""

    turns: int
    roll_degrees: float

    @property
    def note(self) -> str | None:
        if self.turns == 0:
            return None
        return f"the face was not upright: the picture is turned {TURN_NAMES[self.turns]} to make it upright"


def face_roll_degrees(keypoints: np.ndarray) -> float:
    """Roll of a face from the detector's keypoints (0 = upright; +-180 = upside down).

    keypoints: (6, 2) as FaceDetection gives them (subject's right eye, left eye, nose, mouth, ...).
    The angle of the direction from the eyes' midpoint to the mouth, measured from straight down.
    """
    kp = np.asarray(keypoints, np.float64)
    eyes = 0.5 * (kp[0] + kp[1])
    down = kp[3] - eyes
    return math.degrees(math.atan2(-down[0], down[1]))


def find_upright(bgr: np.ndarray, detector, mesh, min_face_px: int = 64) -> Upright:
    """The turn that shows the face upright (InputError when none does, or when the face seen is
    under min_face_px across in every turn; no face at all is left to the caller's own face
    check, which says so in its words).

    Each turn's best face counts only with its mouth below its eyes, and is scored by the
    detector's score times the face mesh's presence (the detector alone may take clothes in a
    turned picture, or an upside-down face, for an upright face; the mesh, cropped along the
    detected eyes, does not). The picture as it is wins unless a turn scores clearly better.
    """
    scores: dict[int, tuple[float, float]] = {}
    seen_face = False
    largest = 0.0  # px across, of the faces the detector saw
    for k in (0, 2, 1, 3):
        img = rotate(bgr, k)
        faces = detector.detect(img)
        if not faces:
            continue
        seen_face = True
        f = faces[0]
        largest = max(largest, float(max(f.width, f.height)))
        roll = face_roll_degrees(f.keypoints)
        if abs(roll) > MAX_ROLL_DEGREES:
            continue
        _, presence = mesh.landmarks(img, mesh.roi_from_detection(f, img.shape))
        if presence >= 0.5:
            scores[k] = (float(f.score) * float(presence), roll)
    if scores:
        best = max(scores, key=lambda k: scores[k][0])
        if 0 in scores and scores[0][0] >= scores[best][0] - 0.1:
            best = 0
        return Upright(best, scores[best][1])
    if seen_face and largest < min_face_px:
        # a face this small is beyond the mesh in any turn: its size is the reason, not its tilt
        # (a 32x32 picture was told it was "tilted too far")
        raise InputError(f"face too small: {largest:.0f} px across, need at least {min_face_px} px "
                         "(use a larger or closer photo)")
    if seen_face:
        raise InputError("the face is not upright in any quarter turn of the picture (tilted too far): "
                         "use a picture with the head upright")
    return Upright(0, 0.0)


def _hex_bgr(s: str) -> np.ndarray:
    s = s.lstrip("#")
    return np.array([int(s[4:6], 16), int(s[2:4], 16), int(s[0:2], 16)], np.float32)


def flatten_alpha(bgra: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(BGR uint8, note) of a picture that may carry alpha: transparent parts are laid on the
    default avatar's background gradient (top to bottom); note says so, None when fully opaque."""
    if bgra.ndim != 3 or bgra.shape[2] != 4:
        return bgra, None
    alpha = bgra[..., 3:4].astype(np.float32) * (1.0 / 255.0)
    if float(alpha.min()) >= 1.0:
        return np.ascontiguousarray(bgra[..., :3]), None
    from dhlive_cli.avatar.drawn import DrawnStyle

    style = DrawnStyle()
    top, bot = _hex_bgr(style.background_top), _hex_bgr(style.background_bottom)
    h = bgra.shape[0]
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    bg = top * (1.0 - t) + bot * t
    out = bgra[..., :3].astype(np.float32) * alpha + bg * (1.0 - alpha)
    share = float((alpha < 0.5).mean())
    note = f"the picture is transparent in {share:.0%} of its area: laid on the default background"
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), note
