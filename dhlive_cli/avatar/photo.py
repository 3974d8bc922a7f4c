"""Avatars made from a real presenter: a still photo (kind "photo") or a loop video (kind "video").

Both are prepared by ``dhlive avatar prepare`` (dhlive_cli/avatar/prepare.py), which stores the
frames, their face-mesh landmarks and a palette of mouth tones; this module draws them.

Per frame, only the mouth/jaw box is warped (dhlive_cli/avatar/facerig.py: the warp;
warpmaps.py: its maps and the chin's cut) and the inner mouth painted; a photo also gets idle
motion (a slow head sway with breathing, a weighted affine that fades out around the head) and
blinks (an eyelid warp). Everything is a pure function of the frame index and mouth, so one
avatar object serves many sessions and threads; each thread keeps its own scratch buffers (and,
for a video, its own decoder child and reader thread) in a ``threading.local``.

The source is placed in the output frame by ``Fit``: cover the frame when that keeps the face a
sensible size, else scale it smaller, centre it near the face and fill the margins with a
blurred, darkened copy of itself.
"""

from __future__ import annotations

import math
import threading
import weakref
import zlib
from pathlib import Path

import cv2
import numpy as np

from dhlive_cli.avatar import facerig as fr
from dhlive_cli.avatar.fit import Fit, compute_fit, place_source
from dhlive_cli.avatar.warpmaps import WarpScratch, coarse_axis, cut_blend, cut_rows, mouth_displacement, resize_into
from dhlive_cli.avatar import inner_mouth as im
from dhlive_cli.avatar.eyes import EyeGeometry, blink_closure
from dhlive_cli.avatar.motion import breath as breath_offset
from dhlive_cli.avatar.motion import idle_pose
from dhlive_cli.errors import InputError

__all__ = ["Fit", "FaceAvatar", "PhotoAvatar", "VideoAvatar", "compute_fit"]

_HEAD_STRIDE = 16  # idle motion is a near-rigid motion: a very coarse grid is exact enough
_EYES = ((fr.rig_slots(fr.EYE_A_UPPER), fr.rig_slots(fr.EYE_A_LOWER), fr.rig_slots(fr.BROW_A)),
         (fr.rig_slots(fr.EYE_B_UPPER), fr.rig_slots(fr.EYE_B_LOWER), fr.rig_slots(fr.BROW_B)))


