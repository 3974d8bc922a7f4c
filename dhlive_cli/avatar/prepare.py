"""`dhlive avatar prepare`: a photo or a short video of a presenter -> an avatar directory.

    DIR/avatar.toml    manifest: kind (photo | video), sizes, fps, frame count, loop mode, palette
    DIR/frame.png      the still (photo), or
    DIR/frames.mp4     the whole idle loop, H.264 (video): streamed at run time, never loaded whole
    DIR/landmarks.npy  float32 (frames, 468, 3) face-mesh landmarks in frame pixels
    DIR/mouths.npy     uint8 (k, 48, 128, 3) the inside of the mouth at k openings, when the clip talks
    DIR/preview.png    contact sheet: the avatar with a set of mouth shapes and a blink

A video is read once, in order: each frame is tracked from the previous frame's landmarks (the
detector only starts the track), written to a temporary high-quality file and forgotten. Jitter
is then removed offline with a one-euro filter run forwards and backwards (zero lag, which a
live filter cannot have), the loop is built from the temporary file a few frames at a time
(best, the default: cut where the picture comes back closest to the start and cross-fade the
seam, so head motion never visibly rewinds; ping-pong: forwards then backwards), and encoded to
frames.mp4. Memory holds a few frames at most.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from dhlive_cli.avatar.inner_mouth import sample_palette
from dhlive_cli.avatar.integrity import check_source
from dhlive_cli.avatar.manifest import write_manifest
from dhlive_cli.avatar.media import FrameEncoder, VideoFrames, fit_within, read_frames_at
from dhlive_cli.avatar.neutral import (NEEDS_NEUTRAL_GAP, MouthNeutraliser, bank_frames, mouth_crop, mouth_gap,
                                       rest_frame_index)
from dhlive_cli.avatar.preview import write_preview
from dhlive_cli.avatar.stills import read_image, sniff_image
from dhlive_cli.errors import InputError, InterruptedAfterOutput, OutputError
from dhlive_cli.interrupts import interrupts_held
from dhlive_cli.outpaths import write_png

log = logging.getLogger(__name__)

LOOP_MODES = ("pingpong", "best")
AVATAR_FILES = ("avatar.toml", "frame.png", "frames.mp4", "landmarks.npy", "mouths.npy", "preview.png")
_CHUNK = 12  # frames read back at a time when building the loop (also the temp file's GOP)
_XFADE = 8  # frames cross-faded at a "best" loop point


@dataclass
class PrepareOptions:
    loop: str = "best"  # no visible rewind; clips too short for it fall back to pingpong
    max_seconds: float = 10.0
    size: tuple[int, int] = (1920, 1080)  # stored frames fit in this box (either orientation)
    fps: int = 25
    name: str | None = None
    min_face_px: int = 64
    preview: bool = True


@dataclass
class PrepareResult:
    dir: str
    kind: str
    name: str
    width: int
    height: int
    fps: int
    frames: int
    loop: str
    seconds: float
    palette: dict
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- entry point


def prepare_avatar(input_path: str | os.PathLike, out_dir: str | os.PathLike, opts: PrepareOptions | None = None,
                   progress=None, state: dict | None = None) -> PrepareResult:
    """Build an avatar directory; progress(done, total | None, what) is called now and then.
    state, when given, gets "written" (the directory) the moment the new avatar is in place.
    Raises InputError, OutputError; InterruptedAfterOutput for a Ctrl+C or SIGTERM that
    landed while the finished avatar was being moved into place (it is whole there)."""
    opts = opts or PrepareOptions()
    src = Path(input_path)
    out = Path(out_dir)
    if opts.loop not in LOOP_MODES:
        raise InputError(f"--loop {opts.loop!r}: use one of {', '.join(LOOP_MODES)}")
    if not (0.5 <= opts.max_seconds <= 600):
        raise InputError("--max-seconds must lie within [0.5, 600]")
    if not src.exists():
        raise InputError(f"{src}: no such file")
    if src.is_dir():
        raise InputError(f"{src}: is a directory, not an image or video")
    if src.stat().st_size == 0:
        raise InputError(f"{src}: file is empty")
    _check_out_dir(out)
    parent = out.resolve().parent
    made = _make_parents(out, parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.dhlive-partial-", dir=parent))
    except OSError as e:
        _remove_made(made)
        raise OutputError(f"{out}: cannot write in {parent}: {e.strerror or e}") from e
    done = False
    try:
        if sniff_image(src) is not None:
            res = _prepare_photo(src, tmp, opts)
        else:
            res = _prepare_video(src, tmp, opts, progress)
        if opts.preview:
            if progress:
                progress(0, None, "preview")
            write_preview(tmp, tmp / "preview.png")
        # Ctrl+C or SIGTERM in the middle of the commit would leave a folder of old and new
        # files: held back until the new avatar is whole, then raised saying it was written
        with interrupts_held():
            _commit(tmp, out)
            res.dir = str(out)
            done = True
            if state is not None:
                state["written"] = str(out)
            shutil.rmtree(tmp, ignore_errors=True)
        return res
    except KeyboardInterrupt as e:
        if done:
            raise InterruptedAfterOutput(f"interrupted: the avatar was already written to {out}") from e
        raise
    except OutputError as e:  # a file of the work folder (a full disk): named as the avatar's own
        raise OutputError(str(e).replace(str(tmp), str(out))) from None
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise OutputError(f"{out}: {e.strerror}") from None
    finally:
        if not done:
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_made(made)


def _make_parents(out: Path, parent: Path) -> list[Path]:
    """Create the missing folders above `out` (`-o avatars/anna` with no avatars/ yet); returns
    them deepest first so a failed prepare can remove exactly those and leave nothing behind."""
    missing = []
    p = parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    if missing and not p.is_dir():
        raise OutputError(f"{out}: {p} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_made(missing)
        raise OutputError(f"{out}: cannot create {parent}: {e.strerror or e}") from e
    return missing


def _remove_made(made: list[Path]) -> None:
    for p in made:  # deepest first; a folder something else wrote into meanwhile stays
        try:
            p.rmdir()
        except OSError:
            break


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    if out.is_dir():
        extra = [p.name for p in out.iterdir() if p.name not in AVATAR_FILES]
        if extra and not (out / "avatar.toml").exists():
            raise OutputError(f"{out}: directory is not empty (and is not an avatar directory)")


def _commit(tmp: Path, out: Path) -> None:
    """Replace the avatar files of out (only those) with the freshly built ones."""
    try:
        out.mkdir(exist_ok=True)
        for name in AVATAR_FILES:
            (out / name).unlink(missing_ok=True)
        for p in tmp.iterdir():
            os.replace(p, out / p.name)
    except OSError as e:
        raise OutputError(f"{out}: cannot write the avatar: {e.strerror or e}") from e


# --------------------------------------------------------------------------- faces


class _Faces:
    """The face models, loaded once per prepare."""

    def __init__(self):
        from dhlive_cli.face import FaceDetector, FaceMesh

        self.detector = FaceDetector()
        self.mesh = FaceMesh()

    def first(self, bgr: np.ndarray, min_face_px: int) -> np.ndarray:
        """Landmarks of the one usable face (InputError: none, several, too small, turned away)."""
        from dhlive_cli.face import find_single_face

        det = find_single_face(bgr, self.detector, min_face_px=min_face_px, mesh=self.mesh)
        self.face_px = float(max(det.width, det.height))  # the detector's face size, px
        lm, _ = self.mesh.landmarks(bgr, self.mesh.roi_from_detection(det, bgr.shape))
        return self.refine(bgr, lm)

    def first_fitted(self, bgr: np.ndarray, tw: int, th: int, opts: PrepareOptions) -> tuple[np.ndarray, np.ndarray]:
        """(picture scaled to tw x th, its face landmarks). The face is found in the picture as
        given (a small face in a large photo or a 4K clip is lost once it is shrunk to --size),
        then measured again in the scaled picture; InputError where only the scaling makes it
        smaller than opts.min_face_px (crop or raise --size)."""
        lm = self.first(bgr, opts.min_face_px)
        if (tw, th) == bgr.shape[1::-1]:
            return bgr, lm
        sx, sy = tw / bgr.shape[1], th / bgr.shape[0]
        if self.face_px * sx < opts.min_face_px:
            raise InputError(f"face too small: {self.face_px * sx:.0f} px across once the picture is fitted in "
                             f"{max(opts.size)}x{min(opts.size)} ({self.face_px:.0f} px as given), need at least "
                             f"{opts.min_face_px} px: crop the picture around the face, or raise --size")
        small = cv2.resize(bgr, (tw, th), interpolation=cv2.INTER_AREA)
        return small, self.refine(small, lm * np.array([sx, sy, sx], np.float32))

    def refine(self, bgr: np.ndarray, lm: np.ndarray) -> np.ndarray:
        """Landmarks measured again in the tracking crop around lm (where the mesh is most accurate)."""
        for _ in range(2):
            lm, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_landmarks(lm, bgr.shape))
        if presence < 0.5:
            raise InputError("the face could not be measured reliably: use a sharper, front-facing picture")
        return np.asarray(lm, np.float32)

    def track(self, bgr: np.ndarray, prev: np.ndarray) -> np.ndarray | None:
        """Landmarks from the previous frame's; the detector again if the track slipped."""
        lm, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_landmarks(prev, bgr.shape))
        if presence >= 0.5:
            return np.asarray(lm, np.float32)
        faces = self.detector.detect(bgr)
        if not faces:
            return None
        lm, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_detection(faces[0], bgr.shape))
        if presence < 0.5:
            return None
        lm, presence = self.mesh.landmarks(bgr, self.mesh.roi_from_landmarks(lm, bgr.shape))
        return np.asarray(lm, np.float32) if presence >= 0.5 else None


