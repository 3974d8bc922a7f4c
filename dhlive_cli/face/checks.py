"""Is this image usable as an avatar? Exactly one face, large enough, facing the camera.

Each failure is an InputError with one line a user can act on.
"""

from __future__ import annotations

import math

import numpy as np

from dhlive_cli.errors import InputError
from dhlive_cli.face.detection import FaceDetection, FaceDetector
from dhlive_cli.face.landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from dhlive_cli.face.mesh import FaceMesh
from dhlive_cli.face.tracking import MIN_PRESENCE

# Beyond this the far cheek and mouth corner start to hide behind the nose and a mouth rendered
# from the photo would look wrong. (A 3/4 portrait is about 30-45 degrees.)
MAX_YAW_DEGREES = 30.0
# Mesh points on the left and right edge of the face, at cheekbone height.
RIGHT_FACE_EDGE = 234
LEFT_FACE_EDGE = 454


def head_yaw_degrees(landmarks: np.ndarray) -> float:
    """How far the head is turned sideways, from the mesh's 3-D landmarks (0 = frontal).

    The angle of the line between the two face edges in the x-z plane, measured along the eye
    line so a tilted head (roll) does not read as turned. The detector's keypoints cannot tell:
    on a profile it still places both eyes and ears as if the face were frontal.
    Positive: the subject's left side is farther from the camera (they look to the image left).
    """
    lm = np.asarray(landmarks, np.float64)
    eye_axis = lm[LEFT_EYE_OUTER, :2] - lm[RIGHT_EYE_OUTER, :2]
    eye_axis /= max(np.linalg.norm(eye_axis), 1e-9)
    edge = lm[LEFT_FACE_EDGE] - lm[RIGHT_FACE_EDGE]
    across = float(edge[:2] @ eye_axis)
    return math.degrees(math.atan2(float(edge[2]), across))


def find_single_face(
    bgr: np.ndarray,
    detector: FaceDetector | None = None,
    *,
    min_face_px: int = 64,
    mesh: FaceMesh | None = None,
) -> FaceDetection:
    """The one face in an avatar photo, or InputError saying why the photo cannot be used.

    Candidates come from a multi-scale search (a wide photo with small faces still counts them
    all) and each is confirmed by the face mesh's presence score, so a face-like pattern in the
    background does not count. Faces smaller than `min_face_px` are not counted as extra
    people, only reported when no face is large enough.
    """
    detector = detector if detector is not None else FaceDetector()
    mesh = mesh if mesh is not None else FaceMesh()

    def confirmed_faces(tile_factor: float) -> list:
        out = []
        for det in detector.detect_multiscale(bgr, min_face_px=min_face_px, tile_factor=tile_factor):
            landmarks, presence = mesh.landmarks(bgr, mesh.roi_from_detection(det, bgr.shape))
            if presence >= MIN_PRESENCE:
                out.append((det, landmarks))
        return out

    confirmed = confirmed_faces(5.0)
    if not confirmed:
        # a face a little under or at the minimum in a large photo lies below the standard
        # tiles' reach: finer tiles find it, so the answer is its size, not "no face found"
        confirmed = confirmed_faces(3.0)
    if not confirmed:
        h, w = bgr.shape[:2]
        if min(h, w) < 2 * min_face_px:  # a thumbnail: its size, not its content, is the reason
            raise InputError(f"no face found in the image, which is only {w}x{h} px: a face needs at least "
                             f"{min_face_px} px across (use a larger photo)")
        raise InputError("no face found in the image: use a photo with one face, seen from the front")
    large = [(d, lm) for d, lm in confirmed if max(d.width, d.height) >= min_face_px]
    if not large:
        size = max(max(d.width, d.height) for d, _ in confirmed)
        raise InputError(
            f"face too small: {size:.0f} px across, need at least {min_face_px} px (use a larger or closer photo)"
        )
    if len(large) > 1:
        raise InputError(
            f"found {len(large)} faces in the image: an avatar photo must show exactly one face (crop it to one person)"
        )
    det, landmarks = large[0]
    # The tracking crop is the one the mesh is most accurate in (see FaceTracker).
    landmarks, _ = mesh.landmarks(bgr, mesh.roi_from_landmarks(landmarks, bgr.shape))
    yaw = head_yaw_degrees(landmarks)
    if abs(yaw) > MAX_YAW_DEGREES:
        raise InputError(
            f"face turned {abs(yaw):.0f} degrees away from the camera (at most {MAX_YAW_DEGREES:.0f}): "
            "use a photo facing the camera"
        )
    return det
