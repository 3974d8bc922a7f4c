"""Indices into MediaPipe's 468-point face mesh, as MediaPipe users know them.

"Left" and "right" are the subject's own: LEFT_EYE is the eye on the image's right side in an
unmirrored photo. Rings are ordered so that drawing them as closed polygons gives the outline
(they follow the edge lists of MediaPipe's face_mesh_connections).
"""

from __future__ import annotations

N_LANDMARKS = 468

NOSE_TIP = 1
UPPER_INNER_LIP = 13
LOWER_INNER_LIP = 14
MOUTH_RIGHT = 61   # subject's right mouth corner (image left)
MOUTH_LEFT = 291   # subject's left mouth corner (image right)
CHIN = 152
RIGHT_EYE_OUTER = 33
RIGHT_EYE_INNER = 133
LEFT_EYE_OUTER = 263
LEFT_EYE_INNER = 362

# Outer lip contour: lower lip from the right corner (61) to the left corner (291), then the
# upper lip back to the start.
LIPS_OUTER: tuple[int, ...] = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375,
    291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
)
# Inner lip contour (the mouth opening): same direction, from inner corner 78 to 308 and back.
LIPS_INNER: tuple[int, ...] = (
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324,
    308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
)
# Face outline, clockwise in the image starting at the top of the forehead (10); 152 is the chin.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288,
    397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
    172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
# Eye rings: lower lid from the outer corner to the inner corner, then the upper lid back.
LEFT_EYE: tuple[int, ...] = (
    263, 249, 390, 373, 374, 380, 381, 382,
    362, 398, 384, 385, 386, 387, 388, 466,
)
RIGHT_EYE: tuple[int, ...] = (
    33, 7, 163, 144, 145, 153, 154, 155,
    133, 173, 157, 158, 159, 160, 161, 246,
)
