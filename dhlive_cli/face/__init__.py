"""Faces in photos and videos: MediaPipe's face detector and 468-point face mesh on onnxruntime.

The models are converted from MediaPipe's .tflite files at set-up time
(`python -m dhlive_cli.face.convert`, part of `make setup`); run time needs only onnxruntime,
numpy and OpenCV. Coordinates are image pixels throughout.
"""

from dhlive_cli.face.checks import MAX_YAW_DEGREES, find_single_face, head_yaw_degrees
from dhlive_cli.face.detection import FaceDetection, FaceDetector
from dhlive_cli.face.landmarks import (
    CHIN,
    FACE_OVAL,
    LEFT_EYE,
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    LIPS_INNER,
    LIPS_OUTER,
    LOWER_INNER_LIP,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    N_LANDMARKS,
    NOSE_TIP,
    RIGHT_EYE,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    UPPER_INNER_LIP,
)
from dhlive_cli.face.mesh import FaceMesh, FaceRoi
from dhlive_cli.face.tracking import FaceTracker, OneEuroFilter

__all__ = [
    "CHIN",
    "FACE_OVAL",
    "LEFT_EYE",
    "LEFT_EYE_INNER",
    "LEFT_EYE_OUTER",
    "LIPS_INNER",
    "LIPS_OUTER",
    "LOWER_INNER_LIP",
    "MOUTH_LEFT",
    "MOUTH_RIGHT",
    "N_LANDMARKS",
    "NOSE_TIP",
    "RIGHT_EYE",
    "RIGHT_EYE_INNER",
    "RIGHT_EYE_OUTER",
    "UPPER_INNER_LIP",
    "FaceDetection",
    "FaceDetector",
    "FaceMesh",
    "FaceRoi",
    "FaceTracker",
    "OneEuroFilter",
    "find_single_face",
    "head_yaw_degrees",
    "MAX_YAW_DEGREES",
]