def smooth_landmarks(lm: np.ndarray, fps: float) -> np.ndarray:
    """Zero-lag jitter removal: a one-euro filter forwards and backwards, averaged."""
    from dhlive_cli.face import OneEuroFilter

    n = lm.shape[0]
    if n < 3:
        return lm.astype(np.float32)
    flat = lm.reshape(n, -1).astype(np.float64)
    sizes = np.ptp(lm[:, :, :2], axis=1).max(axis=1)
    fwd = np.empty_like(flat)
    bwd = np.empty_like(flat)
    f = OneEuroFilter(fps, min_cutoff=1.0, beta=20.0)
    for i in range(n):
        fwd[i] = f(flat[i], float(sizes[i]))
    f = OneEuroFilter(fps, min_cutoff=1.0, beta=20.0)
    for i in range(n - 1, -1, -1):
        bwd[i] = f(flat[i], float(sizes[i]))
    return (0.5 * (fwd + bwd)).reshape(lm.shape).astype(np.float32)


# --------------------------------------------------------------------------- photo


def _prepare_photo(src: Path, tmp: Path, opts: PrepareOptions, picture: np.ndarray | None = None,
                   warnings: list[str] | None = None) -> PrepareResult:
    """A photo avatar from the file src, or from `picture` (BGR uint8: the one picture of a file
    that only ffmpeg reads, e.g. a GIF or PPM still, or a one-frame clip)."""
    from dhlive_cli.avatar.orientation import find_upright, flatten_alpha, rotate

    warnings = list(warnings or [])
    if picture is None:
        img, note = flatten_alpha(read_image(src, keep_alpha=True))
        if note:
            warnings.append(note)
    else:
        img = picture
    h, w = img.shape[:2]
    faces = _Faces()
    up = find_upright(img, faces.detector, faces.mesh)
    if up.turns:
        img = rotate(img, up.turns)
        warnings.append(up.note)
    tw, th = fit_within(img.shape[1], img.shape[0], opts.size)
    img, lm = faces.first_fitted(img, tw, th, opts)
    palette = sample_palette(img, lm)
    write_png(tmp / "frame.png", img)
    np.save(tmp / "landmarks.npy", lm[None].astype(np.float32))
    name = opts.name or src.stem
    if mouth_gap(lm) > 0.12:
        warnings.append("the mouth is open in the photo: it is closed by the warp at rest; a closed-mouth photo looks best")
    spec = {
        "kind": "photo", "name": name, "version": 1,
        "description": f"prepared by dhlive avatar prepare from {src.name} on {date.today().isoformat()}",
        "source": {"file": src.name, "width": w, "height": h, "quarter_turns": up.turns},
        "frames": {"file": "frame.png", "width": img.shape[1], "height": img.shape[0], "fps": opts.fps, "count": 1,
                   "loop": "still", "landmarks": "landmarks.npy"},
        "palette": palette.as_table(),
        "motion": {"seed": 7, "blink_interval_s": [2.4, 5.6], "blink_ms": 180, "sway": 1.0},
        "preview": {"file": "preview.png"},
    }
    write_manifest(tmp / "avatar.toml", spec)
    return PrepareResult("", "photo", name, img.shape[1], img.shape[0], opts.fps, 1, "still", 0.0,
                         palette.as_hex(), warnings)


