"""The built-in avatar: a stylised person drawn by our own code with OpenCV, at any frame size.

Everything that does not depend on the mouth is painted once per size in ``DrawnAvatar.__init__``
(in float32, with soft shading), then frozen into uint8 layers:

- ``_static``   the full-frame background (a vertical gradient, so small vertical shifts of the
                body rectangle and any horizontal motion of the head leave it unchanged: no seams);
- ``_base``     background + back hair + neck + clothed torso, a few rows taller than needed so
                breathing is two row-offset views blended with ``cv2.addWeighted``;
- ``_sprite``   the whole rest-pose picture cropped to the head, with a feathered alpha that is 1
                on face, ears and hair and fades out down the neck, so a tilted head bends the
                neck instead of tearing it;
- ``_eye_variants`` the eye area of the sprite repainted at a few eyelid closures, so a blink is
                an exact, fully shaded patch instead of a skin-coloured overlay.

The sprite and the eye variants are then packed with their alpha as premultiplied BGRA
(``_head4``, ``_eyes4``; see ``_pack_head``), which is what the disk cache keeps and render reads.

``render`` only warps the head, blends it, and draws the lips and mouth interior at the warped
position (after the warp: a mouth warped with the head came out visibly softer at 360p); its
motion (blinks, breathing, sway) is a pure function of the frame index, so one object can be
shared by many sessions and threads. Per-thread scratch buffers are held in a ``threading.local``
and allocated once per thread.

Modules: this one lays out, moves and draws per frame; drawn_paint.py (background, body) and
drawn_head.py (head sprite, eyes) paint the layers once; drawn_mouth.py draws the mouth;
drawn_style.py has the shared types.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import random
import threading
import tomllib
from pathlib import Path

import cv2
import numpy as np

from dhlive_cli.avatar.drawn_head import HeadPainter
from dhlive_cli.avatar.drawn_mouth import MouthPainter
from dhlive_cli.avatar.drawn_paint import BodyPainter
from dhlive_cli.avatar.drawn_style import REST_MOUTH  # noqa: F401 - part of this module's interface
from dhlive_cli.avatar.drawn_style import _EYE_LEVELS, DrawnStyle, MouthShape
from dhlive_cli.avatar.motion import breath as breath_offset
from dhlive_cli.avatar.motion import idle_pose
from dhlive_cli.compositor import i420_planes
from dhlive_cli.errors import InputError

__all__ = ["DrawnAvatar", "DrawnStyle", "MouthShape"]


class DrawnAvatar(BodyPainter, HeadPainter, MouthPainter):
    """A drawn head-and-shoulders person; see the module docstring for the layer scheme."""

    kind = "drawn"

    def __init__(self, spec: dict, width: int, height: int, fps: int = 25):
        if int(width) < 32 or int(height) < 32:
            raise InputError(f"frame size {width}x{height} is too small for the drawn avatar")
        if int(fps) <= 0:
            raise InputError("fps must be positive")
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.style = DrawnStyle.from_spec(spec or {})
        self.name = str((spec or {}).get("name", "drawn"))
        self._tls = threading.local()
        self._layout()
        self._motion_tables()
        self._layers(spec or {})
        self._base_i420 = self._body_planes()
        self._sprite_corners = self._opaque_corners()
        self._mouth_tables()

    @classmethod
    def load(cls, avatar_dir: str | os.PathLike, width: int, height: int, fps: int = 25) -> "DrawnAvatar":
        path = Path(avatar_dir) / "avatar.toml"
        try:
            with open(path, "rb") as f:
                spec = tomllib.load(f)
        except FileNotFoundError:
            raise InputError(f"no avatar.toml in {avatar_dir}") from None
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path}: {e}") from None
        if spec.get("kind", "drawn") != "drawn":
            raise InputError(f"{path}: kind={spec.get('kind')!r} is not a drawn avatar")
        return cls(spec, width, height, fps)

    # ------------------------------------------------------------------ painted layers, cached

    _PAINT_SOURCES = ("drawn.py", "drawn_style.py", "drawn_paint.py", "drawn_head.py", "drawn_mouth.py")

    def _layers(self, spec: dict) -> None:
        """The prerendered layers from the disk cache (avatar/layer_cache.py), else painted and stored."""
        from dhlive_cli.avatar import layer_cache

        here = Path(__file__).resolve().parent
        key = layer_cache.layer_key([here / n for n in self._PAINT_SOURCES], spec, self.width, self.height)
        got = layer_cache.load(key)
        if got is not None and self._adopt_layers(got):
            return
        self._prerender()
        self._mouth_bounds()
        self._pack_head()
        meta = np.array([self._pad, *self._hrect, *self._brect, *self._eye_rect, self._eye_margin, *self._eye_area,
                         *self._mouth_box], np.int64)
        # the head is stored packed (premultiplied BGRA): a load does no arithmetic on it
        arrays = {"static": self._static, "base": self._base, "head4": self._head4, "meta": meta}
        arrays.update({f"eye4_{i}": v for i, v in enumerate(self._eyes4)})
        layer_cache.save(key, arrays)

    def _adopt_layers(self, z: dict) -> bool:
        try:
            meta = [int(v) for v in z["meta"]]
            eyes = tuple(z[f"eye4_{i}"] for i in range(_EYE_LEVELS))
            static, base, head4 = z["static"], z["base"], z["head4"]
        except KeyError:
            return False
        if len(meta) != 22 or static.shape != (self.height, self.width, 3) or static.dtype != np.uint8:
            return False
        hx0, hy0, hx1, hy1 = meta[1:5]
        bx0, by0, bx1, by1 = meta[5:9]
        ex0, ey0, ex1, ey1 = meta[9:13]
        # a cache entry of another layout is painted again, never drawn from
        shapes = [(head4, (hy1 - hy0, hx1 - hx0, 4)), *((e, (ey1 - ey0, ex1 - ex0, 4)) for e in eyes)]
        if any(a.shape != want or a.dtype != np.uint8 for a, want in shapes):
            return False
        if base.dtype != np.uint8 or base.ndim != 3 or base.shape[1:] != (bx1 - bx0, 3) or \
                base.shape[0] < by1 - by0 + math.ceil(self.breath_px) + 1:
            return False
        self._pad = meta[0]
        self._hrect, self._brect, self._eye_rect = tuple(meta[1:5]), tuple(meta[5:9]), tuple(meta[9:13])
        self._eye_margin, self._eye_area = meta[13], tuple(meta[14:18])
        self._mouth_y, self._mouth_box = self._mouth_level(), tuple(meta[18:22])
        self._static, self._base, self._head4, self._eyes4 = static, base, head4, eyes
        for arr in (static, base, head4, *eyes):
            arr.flags.writeable = False
        return True

    def _pack_head(self) -> None:
        """The head sprite and its alpha as one BGRA uint8 image (alpha 0..255), and each eyelid
        variant with the sprite's alpha over its area: one warp per frame moves colour and alpha
        together. OpenCV's bilinear warp has a vectorised path for 4-channel uint8 but not for 3:
        measured at 360p (172x201 px, one thread), BGR uint8 0.27 ms + float32 alpha 0.07 ms
        against BGRA 0.16 ms. The warp repeats the sprite's edge, colour and alpha, past its border:
        where the sprite lies inside the frame its outer rows and columns have alpha 0, the same as
        a zero border; where the frame cuts the head (a large head_scale), a head moving away from
        that edge shows more of itself there, not a gap of background.

        The colour is stored premultiplied by alpha (colour x alpha / 255, rounded): interpolating
        premultiplied colour is the correct way to resample an image with alpha (Porter & Duff,
        "Compositing Digital Images", 1984; the straight colours of the sprite's transparent
        pixels, the rest-pose background, no longer bleed into its edge), and the blend becomes
        three uint8 OpenCV calls instead of a float one: 1.3 -> 0.8 ms for warp and blend at 720p
        (one thread, medians over 500 frames)."""
        hx0, hy0 = self._hrect[:2]
        a8 = np.clip(self._alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        ex0, ey0, ex1, ey1 = self._eye_rect
        ea = a8[ey0 - hy0 : ey1 - hy0, ex0 - hx0 : ex1 - hx0]
        self._head4 = _premultiplied(self._sprite, a8)
        self._eyes4 = tuple(_premultiplied(v, ea) for v in self._eye_variants)
        for arr in (self._head4, *self._eyes4):
            arr.flags.writeable = False
        # render reads only the packed copies (the layer cache was written before this)
        self._sprite = self._alpha = self._eye_variants = None

    # ------------------------------------------------------------------ layout and motion

    def _layout(self) -> None:
        W, H, st = self.width, self.height, self.style
        # One scale for every proportion: the frame height, unless a narrow portrait frame
        # would crop the head, then the width decides.
        S = min(H, 1.5 * W) * st.head_scale
        self.S = S
        self.cx = W / 2.0
        fh = 0.195 * st.face_length
        # Anchor the chin so the torso reaches the bottom edge, but keep the head near the top
        # third in tall portrait frames instead of floating in empty background.
        chin = min(H - 0.40 * S, 0.12 * H + 0.47 * S)
        self.fy = chin - fh * S  # face centre
        self.fw, self.fh = 0.142 * st.face_width, fh
        self.chin_y = chin
        self.neck_base_y = chin + 0.065 * S
        self.pivot = (self.cx, chin - 0.02 * S)
        # Idle motion amplitudes (pixels / radians).
        self.breath_px = 0.0045 * S * st.breath_amount
        self.sway_px = 0.0055 * S * st.sway_amount
        self.bob_px = 0.0025 * S * st.sway_amount
        self.tilt_rad = math.radians(1.7) * st.sway_amount

    def P(self, x, y) -> np.ndarray:
        """Head-local units of S around the face centre -> rest-pose pixels."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        return np.stack([self.cx + x * self.S, self.fy + y * self.S], axis=-1)

    def _motion_tables(self) -> None:
        st, fps = self.style, self.fps
        # the standard library's generator: importing numpy.random for these 73 numbers was
        # 13-18 ms of every render's start (python -X importtime)
        rng = random.Random(st.seed)
        lo, hi = st.blink_interval_s
        shortest, longest = math.ceil(2.0 * fps), math.floor(6.0 * fps)
        gaps = [min(max(round(rng.uniform(lo, hi) * fps), shortest), longest) for _ in range(64)]
        self._blink_first = int(round(rng.uniform(0.8, 2.0) * fps))
        self._blink_starts = (0, *itertools.accumulate(gaps[:-1]))
        self._blink_period = sum(gaps)
        self._phases = tuple(rng.uniform(0, 2 * math.pi) for _ in range(8))

    def blink_closure(self, frame_index: int) -> float:
        """Eyelid closure in [0, 1] at a frame (0 = open); a pure function of the index."""
        phase = (int(frame_index) - self._blink_first) % self._blink_period
        j = bisect.bisect_right(self._blink_starts, phase) - 1
        t = (phase - self._blink_starts[j]) / self.fps
        d = self.style.blink_ms / 1000.0
        tc, th = 0.38 * d, 0.10 * d
        to = d - tc - th

        def ease(u):
            u = min(1.0, max(0.0, u))
            return u * u * (3 - 2 * u)

        if t < tc:
            return ease(t / tc)
        if t < tc + th:
            return 1.0
        if t < d:
            return 1.0 - ease((t - tc - th) / to)
        return 0.0

    def pose(self, frame_index: int) -> tuple[float, float, float, float]:
        """(tilt radians, dx, dy, breath) at a frame: slow sums of sines, seeded phases."""
        t = int(frame_index) / self.fps
        tilt, dx, dy = idle_pose(t, self._phases, self.tilt_rad, self.sway_px, self.bob_px)
        return tilt, dx, dy, breath_offset(t, self._phases[6], self.style.breath_hz, self.breath_px)

    def _head_matrix(self, frame_index: int) -> np.ndarray:
        """2x3 affine taking rest-pose pixels to this frame's pixels for the head."""
        tilt, dx, dy, breath = self.pose(frame_index)
        c, s = math.cos(tilt), math.sin(tilt)
        px, py = self.pivot
        return np.array(
            [
                [c, -s, px - c * px + s * py + dx],
                [s, c, py - s * px - c * py + dy - breath],
            ],
            np.float64,
        )

    def _max_disp(self, radius: float) -> float:
        return self.tilt_rad * radius + self.sway_px + self.bob_px + self.breath_px + 1.0

    # ------------------------------------------------------------------ prerender

    @property
    def dynamic_boxes(self) -> tuple[tuple[int, int, int, int], ...]:
        """Pixel boxes (x0, y0, x1, y1) outside of which render(fresh=False) changes nothing:
        the breathing body and the moving head (the mouth and eyes lie inside the head's box)."""
        return (tuple(self._brect), tuple(self._hrect))

    def mouth_box(self) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 covering everything the mouth can draw, at any pose."""
        return self._mouth_box

    def eye_box(self) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 covering both eyes (whites, irises, lids) at any pose, for tests/metrics."""
        xs, ys = [], []
        for sg in (-1, 1):
            x, up, low, _ = self._eye_geometry(sg, 0.0)
            pts = self.P(x, np.concatenate([up[None], low[None]]))
            xs.append(pts[..., 0])
            ys.append(pts[..., 1])
        d = self._max_disp(abs(float(np.min(ys)) - self.pivot[1]) + 0.1 * self.S) + 2
        return (
            max(0, int(np.min(xs) - d)),
            max(0, int(np.min(ys) - d)),
            min(self.width, int(np.max(xs) + d) + 1),
            min(self.height, int(np.max(ys) + d) + 1),
        )

    # ------------------------------------------------------------------ per frame

    def _scratch(self):
        s = getattr(self._tls, "bufs", None)
        if s is None:
            hx0, hy0, hx1, hy1 = self._hrect
            h, w = hy1 - hy0, hx1 - hx0
            s = (np.empty((h, w, 4), np.uint8), np.empty((h, w, 3), np.uint8), np.empty((h, w), np.uint8),
                 np.empty((h, w, 3), np.uint8))
            self._tls.bufs = s
        return s

    def _body_planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The base layer as I420 planes (Y, U, V; read-only), or None when the body's
        rectangle or the frame is not even-aligned (then render_i420 is not offered)."""
        bx0, by0, bx1, by1 = self._brect
        rows, cols = self._base.shape[:2]
        if any(v % 2 for v in (bx0, by0, bx1, by1, rows, cols, self.width, self.height)) or not rows * cols:
            return None
        planes = i420_planes(cv2.cvtColor(self._base, cv2.COLOR_BGR2YUV_I420))
        for p in planes:
            p.flags.writeable = False
        return planes

    def _opaque_corners(self) -> np.ndarray | None:
        """The corners (4, 2) float64, rest-pose pixels, of the box around the head sprite's
        pixels with alpha > 0; None when they reach its edge (the warp repeats the edge there,
        so the whole head box can be covered). render warps and blends only where this box
        lands in each frame (the head box also holds the room the head may move into)."""
        a = self._head4[..., 3]
        rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
        if not len(rows):
            return None
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if y0 == 0 or x0 == 0 or y1 == a.shape[0] or x1 == a.shape[1]:
            return None
        hx0, hy0 = self._hrect[:2]
        return np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) + (hx0, hy0)

    def _warp_box(self, M: np.ndarray) -> tuple[int, int, int, int]:
        """The part of the head box (x0, y0, x1, y1, frame pixels) the sprite's visible pixels
        reach under M, with 2 pixels for the bilinear kernel; the whole head box without corners."""
        hx0, hy0, hx1, hy1 = self._hrect
        c = self._sprite_corners
        if c is None:
            return hx0, hy0, hx1, hy1
        p = c @ M[:, :2].T + M[:, 2]
        return (max(hx0, int(p[:, 0].min()) - 2), max(hy0, int(p[:, 1].min()) - 2),
                min(hx1, int(p[:, 0].max()) + 3), min(hy1, int(p[:, 1].max()) + 3))

    @property
    def i420_boxes(self) -> tuple[tuple[int, int, int, int], ...]:
        """The dynamic boxes render_i420 writes straight into an I420 frame: the breathing body
        (even-aligned; the head's box, which overlaps it, still comes from render's BGR), or none."""
        return () if self._base_i420 is None else (tuple(self._brect),)

    def render_i420(self, out: np.ndarray, frame_index: int) -> None:
        """The body rectangle of frame `frame_index` into out, an I420 frame (height * 3 / 2,
        width) uint8 (compositor.i420_shape): the base layer's own I420 planes shifted by the
        breath, as render shifts its BGR rows (Y by the breath, U and V by half of it: their rows
        are two pixel rows high). Against converting render's BGR body: luma within 1-2 grey
        levels; chroma, shifted at half resolution, up to ~14 levels off along the clothes' and
        shoulders' horizontal edges (above 60 dB over the frame; tests/test_yuv.py). It costs a
        quarter of that (no BGR blend, no conversion): 720p 0.43 -> 0.1 ms."""
        if out.shape != (self.height * 3 // 2, self.width) or out.dtype != np.uint8:
            raise ValueError(f"out must be ({self.height * 3 // 2}, {self.width}) uint8, got {out.shape} {out.dtype}")
        if self._base_i420 is None:
            raise ValueError("this avatar size has no I420 body (i420_boxes is empty)")
        bx0, by0, bx1, by1 = self._brect
        if by1 <= by0:
            return
        y_plane, u_plane, v_plane = i420_planes(out)
        yb, ub, vb = self._base_i420
        breath = self.pose(frame_index)[3]
        _shifted(yb, breath, y_plane[by0:by1, bx0:bx1])
        _shifted(ub, breath / 2, u_plane[by0 // 2 : by1 // 2, bx0 // 2 : bx1 // 2])
        _shifted(vb, breath / 2, v_plane[by0 // 2 : by1 // 2, bx0 // 2 : bx1 // 2])

    def render(self, out: np.ndarray, frame_index: int, mouth: MouthShape, fresh: bool = True,
               native_i420: bool = False) -> None:
        """Draw frame `frame_index` into out (H, W, 3) uint8 BGR, C-contiguous, preallocated by the caller.
        native_i420: the caller writes this frame's i420_boxes with render_i420; out then needs
        the body only under the head (the head is blended over it) and its other rows are left
        as they were."""
        if out.shape != (self.height, self.width, 3) or out.dtype != np.uint8:
            raise ValueError(f"out must be ({self.height}, {self.width}, 3) uint8, got {out.shape} {out.dtype}")
        if fresh:
            np.copyto(out, self._static)

        # breathing: the body rectangle is a sub-pixel vertical shift of the base layer
        breath = self.pose(frame_index)[3]
        bx0, by0, bx1, by1 = self._brect
        hx0, hy0, hx1, hy1 = self._hrect
        # rows and columns of the body drawn here: all of it, or (native_i420) what the head's
        # box covers, grown to even coordinates as the Composer converts it (the body's box is
        # even and holds the head's columns)
        if native_i420:
            r0, r1 = max(by0, hy0 - hy0 % 2), min(by1, hy1 + hy1 % 2)
            c0, c1 = max(bx0, hx0 - hx0 % 2), min(bx1, hx1 + hx1 % 2)
        else:
            r0, r1, c0, c1 = by0, by1, bx0, bx1
        if r1 > r0:
            _shifted(self._base[r0 - by0 :, c0 - bx0 : c1 - bx0], breath, out[r0:r1, c0:c1])

        if hy0 < by0:
            top = min(by0, hy1)
            np.copyto(out[hy0:top, hx0:hx1], self._static[hy0:top, hx0:hx1])

        M = self._head_matrix(frame_index)
        # only where the sprite's visible pixels land this frame (see _opaque_corners)
        wx0, wy0, wx1, wy1 = self._warp_box(M)
        Ml = M.copy()
        Ml[:, 2] += M[:, :2] @ (hx0, hy0) - (wx0, wy0)
        head4, spr4, inv4, inv34 = self._scratch()
        sub = (slice(wy0 - hy0, wy1 - hy0), slice(wx0 - hx0, wx1 - hx0))
        head, spr, inv, inv3 = head4[sub], spr4[sub], inv4[sub], inv34[sub]
        h, w = spr.shape[:2]
        cv2.warpAffine(self._head4, Ml, (w, h), dst=head, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        level = int(round(self.blink_closure(frame_index) * (_EYE_LEVELS - 1)))
        if level:
            ex0, ey0, ex1, ey1 = self._eye_rect
            dm = self._eye_margin
            # the eyes lie well inside the visible sprite: clipped to the warped part anyway
            d0x, d0y, d1x, d1y = max(ex0 + dm, wx0), max(ey0 + dm, wy0), min(ex1 - dm, wx1), min(ey1 - dm, wy1)
            if d1x > d0x and d1y > d0y:
                Me = M.copy()
                Me[:, 2] += M[:, :2] @ (ex0, ey0) - (d0x, d0y)
                view = head[d0y - wy0 : d1y - wy0, d0x - wx0 : d1x - wx0]
                cv2.warpAffine(self._eyes4[level], Me, (d1x - d0x, d1y - d0y), dst=view, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # "over" with premultiplied colour: out = colour + out x (255 - alpha) / 255
        cv2.cvtColor(head, cv2.COLOR_BGRA2BGR, dst=spr)
        cv2.extractChannel(head, 3, dst=inv)
        cv2.bitwise_not(inv, dst=inv)
        cv2.cvtColor(inv, cv2.COLOR_GRAY2BGR, dst=inv3)
        dsth = out[wy0:wy1, wx0:wx1]
        cv2.multiply(dsth, inv3, dst=dsth, scale=1.0 / 255.0)
        cv2.add(dsth, spr, dst=dsth)

        self._draw_mouth(out, M, mouth)


def _premultiplied(bgr: np.ndarray, alpha8: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 colour and (h, w) uint8 alpha -> (h, w, 4) uint8 BGRA, C-contiguous and
    read-only, whose colour is bgr x alpha / 255 rounded to the nearest integer."""
    a = alpha8.astype(np.float32)[..., None] * np.float32(1.0 / 255.0)
    pm = np.clip(bgr.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
    out = np.ascontiguousarray(np.dstack([pm, alpha8]))
    out.flags.writeable = False
    return out


def _shifted(src: np.ndarray, shift: float, dst: np.ndarray) -> None:
    """dst (n rows) = src's rows moved up by `shift` (>= 0, sub-pixel: two rows blended):
    row r of dst is src row r + shift. src has at least n + ceil(shift) rows. uint8, any channels."""
    n = dst.shape[0]
    k = int(shift)
    f = shift - k
    if f < 1e-3:
        np.copyto(dst, src[k : k + n])
    else:
        cv2.addWeighted(src[k : k + n], 1.0 - f, src[k + 1 : k + 1 + n], f, 0.0, dst=dst)
