"""Face detector and mesh on onnxruntime: the converter, MediaPipe's geometry, tracking, checks.

Real converted models (made by `make setup`) and a real photo (scikit-image's astronaut);
the converter is checked against a NumPy interpreter of the .tflite graph.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import dhlive_cli.face as face
from dhlive_cli.errors import DependencyError, InputError
from dhlive_cli.face import convert
from dhlive_cli.face._runtime import DEFAULT_MODELS_DIR
from tests.tflite_reference import run_reference

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the test photo")

# Hand-checked on the astronaut photo (512x512): the region spanning both eyes and the mouth,
# which any face box must contain, and a bound no sane face box exceeds.
FACE_CORE = (195, 100, 250, 155)  # x0, y0, x1, y1
FACE_BOUND = (150, 50, 300, 210)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detector() -> face.FaceDetector:
    return face.FaceDetector()


@pytest.fixture(scope="module")
def mesh() -> face.FaceMesh:
    return face.FaceMesh()


def landmarks_of(bgr, detector, mesh):
    """MediaPipe's two steps on a still image: crop from the detection, then the tracking crop
    from those landmarks. Returns (landmarks, presence, detection)."""
    faces = detector.detect(bgr)
    assert len(faces) == 1, f"expected one face, found {len(faces)}"
    first, _ = mesh.landmarks(bgr, mesh.roi_from_detection(faces[0], bgr.shape))
    landmarks, presence = mesh.landmarks(bgr, mesh.roi_from_landmarks(first, bgr.shape))
    return landmarks, presence, faces[0]


# ---- converter -------------------------------------------------------------------------------


@pytest.mark.parametrize("onnx_name", sorted(convert.MODELS))
def test_converted_model_matches_numpy_reference_of_tflite(onnx_name, astronaut, detector, mesh):
    """The ONNX graph computes what the .tflite graph computes (random and real inputs)."""
    import hashlib

    import onnxruntime as ort

    member, sha256 = convert.MODELS[onnx_name]
    tflite_path = DEFAULT_MODELS_DIR / member.rsplit("/", 1)[1]
    data = tflite_path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256
    session = ort.InferenceSession(str(DEFAULT_MODELS_DIR / onnx_name), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    rng = np.random.default_rng(7)
    low = -1.0 if "detection" in onnx_name else 0.0  # each model's input range
    random_input = rng.uniform(low, 1.0, size=spec.shape).astype(np.float32)
    if "detection" in onnx_name:
        real_input = detector.letterbox(astronaut).copy()
    else:
        real_input = mesh.crop(astronaut, mesh.roi_from_detection(detector.detect(astronaut)[0], astronaut.shape)).copy()
    for x in (random_input, real_input):
        expected = run_reference(data, [x])
        got = session.run(None, {spec.name: x})
        for e, g, out in zip(expected, got, session.get_outputs()):
            assert g.shape == e.shape, out.name
            # float32 ONNX vs float64 reference; outputs reach ~200 (crop pixels), hence the rtol
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-4, err_msg=out.name)
    # The conversion is deterministic: the same .tflite gives the same bytes.
    name = member.rsplit("/", 1)[1].removesuffix(".tflite")
    assert convert.convert_tflite(data, name) == convert.convert_tflite(data, name)


def test_converter_rejects_unknown_operators_with_a_clear_message():
    from dhlive_cli.face import tflite

    data = (DEFAULT_MODELS_DIR / "face_detection_short_range.tflite").read_bytes()
    converter = convert.TfliteToOnnx(data, "detector")
    converter.HANDLERS = {k: v for k, v in converter.HANDLERS.items() if k != tflite.PAD}
    with pytest.raises(convert.ConversionError, match=r"unsupported TensorFlow Lite operators: PAD \(code 34\)"):
        converter.convert()
    with pytest.raises(ValueError, match="not a TensorFlow Lite model"):
        convert.TfliteToOnnx(b"\0" * 64, "junk")


def test_same_padding_puts_the_odd_pixel_at_the_end():
    assert convert.same_padding(128, 5, 2) == (1, 2)  # the detector's first convolution
    assert convert.same_padding(64, 3, 2) == (0, 1)
    assert convert.same_padding(64, 3, 1) == (1, 1)
    assert convert.same_padding(3, 3, 3) == (0, 0)


# ---- detector and mesh on a real photo -----------------------------------------------------


def test_detector_finds_the_astronaut_face(astronaut, detector):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.8
    x0, y0, x1, y1 = f.box
    assert x0 <= FACE_CORE[0] and y0 <= FACE_CORE[1] and x1 >= FACE_CORE[2] and y1 >= FACE_CORE[3], f.box
    assert x0 >= FACE_BOUND[0] and y0 >= FACE_BOUND[1] and x1 <= FACE_BOUND[2] and y1 <= FACE_BOUND[3], f.box
    right_eye, left_eye, nose, mouth, right_ear, left_ear = f.keypoints
    assert right_ear[0] < right_eye[0] < nose[0] < left_eye[0] < left_ear[0]  # unmirrored photo
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    assert f.box.dtype == np.float32 and f.keypoints.shape == (6, 2)


def test_mesh_landmarks_on_the_astronaut(astronaut, detector, mesh):
    lm, presence, det = landmarks_of(astronaut, detector, mesh)
    assert lm.shape == (468, 3) and lm.dtype == np.float32
    assert presence > 0.8
    eyes_y = lm[list(face.LEFT_EYE) + list(face.RIGHT_EYE), 1].mean()
    mouth_y = lm[list(face.LIPS_OUTER), 1].mean()
    assert eyes_y < lm[face.NOSE_TIP, 1] < mouth_y < lm[face.CHIN, 1]
    x0, y0, x1, y1 = det.box
    for corner in (face.MOUTH_RIGHT, face.MOUTH_LEFT):
        assert x0 < lm[corner, 0] < x1 and y0 < lm[corner, 1] < y1
    assert lm[face.MOUTH_RIGHT, 0] < lm[face.MOUTH_LEFT, 0]
    assert lm[face.RIGHT_EYE_OUTER, 0] < lm[face.LEFT_EYE_OUTER, 0]
    # She smiles with her lips slightly apart over her teeth: a gap of ~7 px on a 45 px mouth.
    gap = np.linalg.norm(lm[face.UPPER_INNER_LIP, :2] - lm[face.LOWER_INNER_LIP, :2])
    width = np.linalg.norm(lm[face.MOUTH_LEFT, :2] - lm[face.MOUTH_RIGHT, :2])
    assert 38 < width < 55 and 3 < gap < 12 and gap / width < 0.3
    assert abs(face.head_yaw_degrees(lm)) < 10


def test_rings_are_closed_ordered_outlines(astronaut, detector, mesh):
    lm, _, _ = landmarks_of(astronaut, detector, mesh)
    for ring in (face.LIPS_OUTER, face.LIPS_INNER, face.FACE_OVAL, face.LEFT_EYE, face.RIGHT_EYE):
        assert len(set(ring)) == len(ring) and all(0 <= i < 468 for i in ring)
        pts = lm[list(ring), :2].astype(np.float64)
        # An ordered ring is a simple polygon: its area equals that of its convex hull (for
        # these nearly convex outlines) instead of collapsing as a shuffled order would.
        area = 0.5 * abs(np.dot(pts[:, 0], np.roll(pts[:, 1], 1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], 1)))
        hull = cv2.contourArea(cv2.convexHull(pts.astype(np.float32)))
        assert area > 0.8 * hull


def test_landmarks_follow_translation_and_scale(astronaut, detector, mesh):
    base, _, _ = landmarks_of(astronaut, detector, mesh)
    for scale, (ox, oy) in ((1.0, (70, 37)), (1.25, (33, 71)), (0.8, (120, 90))):
        small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.full((small.shape[0] + 110, small.shape[1] + 130, 3), 128, np.uint8)
        canvas[oy : oy + small.shape[0], ox : ox + small.shape[1]] = small
        lm, presence, _ = landmarks_of(canvas, detector, mesh)
        # cv2.resize maps pixel centres: x_new + 0.5 = (x + 0.5) * scale
        back = (lm[:, :2] - (ox, oy) + 0.5) / scale - 0.5
        err = np.linalg.norm(back - base[:, :2], axis=1)
        assert presence > 0.8
        assert err.max() < 2.0, (scale, err.max())


@pytest.mark.parametrize("degrees", [15, -15])
def test_landmarks_follow_rotation(astronaut, detector, mesh, degrees):
    base, _, _ = landmarks_of(astronaut, detector, mesh)
    pad = 60
    big = cv2.copyMakeBorder(astronaut, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    turn = cv2.getRotationMatrix2D((225.0 + pad, 130.0 + pad), degrees, 1.0)
    rotated = cv2.warpAffine(big, turn, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR)
    lm, presence, _ = landmarks_of(rotated, detector, mesh)
    expected = (base[:, :2] + pad) @ turn[:, :2].T + turn[:, 2]
    err = np.linalg.norm(lm[:, :2] - expected, axis=1)
    assert presence > 0.8
    assert err.max() < 3.0 and err.mean() < 1.0, (err.max(), err.mean())
    # The ROI turns with the face (cv2's positive angle is counter-clockwise on screen) ...
    roi, roi_base = mesh.roi_from_landmarks(lm, rotated.shape), mesh.roi_from_landmarks(base, astronaut.shape)
    assert math.degrees(roi.rotation - roi_base.rotation) == pytest.approx(-degrees, abs=1.5)
    # ... and in the crop the model sees, the eyes are level.
    in_crop = lm[:, :2] @ roi.image_to_crop()[:, :2].T + roi.image_to_crop()[:, 2]
    eye_line = in_crop[face.LEFT_EYE_OUTER] - in_crop[face.RIGHT_EYE_OUTER]
    assert abs(math.degrees(math.atan2(eye_line[1], eye_line[0]))) < 2.0


def test_crop_geometry_round_trips():
    roi = face.FaceRoi(center=(210.0, 140.0), size=150.0, rotation=0.3)
    to_image, to_crop = roi.crop_to_image(), roi.image_to_crop()
    corners = np.array([[0, 0], [192, 0], [192, 192], [0, 192]], np.float64)
    img_pts = corners @ to_image[:, :2].T + to_image[:, 2]
    assert np.allclose(np.linalg.norm(img_pts - img_pts.mean(axis=0), axis=1), 150 / math.sqrt(2))
    assert np.allclose(img_pts.mean(axis=0), roi.center)
    assert np.allclose(img_pts @ to_crop[:, :2].T + to_crop[:, 2], corners)


# ---- tracking --------------------------------------------------------------------------------


def test_tracker_follows_a_moving_face_and_smoothing_reduces_jitter(astronaut, detector, mesh):
    velocity = np.array([0.8, 0.45])  # px per frame
    frames, shifts = [], []
    for k in range(30):
        shift = velocity * k
        move = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        frames.append(cv2.warpAffine(astronaut, move, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        shifts.append(shift)
    shifts = np.array(shifts)
    jitter = {}
    for smooth in (False, True):
        tracker = face.FaceTracker(detector, mesh, smooth=smooth, fps=25.0)
        track = np.array([tracker.update(f)[:, :2] for f in frames])
        assert tracker.detections == 1  # detected once, tracked after that
        residual = track - shifts[:, None, :] - track[0]
        assert np.linalg.norm(residual, axis=2).mean() < 1.5  # follows the motion (lag included)
        jitter[smooth] = np.diff(residual, axis=0).std()
    assert jitter[True] < 0.9 * jitter[False], jitter


def test_tracker_loses_a_vanished_face_and_finds_it_again(astronaut, detector, mesh):
    tracker = face.FaceTracker(detector, mesh)
    assert tracker.update(astronaut) is not None
    assert tracker.update(np.full_like(astronaut, 127)) is None
    again = tracker.update(astronaut)
    assert again is not None and again.shape == (468, 3)
    assert tracker.detections == 3  # first frame, the blank frame, the return


def test_one_euro_filter_passes_a_still_value_and_lags_little():
    f = face.OneEuroFilter(25.0)
    assert np.allclose(f(np.array([5.0])), 5.0) and np.allclose(f(np.array([5.0])), 5.0)
    ramp = [f(np.array([5.0 + 2.0 * k]), scale=100.0)[0] for k in range(1, 30)]
    assert 5.0 + 2.0 * 29 - ramp[-1] < 2.0


# ---- the avatar photo check ------------------------------------------------------------------


def test_find_single_face_accepts_the_astronaut(astronaut, detector, mesh):
    det = face.find_single_face(astronaut, detector, mesh=mesh)
    assert det.score > 0.8


@pytest.mark.parametrize(
    "case, message",
    [
        ("blank", r"^no face found"),
        ("two", r"^found 2 faces"),
        ("tiny", r"^face too small: 4\d px across, need at least 64 px"),
        ("profile", r"^face turned \d+ degrees away"),
    ],
)
def test_find_single_face_errors(case, message, astronaut, detector, mesh):
    image = {
        "blank": lambda: np.full((480, 640, 3), 127, np.uint8),
        # a wide image: each face is too small for one full-image pass, the tiles find both
        "two": lambda: np.hstack([astronaut, astronaut]),
        "tiny": lambda: cv2.resize(astronaut, (216, 216), interpolation=cv2.INTER_AREA),  # a 40 px face
        # scikit-image's cameraman looks into his camera in near profile
        "profile": lambda: cv2.cvtColor(skimage_data.camera(), cv2.COLOR_GRAY2BGR),
    }[case]()
    with pytest.raises(InputError, match=message) as err:
        face.find_single_face(image, detector, mesh=mesh)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("side, message", [(48, r"^face too small: \d+ px across, need at least 64 px"),
                                           (32, r"^no face found in the image, which is only 32x32 px: a face needs")])
def test_a_thumbnail_is_told_it_is_too_small_not_tilted(side, message, astronaut, detector, mesh):
    """A 48x48 or 32x32 astronaut was refused with "the face is not upright in any quarter turn
    (tilted too far)": the detector saw a face the mesh could not confirm in any turn. Its size
    is the reason given now, in the orientation search and in the face check."""
    from dhlive_cli.avatar.orientation import find_upright

    small = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
    with pytest.raises(InputError, match=message):
        up = find_upright(small, detector, mesh)
        assert up.turns == 0  # no face seen at all: left to the face check, which says it
        face.find_single_face(small, detector, mesh=mesh)


def test_multiscale_search_finds_a_small_face_in_a_large_photo(astronaut, detector):
    canvas = np.full((1500, 2000, 3), 120, np.uint8)
    canvas[700:1212, 1100:1612] = astronaut
    assert detector.detect(canvas) == []  # 95 px of 2000: below the short-range model's reach
    faces = detector.detect_multiscale(canvas)
    assert len(faces) >= 1
    x0, y0, x1, y1 = faces[0].box
    assert x0 < 1100 + FACE_CORE[0] and x1 > 1100 + FACE_CORE[2] and y0 < 700 + FACE_CORE[1] and y1 > 700 + FACE_CORE[3]


def test_a_small_face_in_a_1080p_photo_is_said_to_be_too_small(astronaut, detector, mesh):
    # a reviewer's photo: the astronaut scaled to 256 px in a 1920x1080 frame (a face of ~48 px)
    # read "no face found in the image"; a finer search when the standard one finds nothing
    # tells its size
    canvas = np.full((1080, 1920, 3), 200, np.uint8)
    canvas[400:656, 800:1056] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    with pytest.raises(InputError, match=r"^face too small: \d+ px across, need at least 64 px"):
        face.find_single_face(canvas, detector, mesh=mesh)


def test_bad_images_are_input_errors(detector, mesh):
    with pytest.raises(InputError, match="BGR uint8"):
        detector.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match="BGR uint8"):
        mesh.landmarks(np.zeros((64, 64, 3), np.float32), face.FaceRoi((32.0, 32.0), 40.0, 0.0))


def test_missing_models_are_a_dependency_error(tmp_path):
    for make in (face.FaceDetector, face.FaceMesh):
        with pytest.raises(DependencyError, match=r"face models missing: run `make setup`") as err:
            make(tmp_path)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("make, name", [(face.FaceDetector, "face_detection_short_range.onnx"),
                                        (face.FaceMesh, "face_landmark.onnx")])
def test_damaged_models_are_refused_by_their_sha256(tmp_path, make, name):
    """Bytes flipped in the middle of the weights still load in onnxruntime and then find no face
    (the user was told to use a sharper photo); the sha256 check names the file and the fix."""
    for f in DEFAULT_MODELS_DIR.glob("*.onnx"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    make(tmp_path)  # intact copies load
    data = bytearray((tmp_path / name).read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = bytes(b ^ 0xFF for b in data[mid:mid + 4096])
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(DependencyError, match=rf"face model .*{name} is damaged \(sha256 .*convert them again"):
        make(tmp_path)