# --------------------------------------------------------------------------- video


def _prepare_video(src: Path, tmp: Path, opts: PrepareOptions, progress) -> PrepareResult:
    fps = int(opts.fps)
    lms: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    fwd_path = tmp / "forward.mp4"
    from dhlive_cli.avatar.orientation import find_upright, rotate

    with VideoFrames(src, fps, opts.max_seconds) as vf:
        # a clip cut short opens and its start decodes: ffmpeg reads it to the end first
        check_source(src, opts.max_seconds)
        faces = _Faces()
        # the clip's first frame says which way is up (a rotated phone clip without its tag)
        up = find_upright(vf.first, faces.detector, faces.mesh)
        sw, sh = (vf.height, vf.width) if up.turns % 2 else (vf.width, vf.height)
        tw, th = fit_within(sw, sh, opts.size)
        total = vf.expected_frames
        enc = None
        try:
            prev = None
            for k, frame in vf:
                frame = rotate(frame, up.turns)
                if prev is None:  # found at full resolution, then measured in the scaled frame
                    frame, lm = faces.first_fitted(frame, tw, th, opts)
                    enc = FrameEncoder(fwd_path, tw, th, fps, crf=10, preset="veryfast", gop=_CHUNK, pix_fmt="yuv444p")
                else:
                    if frame.shape[1] != tw or frame.shape[0] != th:
                        frame = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
                    lm = faces.track(frame, prev)
                    if lm is None:
                        raise InputError(f"{src}: the face is lost at {k / fps:.2f} s (turned away, covered or out of "
                                         f"the picture): trim the clip or use --max-seconds {max(0.5, (k - 1) / fps):.1f}")
                prev = lm
                lms.append(lm)
                thumbs.append(_thumb(frame, lm))
                enc.write(frame)
                if progress and k % 5 == 0:
                    progress(k + 1, total, "tracking")
            if enc is not None:
                enc.close()
        except BaseException:
            if enc is not None:
                enc.abort()
            raise
    n = len(lms)
    if n < 2 or vf.decoded < 2:
        # one picture (a GIF or PPM still, a one-frame clip): it makes a photo avatar
        fwd_path.unlink(missing_ok=True)
        if min(vf.first.shape[:2]) < 32:
            raise InputError(f"{src}: image is only {vf.first.shape[1]}x{vf.first.shape[0]} pixels")
        return _prepare_photo(src, tmp, opts, picture=np.ascontiguousarray(vf.first),
                              warnings=[f"{src.name} holds a single picture: it was prepared as a photo avatar"])
    lm_all = smooth_landmarks(np.stack(lms), fps)
    warnings = [up.note] if up.turns else []
    gaps = np.array([mouth_gap(x) for x in lm_all])
    fix, bank = None, None
    rest = rest_frame_index(lm_all)
    if float(gaps.max()) > float(gaps[rest]) + NEEDS_NEUTRAL_GAP:
        # the presenter talks in the clip: every frame gets the rest frame's mouth (neutral.py)
        neutral = MouthNeutraliser(read_frames_at(fwd_path, rest, 1, fps, tw, th)[0].copy(), lm_all[rest])
        plans = [neutral.plan(x) for x in lm_all]

        # what the clip showed inside the mouth, for drawing ours (neutral.py: the mouth bank)
        picks = bank_frames(lm_all)
        crops = [mouth_crop(read_frames_at(fwd_path, j, 1, fps, tw, th)[0], lm_all[j]) for j in picks]
        if crops:
            np.save(tmp / "mouths.npy", np.stack([c for c, _ in crops]))
            bank = {"file": "mouths.npy", "openings": [round(o, 4) for _, o in crops]}
        lm_all = np.stack([np.concatenate([p[2][:, :2], x[:, 2:]], axis=1) for p, x in zip(plans, lm_all)]).astype(np.float32)

        def fix(j: int, frame: np.ndarray) -> np.ndarray:
            a, mask, _ = plans[j]
            return neutral.apply(frame, a, mask)

        warnings.append(f"the mouth moves in the clip (open in {np.mean(gaps > 0.12):.0%} of the frames): "
                        f"every frame was given the resting mouth of frame {rest}")

    loop = opts.loop
    if loop == "best" and n < 3 * _XFADE + fps:
        warnings.append("clip too short for a best loop point: used ping-pong")
        loop = "pingpong"
    if loop == "pingpong":
        order = list(range(n)) + list(range(n - 2, 0, -1))
        blends = {}
    else:
        e = best_loop_end(np.stack(thumbs), lm_all, fps)
        order = list(range(_XFADE, e - _XFADE)) + list(range(e - _XFADE, e))
        # the last _XFADE frames fade into the frames before the loop start
        blends = {j: (j - (e - _XFADE), (j - (e - _XFADE) + 1) / (_XFADE + 1)) for j in range(e - _XFADE, e)}
    count = len(order)
    lm_loop = np.empty((count, 468, 3), np.float32)
    for i, j in enumerate(order):
        if j in blends:
            k, a = blends[j]
            lm_loop[i] = (1 - a) * lm_all[j] + a * lm_all[k]
        else:
            lm_loop[i] = lm_all[j]
    _write_loop(fwd_path, tmp / "frames.mp4", order, blends, n, tw, th, fps, progress, fix)
    fwd_path.unlink(missing_ok=True)
    np.save(tmp / "landmarks.npy", lm_loop)
    first = read_frames_at(tmp / "frames.mp4", 0, 1, fps, tw, th)[0]
    palette = sample_palette(first, lm_loop[0])
    name = opts.name or src.stem
    spec = {
        "kind": "video", "name": name, "version": 1,
        "description": f"prepared by dhlive avatar prepare from {src.name} on {date.today().isoformat()}",
        "source": {"file": src.name, "width": vf.width, "height": vf.height, "fps": round(vf.src_fps, 3),
                   "quarter_turns": up.turns,
                   "seconds_used": round(n / fps, 3)},
        "frames": {"file": "frames.mp4", "width": tw, "height": th, "fps": fps, "count": count, "loop": loop,
                   "landmarks": "landmarks.npy"},
        "palette": palette.as_table(),
        "preview": {"file": "preview.png"},
    }
    if bank:
        spec["mouths"] = bank
    write_manifest(tmp / "avatar.toml", spec)
    return PrepareResult("", "video", name, tw, th, fps, count, loop, round(count / fps, 3), palette.as_hex(), warnings)