class FaceAvatar:
    """What photo and video avatars share: manifest, landmarks, fit, the mouth warp."""

    kind = "face"

    def __init__(self, avatar_dir: str | Path, spec: dict, width: int, height: int, fps: int = 25):
        if int(width) < 64 or int(height) < 64:
            raise InputError(f"frame size {width}x{height} is too small for a photo avatar")
        if int(fps) <= 0:
            raise InputError("fps must be positive")
        self.dir = Path(avatar_dir)
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.name = str(spec.get("name", self.dir.name))
        frames = spec.get("frames")
        if not isinstance(frames, dict):
            raise InputError(f"{self.dir}/avatar.toml: missing [frames] table")
        try:
            self.src_w, self.src_h = int(frames["width"]), int(frames["height"])
            self.count = int(frames["count"])
            self.src_fps = float(frames.get("fps", fps))
            self.frames_file = self.dir / str(frames["file"])
            lm_file = self.dir / str(frames.get("landmarks", "landmarks.npy"))
            self.palette = im.MouthPalette.from_hex(spec["palette"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{self.dir}/avatar.toml: bad or missing entry: {e}") from None
        if not self.frames_file.is_file():
            raise InputError(f"{self.frames_file}: missing (the avatar directory is incomplete)")
        lm = _load_array(lm_file, "a landmark array")
        if lm.dtype.kind != "f" or lm.ndim != 3 or lm.shape[0] != self.count or lm.shape[1] != 468 or lm.shape[2] < 2:
            raise InputError(f"{lm_file}: not a landmark array for this avatar: ({self.count}, 468, 3) float32 "
                             f"expected, found {lm.shape} {lm.dtype} (written by another prepare, or changed)")
        rig = np.asarray(lm[:, fr.RIG_INDEX, :2], np.float64)
        if not np.isfinite(rig).all():
            raise InputError(f"{lm_file}: not a landmark array (it holds NaN or infinite values)")
        # the avatar's identity: its own face geometry, so two avatars never share blinks and sway
        self.identity = zlib.crc32(np.ascontiguousarray(rig[0], np.float32).tobytes())
        oval = rig[:, fr.rig_slots(fr.FACE_OVAL)]
        face_box = (oval[..., 0].min(), oval[..., 1].min(), oval[..., 0].max(), oval[..., 1].max())
        self.bank = self._load_bank(spec.get("mouths"))
        self.fit = compute_fit(self.src_w, self.src_h, face_box, self.width, self.height)
        # (count, K, 2) rig landmarks in output pixels; float32 keeps a long loop's table small
        self.pts = self.fit.apply(rig).astype(np.float32)
        # the last output row that shows the picture (below it: the frame's end or a margin)
        self.bottom = min(self.height, self.fit.oy + self.fit.fh) - 1
        self._tls = threading.local()

    def _load_bank(self, table) -> im.MouthBank | None:
        """The clip's own mouth crops ([mouths] table, prepare.py), or None."""
        if table is None:
            return None
        try:
            path = self.dir / str(table["file"])
            openings = np.asarray([float(v) for v in table["openings"]], np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{self.dir}/avatar.toml: bad [mouths] entry: {e}") from None
        crops = np.asarray(_load_array(path, "an array of mouth pictures"))
        if crops.ndim != 4 or crops.shape[0] != len(openings) or crops.shape[3] != 3 or crops.dtype != np.uint8:
            raise InputError(f"{path}: not an array of mouth pictures for this avatar: ({len(openings)}, rows, cols, 3) "
                             f"uint8 expected, found {crops.shape} {crops.dtype}")
        return im.MouthBank(crops.astype(np.float32), openings)

    def _scratch(self) -> WarpScratch:
        sc = getattr(self._tls, "sc", None)
        if sc is None:
            sc = self._tls.sc = WarpScratch()
        return sc

    def _check_out(self, out: np.ndarray) -> None:
        if out.shape != (self.height, self.width, 3) or out.dtype != np.uint8:
            raise ValueError(f"out must be ({self.height}, {self.width}, 3) uint8, got {out.shape} {out.dtype}")

    def mouth_warp(self, pts: np.ndarray, mouth) -> fr.MouthWarp:
        g = fr.MouthGeometry.from_points(pts, self.width, self.height)
        return fr.MouthWarp(g, fr.MouthPose.from_shape(g, mouth.open, mouth.spread, mouth.round, mouth.close))

    def warm(self) -> None:
        """Allocate this thread's scratch now (call from the thread that will render)."""
        self._scratch()

    def close(self) -> None:
        pass


def _load_array(path: Path, what: str) -> np.ndarray:
    """np.load(path) (memory-mapped, read-only; never pickles): any file that is not a .npy
    array (text, a pickle, a cut file, a folder) is one InputError naming it, not numpy's words."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: missing (the avatar directory is incomplete)") from None
    except PermissionError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except (OSError, ValueError, EOFError):
        raise InputError(f"{path}: not {what} (corrupt or not written by dhlive avatar prepare)") from None


# --------------------------------------------------------------------------- photo


class PhotoAvatar(FaceAvatar):
    """A still photo brought to life: mouth warp, head sway with breathing, blinks."""

    kind = "photo"

    def __init__(self, avatar_dir, spec: dict, width: int, height: int, fps: int = 25):
        super().__init__(avatar_dir, spec, width, height, fps)
        if self.count != 1:
            raise InputError(f"{self.dir}/avatar.toml: a photo avatar has 1 frame, not {self.count}")
        from dhlive_cli.avatar.stills import read_image

        src = read_image(self.frames_file)
        if src.shape[:2] != (self.src_h, self.src_w):
            raise InputError(f"{self.frames_file}: is {src.shape[1]}x{src.shape[0]}, the manifest says "
                             f"{self.src_w}x{self.src_h}")
        base = np.zeros((self.height, self.width, 3), np.uint8)
        place_source(src, self.fit, base)
        self._base = base
        motion = spec.get("motion", {}) if isinstance(spec.get("motion", {}), dict) else {}
        self._motion(motion)
        self._head_setup()

    def _motion(self, m: dict) -> None:
        try:
            seed = int(m.get("seed", 7))
            lo, hi = (float(v) for v in m.get("blink_interval_s", (2.4, 5.6)))
            self.blink_ms = float(m.get("blink_ms", 180.0))
            self.sway = float(m.get("sway", 1.0))
        except (TypeError, ValueError) as e:
            raise InputError(f"{self.dir}/avatar.toml: bad [motion] value: {e}") from None
        if not (1.0 <= lo <= hi <= 20.0) or not (60.0 <= self.blink_ms <= 400.0):
            raise InputError(f"{self.dir}/avatar.toml: [motion] blink_interval_s or blink_ms out of range")
        rng = np.random.default_rng([seed & 0xFFFFFFFF, self.identity])
        fps = self.fps
        gaps = np.clip(np.round(rng.uniform(lo, hi, 64) * fps).astype(np.int64), max(2, int(fps * 0.5)), None)
        self._blink_first = int(round(rng.uniform(0.8, 2.0) * fps))
        self._blink_starts = tuple(int(v) for v in np.concatenate([[0], np.cumsum(gaps)[:-1]]))
        self._blink_period = int(gaps.sum())
        self._phases = tuple(float(v) for v in rng.uniform(0, 2 * math.pi, 8))

    def _head_setup(self) -> None:
        pts = self.pts[0].astype(np.float64)
        oval = pts[fr.rig_slots(fr.FACE_OVAL)]
        x0, y0 = oval.min(axis=0)
        x1, y1 = oval.max(axis=0)
        self._hc = (float(0.5 * (x0 + x1)), float(0.5 * (y0 + y1)))
        self._hr = (max(4.0, float(0.5 * (x1 - x0))), max(4.0, float(0.5 * (y1 - y0))))
        self._pivot = (self._hc[0], self._hc[1] + 1.3 * self._hr[1])
        fh = 2.0 * self._hr[1]
        self._tilt = math.radians(0.8) * self.sway
        self._sway_px = 0.006 * fh * self.sway
        self._bob_px = 0.003 * fh * self.sway
        self._breath_px = 0.005 * fh * self.sway
        r_out = 1.85
        bx0 = self._hc[0] - r_out * self._hr[0]
        bx1 = self._hc[0] + r_out * self._hr[0]
        by0 = self._hc[1] - r_out * self._hr[1]
        by1 = self._hc[1] + r_out * self._hr[1]
        # the mouth warp box (at its widest opening) and the eyes must lie inside the head box
        g = fr.MouthGeometry.from_points(pts, self.width, self.height)
        mb = g.box
        pad = 4 + self._sway_px + self._breath_px + self._bob_px + self._tilt * 2 * self._hr[1]
        bx0, by0 = min(bx0, mb[0] - pad), min(by0, mb[1] - pad)
        bx1, by1 = max(bx1, mb[2] + pad), max(by1, mb[3] + pad + 0.6 * g.hw)
        self.head_box = (max(0, int(bx0)), max(0, int(by0)), min(self.width, int(math.ceil(bx1))),
                         min(self.height, int(math.ceil(by1))))
        hx0, hy0, hx1, hy1 = self.head_box
        w, h = hx1 - hx0, hy1 - hy0
        xs = coarse_axis(hx0, w, _HEAD_STRIDE).astype(np.float64)
        ys = coarse_axis(hy0, h, _HEAD_STRIDE).astype(np.float64)
        X, Y = np.meshgrid(xs, ys)
        self._hgx = (X - self._pivot[0]).astype(np.float32)
        self._hgy = (Y - self._pivot[1]).astype(np.float32)
        self._hgw = self._head_weight(X, Y).astype(np.float32)
        self._ident_x = np.arange(hx0, hx1, dtype=np.float32)[None, :]
        self._ident_y = np.arange(hy0, hy1, dtype=np.float32)[:, None]

    def _head_weight(self, x, y):
        r = np.sqrt(((x - self._hc[0]) / self._hr[0]) ** 2 + ((y - self._hc[1]) / self._hr[1]) ** 2)
        return 1.0 - fr.smoothstep((r - 1.2) / 0.65)

    def pose(self, frame_index: int) -> tuple[float, float, float]:
        """(tilt radians, dx, dy) of the head at a frame: slow sums of sines plus breathing."""
        t = int(frame_index) / self.fps
        tilt, dx, dy = idle_pose(t, self._phases, self._tilt, self._sway_px, self._bob_px)
        return tilt, dx, dy - breath_offset(t, self._phases[6], 0.25, self._breath_px)

    def blink_closure(self, frame_index: int) -> float:
        return blink_closure(frame_index, self.fps, self._blink_starts, self._blink_period, self._blink_first,
                                self.blink_ms)

    def frame_points(self, frame_index: int) -> np.ndarray:
        """The rig landmarks of a frame in output pixels (the head moved by its idle motion)."""
        tilt, tx, ty = self.pose(frame_index)
        c, s = math.cos(tilt) - 1.0, math.sin(tilt)
        p = self.pts[0].astype(np.float64)
        qx, qy = p[:, 0] - self._pivot[0], p[:, 1] - self._pivot[1]
        w = self._head_weight(p[:, 0], p[:, 1])
        out = p.copy()
        out[:, 0] += w * (c * qx - s * qy + tx)
        out[:, 1] += w * (s * qx + c * qy + ty)
        return out

    def mouth_box(self, frame_index: int = 0) -> tuple[int, int, int, int]:
        """The box the mouth warp may touch at this frame (the jaw included)."""
        return fr.MouthGeometry.from_points(self.frame_points(frame_index), self.width, self.height).box

    def render(self, out: np.ndarray, frame_index: int, mouth, fresh: bool = True) -> None:
        """Draw frame `frame_index` into out (H, W, 3) uint8 BGR, preallocated by the caller."""
        self._check_out(out)
        if fresh:
            np.copyto(out, self._base)  # outside the head box nothing ever moves
        sc = self._scratch()
        hx0, hy0, hx1, hy1 = self.head_box
        w, h = hx1 - hx0, hy1 - hy0
        mx, my = sc.maps(h, w)
        # idle motion, backward: s = p - w(p) * ((R - I)(p - pivot) + t)
        tilt, tx, ty = self.pose(frame_index)
        c, s = math.cos(tilt) - 1.0, math.sin(tilt)
        gx, gy, gw = self._hgx, self._hgy, self._hgw
        c, s, tx, ty = np.float32(c), np.float32(s), np.float32(tx), np.float32(ty)
        resize_into(gw * (c * gx - s * gy + tx), mx)
        resize_into(gw * (s * gx + c * gy + ty), my)
        np.subtract(self._ident_x, mx, out=mx)
        np.subtract(self._ident_y, my, out=my)
        pts = self.frame_points(frame_index)
        # mouth and jaw
        warp = self.mouth_warp(pts, mouth)
        g = warp.g
        x0, y0, x1, y1 = g.box
        x0, y0, x1, y1 = max(x0, hx0), max(y0, hy0), min(x1, hx1), min(y1, hy1)
        dx, dy, keep = mouth_displacement(g, warp, sc, self.bottom)
        ox, oy = x0 - g.box[0], y0 - g.box[1]
        cut = own = None
        if keep is not None:
            keep = keep[oy : oy + y1 - y0, ox : ox + x1 - x0]
            cut = cut_rows(keep)
        if cut is not None:  # the head-moved picture without the jaw, where the chin is cut
            r0, r1 = cut
            own = sc.own(r1 - r0, x1 - x0)
            # fixed point like the frame's own remap below, so a pixel left wholly to the neck is
            # the same as in a frame whose jaw does not move
            f1, f2 = cv2.convertMaps(mx[y0 - hy0 + r0 : y0 - hy0 + r1, x0 - hx0 : x1 - hx0],
                                     my[y0 - hy0 + r0 : y0 - hy0 + r1, x0 - hx0 : x1 - hx0], cv2.CV_16SC2)
            cv2.remap(self._base, f1, f2, cv2.INTER_LINEAR, dst=own, borderMode=cv2.BORDER_REPLICATE)
        mx[y0 - hy0 : y1 - hy0, x0 - hx0 : x1 - hx0] += dx[oy : oy + y1 - y0, ox : ox + x1 - x0]
        my[y0 - hy0 : y1 - hy0, x0 - hx0 : x1 - hx0] += dy[oy : oy + y1 - y0, ox : ox + x1 - x0]
        # blinks
        closure = self.blink_closure(frame_index)
        if closure > 0.01:
            for up, lo, brow in _EYES:
                eg = EyeGeometry.from_points(pts[up], pts[lo], pts[brow], self.width, self.height)
                ex0, ey0, ex1, ey1 = eg.box
                ex0, ey0, ex1, ey1 = max(ex0, hx0), max(ey0, hy0), min(ex1, hx1), min(ey1, hy1)
                if ex1 <= ex0 or ey1 <= ey0:
                    continue
                edx, edy = sc.eye(ey1 - ey0, ex1 - ex0)
                X, Y = np.meshgrid(np.arange(ex0, ex1, dtype=np.float32), np.arange(ey0, ey1, dtype=np.float32))
                eg.displacement(X, Y, closure, edx, edy)
                mx[ey0 - hy0 : ey1 - hy0, ex0 - hx0 : ex1 - hx0] += edx
                my[ey0 - hy0 : ey1 - hy0, ex0 - hx0 : ex1 - hx0] += edy
        m1, m2 = sc.fixed(h, w)
        cv2.convertMaps(mx, my, cv2.CV_16SC2, dstmap1=m1, dstmap2=m2)  # fixed-point remap is faster
        cv2.remap(self._base, m1, m2, cv2.INTER_LINEAR, dst=out[hy0:hy1, hx0:hx1], borderMode=cv2.BORDER_REPLICATE)
        if cut is not None:
            r0, r1 = cut
            cut_blend(out[y0 + r0 : y0 + r1, x0:x1], own, keep[r0:r1])
        im.draw_inner_mouth(out, warp, self.palette, frame_index, self.bank)


# --------------------------------------------------------------------------- video


class VideoAvatar(FaceAvatar):
    """A loop video of a presenter: frames streamed from frames.mp4, the mouth warped per frame."""

    kind = "video"

    def __init__(self, avatar_dir, spec: dict, width: int, height: int, fps: int = 25):
        super().__init__(avatar_dir, spec, width, height, fps)
        if self.count < 2:
            raise InputError(f"{self.dir}/avatar.toml: a video avatar needs at least 2 frames")
        from dhlive_cli.avatar.integrity import check_avatar_video
        from dhlive_cli.avatar.media import read_frames_at
        from dhlive_cli.errors import EngineError

        # a loop video cut short (or another clip's) would loop the frames left: refused at load
        check_avatar_video(self.frames_file, self.count, self.src_fps, self.src_w, self.src_h)
        try:  # a missing or corrupt loop video is the user's input error, found at load time
            read_frames_at(self.frames_file, 0, 1, int(round(self.src_fps)), self.src_w, self.src_h)
        except EngineError as e:
            raise InputError(f"{self.frames_file}: cannot decode the avatar video ({e})") from None
        self._decoders: weakref.WeakSet = weakref.WeakSet()
        self._dec_lock = threading.Lock()
        # each loop frame's mouth geometry, made on first use (a few kB each; read-only once made,
        # so sessions and threads share them; a race only makes the same one twice)
        self._geoms: dict[int, fr.MouthGeometry] = {}

    def _filters(self, stream):
        """ffmpeg filters putting one source frame in the output frame, as place_source does."""
        f = self.fit
        W, H = self.width, self.height
        if not f.fill:
            if (f.fw, f.fh) != (self.src_w, self.src_h):
                stream = stream.filter("scale", f.fw, f.fh, flags="bilinear")
            return stream.filter("crop", W, H, -f.ox, -f.oy)
        split = stream.filter_multi_output("split")
        fg = split[0].filter("scale", f.fw, f.fh, flags="bilinear")
        s = max(W / self.src_w, H / self.src_h)
        cw, ch = int(round(self.src_w * s)), int(round(self.src_h * s))
        bg = (split[1].filter("scale", max(2, cw // 8), max(2, ch // 8), flags="area")
              .filter("gblur", sigma=3).filter("scale", cw, ch, flags="bilinear")
              .filter("crop", W, H, (cw - W) // 2, (ch - H) // 2)
              .filter("colorchannelmixer", rr=0.55, gg=0.55, bb=0.55))
        return bg.overlay(fg, x=f.ox, y=f.oy)

    def _decoder(self):
        from dhlive_cli.avatar.media import LoopDecoder

        d = getattr(self._tls, "dec", None)
        if d is None:
            d = self._tls.dec = LoopDecoder(self.frames_file, self.count, self.src_fps, self.width, self.height,
                                            self._filters)
            with self._dec_lock:
                self._decoders.add(d)
        return d

    def position(self, frame_index: int) -> int:
        """Frame of the loop file shown at an output frame (the file is the whole loop)."""
        if abs(self.src_fps - self.fps) < 1e-6:
            return int(frame_index) % self.count
        return int(int(frame_index) * self.src_fps / self.fps) % self.count

    def frame_points(self, frame_index: int) -> np.ndarray:
        return self.pts[self.position(frame_index)].astype(np.float64)

    def mouth_box(self, frame_index: int = 0) -> tuple[int, int, int, int]:
        return fr.MouthGeometry.from_points(self.frame_points(frame_index), self.width, self.height).box

    def render(self, out: np.ndarray, frame_index: int, mouth, fresh: bool = True) -> None:
        """Draw frame `frame_index` into out (H, W, 3) uint8 BGR, preallocated by the caller."""
        self._check_out(out)
        pos = self.position(frame_index)
        frame = self._decoder().read(pos)
        np.copyto(out, frame)
        sc = self._scratch()
        g = self._geoms.get(pos)
        if g is None:
            g = self._geoms[pos] = fr.MouthGeometry.from_points(self.pts[pos].astype(np.float64), self.width,
                                                                  self.height)
        warp = fr.MouthWarp(g, fr.MouthPose.from_shape(g, mouth.open, mouth.spread, mouth.round, mouth.close))
        x0, y0, x1, y1 = g.box
        dx, dy, keep = mouth_displacement(g, warp, sc, self.bottom)
        mx, my = sc.maps(y1 - y0, x1 - x0)
        np.add(dx, np.arange(x0, x1, dtype=np.float32)[None, :], out=mx)
        np.add(dy, np.arange(y0, y1, dtype=np.float32)[:, None], out=my)
        cv2.remap(frame, mx, my, cv2.INTER_LINEAR, dst=out[y0:y1, x0:x1], borderMode=cv2.BORDER_REPLICATE)
        cut = None if keep is None else cut_rows(keep)
        if cut is not None:  # where the chin is cut, the frame's own picture shows through
            r0, r1 = cut
            cut_blend(out[y0 + r0 : y0 + r1, x0:x1], frame[y0 + r0 : y0 + r1, x0:x1], keep[r0:r1])
        im.draw_inner_mouth(out, warp, self.palette, frame_index, self.bank)

    def warm(self) -> None:
        """Start this thread's decoder child now: otherwise the first frame waits ~0.1 s for it."""
        self._scratch()
        self._decoder().read(0)

    def close(self) -> None:
        """Stop every decoder child now (they also stop when their thread ends)."""
        with self._dec_lock:
            decs = list(self._decoders)
        for d in decs:
            d.close()