def _thumb(frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """A tiny grey picture of the face box, for comparing frames when looking for a loop point."""
    x0, y0 = np.maximum(lm[:, :2].min(axis=0).astype(int), 0)
    x1, y1 = lm[:, :2].max(axis=0).astype(int)
    crop = frame[y0 : max(y0 + 2, y1), x0 : max(x0 + 2, x1)]
    g = cv2.cvtColor(cv2.resize(crop, (24, 24), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return g.astype(np.float32)


def best_loop_end(thumbs: np.ndarray, lm: np.ndarray, fps: int) -> int:
    """Frame e where the clip comes back closest to its start (picture, face position, motion)."""
    n = len(thumbs)
    lo = min(n - 1, 2 * _XFADE + fps)  # a loop of at least a second
    size = float(np.ptp(lm[0, :, :2], axis=0).max())
    best, best_d = n - 1, math.inf
    v0 = lm[min(1, n - 1), :, :2] - lm[0, :, :2]
    for e in range(lo, n):
        d_img = float(np.abs(thumbs[e] - thumbs[0]).mean()) / 255.0
        d_pos = float(np.abs(lm[e, :, :2] - lm[0, :, :2]).mean()) / size
        d_vel = float(np.abs((lm[e, :, :2] - lm[e - 1, :, :2]) - v0).mean()) / size
        d = d_img + 2.0 * d_pos + 4.0 * d_vel - 0.002 * e / n  # prefer longer loops on a tie
        if d < best_d:
            best, best_d = e, d
    return best


def _write_loop(fwd: Path, dst: Path, order: list[int], blends: dict, n: int, w: int, h: int, fps: int,
                progress, fix=None) -> None:
    """Encode frames fwd[order[i]] (cross-faded where blends says) to dst, a few frames at a time;
    fix(j, frame) -> frame, when given, changes each source frame first (the neutral mouth)."""
    chunk_of: dict[int, np.ndarray] = {}

    def frame(j: int) -> np.ndarray:
        c = j // _CHUNK
        if c not in chunk_of:
            chunk_of.clear()
            start = c * _CHUNK
            chunk_of[c] = read_frames_at(fwd, start, min(_CHUNK, n - start), fps, w, h)
        f = chunk_of[c][j - c * _CHUNK]
        return fix(j, f) if fix is not None else f

    starts = {}
    # fastdecode (no CABAC, no deblocking): a third less decoder CPU at run time for ~10 % more bytes
    with FrameEncoder(dst, w, h, fps, crf=17, preset="medium", gop=fps, tune="fastdecode") as enc:
        for i, j in enumerate(order):
            if j in blends:
                k, a = blends[j]
                if k not in starts:  # the first frames are needed at the very end: keep a copy
                    starts[k] = frame(k).copy()
                f = frame(j).astype(np.float32) * (1 - a) + starts[k].astype(np.float32) * a
                enc.write(np.clip(f + 0.5, 0, 255).astype(np.uint8))
            else:
                enc.write(frame(j))
            if progress and i % 10 == 0:
                progress(i + 1, len(order), "encoding loop")
