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

``render`` only warps the head, blends it, and draws the lips and mouth interior at the warped
position; its motion (blinks, breathing, sway) is a pure function of the frame index, so one
object can be shared by many sessions and threads. Per-thread scratch buffers are held in a
``threading.local`` and allocated once per thread.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dhlive_cli.avatar.motion import breath as breath_offset
from dhlive_cli.avatar.motion import idle_pose
from dhlive_cli.errors import InputError

__all__ = ["DrawnAvatar", "DrawnStyle", "MouthShape"]

HAIR_STYLES = ("short", "bob", "long")
CLOTHING = ("crew", "blazer")

_SHIFT = 4  # fixed-point bits for cv2 drawing: sub-pixel positions keep slow motion smooth
_ONE = 1 << _SHIFT
_EYE_LEVELS = 6  # eyelid closures prerendered: 0, 0.2, ... 1.0


@dataclass(frozen=True, slots=True)
class MouthShape:
    """Mouth parameters for one frame, each in [0, 1]."""

    open: float = 0.0
    spread: float = 0.0
    round: float = 0.0
    close: float = 0.0


REST_MOUTH = MouthShape()


# --------------------------------------------------------------------------- style from TOML


def _hex_bgr(value: str, key: str) -> tuple[float, float, float]:
    s = str(value).strip().lstrip("#")
    if len(s) != 6:
        raise InputError(f"avatar colour {key}={value!r} must be '#RRGGBB'")
    try:
        r, g, b = (int(s[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        raise InputError(f"avatar colour {key}={value!r} must be '#RRGGBB'") from None
    return (float(b), float(g), float(r))


@dataclass(frozen=True, slots=True)
class DrawnStyle:
    """How the drawn person looks and moves; every field comes from the [drawn] table."""

    seed: int = 7
    hair_style: str = "bob"
    clothing: str = "blazer"
    skin: str = "#f1c4a3"
    hair: str = "#4a3026"
    iris: str = "#5b7f9e"
    lips: str = "#c7736f"
    clothes: str = "#34506f"
    clothes_inner: str = "#f3f5f7"
    background_top: str = "#eef3f8"
    background_bottom: str = "#a9bdd1"
    blush: float = 0.22
    # proportions: multipliers around 1.0
    head_scale: float = 1.0
    face_width: float = 1.0
    face_length: float = 1.0
    eye_size: float = 1.0
    eye_spacing: float = 1.0
    mouth_width: float = 1.0
    lip_fullness: float = 1.0
    shoulder_width: float = 1.0
    # motion
    blink_interval_s: tuple[float, float] = (2.4, 5.6)
    blink_ms: float = 180.0
    breath_hz: float = 0.25
    breath_amount: float = 1.0
    sway_amount: float = 1.0

    colors: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_spec(cls, spec: dict) -> "DrawnStyle":
        table = spec.get("drawn", {}) if isinstance(spec, dict) else {}
        if not isinstance(table, dict):
            raise InputError("avatar.toml: [drawn] must be a table")
        known = {f for f in cls.__dataclass_fields__ if f != "colors"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise InputError(f"avatar.toml: unknown [drawn] keys: {', '.join(unknown)}")
        kwargs = dict(table)
        if "blink_interval_s" in kwargs:
            lo, hi = (float(v) for v in kwargs["blink_interval_s"])
            if not (2.0 <= lo <= hi <= 6.0):
                raise InputError("avatar.toml: blink_interval_s must lie within [2, 6] seconds")
            kwargs["blink_interval_s"] = (lo, hi)
        try:
            style = cls(**kwargs)
            float(style.blink_ms) + float(style.breath_hz) + int(style.seed)
        except (TypeError, ValueError) as e:
            raise InputError(f"avatar.toml: bad [drawn] value: {e}") from None
        if style.hair_style not in HAIR_STYLES:
            raise InputError(f"avatar.toml: hair_style must be one of {HAIR_STYLES}")
        if style.clothing not in CLOTHING:
            raise InputError(f"avatar.toml: clothing must be one of {CLOTHING}")
        if not 60.0 <= style.blink_ms <= 400.0:
            raise InputError("avatar.toml: blink_ms must lie within [60, 400]")
        colors = {
            k: _hex_bgr(getattr(style, k), k)
            for k in (
                "skin",
                "hair",
                "iris",
                "lips",
                "clothes",
                "clothes_inner",
                "background_top",
                "background_bottom",
            )
        }
        object.__setattr__(style, "colors", colors)
        return style


# --------------------------------------------------------------------------- small geometry


def _mix(a, b, t: float) -> tuple[float, float, float]:
    return tuple(float(x) * (1.0 - t) + float(y) * t for x, y in zip(a, b))


def _mul(c, k: float, add: float = 0.0) -> tuple[float, float, float]:
    return tuple(min(255.0, max(0.0, float(x) * k + add)) for x in c)


def _ellipse(cx, cy, ax, ay, n=64, rot=0.0, a0=0.0, a1=2 * math.pi) -> np.ndarray:
    t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * math.pi - 1e-9)
    x, y = ax * np.cos(t), ay * np.sin(t)
    c, s = math.cos(rot), math.sin(rot)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _bez(*pts, n=24) -> np.ndarray:
    """Bezier curve through control points (quadratic or cubic), n samples."""
    p = np.asarray(pts, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    if len(p) == 3:
        return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def _fix(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _blur(m: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return m
    if sigma <= 6.0:
        return cv2.GaussianBlur(m, (0, 0), sigma)
    # Wide blurs are done small and scaled back: shading fields are smooth anyway.
    f = sigma / 3.0
    h, w = m.shape[:2]
    small = cv2.resize(m, (max(1, int(w / f)), max(1, int(h / f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class _Canvas:
    """Float32 BGR painting surface for the one-off prerender; every op touches only a shape's box."""

    def __init__(self, img: np.ndarray, ox: int = 0, oy: int = 0):
        self.img = img
        self.ox, self.oy = ox, oy

    def _box(self, polys, pad: float):
        allp = np.concatenate([np.asarray(p).reshape(-1, 2) for p in polys])
        x0 = int(math.floor(allp[:, 0].min() - pad)) - self.ox
        y0 = int(math.floor(allp[:, 1].min() - pad)) - self.oy
        x1 = int(math.ceil(allp[:, 0].max() + pad)) + 1 - self.ox
        y1 = int(math.ceil(allp[:, 1].max() + pad)) + 1 - self.oy
        h, w = self.img.shape[:2]
        return max(0, x0), max(0, y0), min(w, x1), min(h, y1), x0, y0, x1, y1

    def mask(self, polys, pad: float = 2.0, blur: float = 0.0, stroke: float = 0.0, closed=True):
        """Anti-aliased coverage of polys (or of a stroke along them) in the clipped box."""
        pad = pad + 3.0 * blur + stroke
        bx0, by0, bx1, by1, ux0, uy0, ux1, uy1 = self._box(polys, pad)
        if bx1 <= bx0 or by1 <= by0:
            return None
        # Draw in the unclipped box so blurs see the whole shape, then crop.
        m = np.zeros((uy1 - uy0, ux1 - ux0), np.uint8)
        loc = [_fix(np.asarray(p) - (ux0 + self.ox, uy0 + self.oy)) for p in polys]
        if stroke > 0:
            cv2.polylines(m, loc, closed, 255, max(1, int(round(stroke))), cv2.LINE_AA, _SHIFT)
        else:
            cv2.fillPoly(m, loc, 255, cv2.LINE_AA, _SHIFT)
        mf = m.astype(np.float32) * (1.0 / 255.0)
        mf = _blur(mf, blur)
        return mf[by0 - uy0 : by1 - uy0, bx0 - ux0 : bx1 - ux0], (bx0, by0, bx1, by1)

    def paint(self, mb, color, opacity: float = 1.0, shade=None):
        """Composite a colour (or a colour times a shade field) through mask mb."""
        if mb is None:
            return
        m, (x0, y0, x1, y1) = mb
        roi = self.img[y0:y1, x0:x1]
        col = np.asarray(color, np.float32).reshape(1, 1, 3)
        src = col if shade is None else col * shade[..., None]
        a = (m * opacity)[..., None]
        roi += (src - roi) * a

    def darken(self, mb, amount: float, clip=None):
        """Multiply by (1 - amount * mask), optionally limited by a full-canvas clip mask."""
        if mb is None:
            return
        m, (x0, y0, x1, y1) = mb
        if clip is not None:
            m = m * clip[y0:y1, x0:x1]
        self.img[y0:y1, x0:x1] *= (1.0 - amount * m)[..., None]

    def grid(self, box):
        x0, y0, x1, y1 = box
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] + self.ox
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] + self.oy
        return xs, ys


def _stamp(acc: np.ndarray, mb, weight=None):
    """Union a coverage patch into a full-canvas mask (max), optionally weighted per pixel."""
    if mb is None:
        return
    m, (x0, y0, x1, y1) = mb
    if weight is not None:
        m = m * weight[y0:y1, x0:x1]
    np.maximum(acc[y0:y1, x0:x1], m, out=acc[y0:y1, x0:x1])


# --------------------------------------------------------------------------- the avatar


class DrawnAvatar:
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
        self._prerender()
        self._mouth_bounds()
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
        rng = np.random.default_rng(st.seed)
        lo, hi = st.blink_interval_s
        n = 64
        gaps = np.round(rng.uniform(lo, hi, n) * fps).astype(np.int64)
        gaps = np.clip(gaps, math.ceil(2.0 * fps), math.floor(6.0 * fps))
        self._blink_first = int(round(rng.uniform(0.8, 2.0) * fps))
        self._blink_starts = tuple(int(v) for v in np.concatenate([[0], np.cumsum(gaps)[:-1]]))
        self._blink_period = int(gaps.sum())
        ph = rng.uniform(0, 2 * math.pi, 8)
        self._phases = tuple(float(v) for v in ph)

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

    def _prerender(self) -> None:
        W, H, S, st = self.width, self.height, self.S, self.style
        col = st.colors
        pad = int(math.ceil(self.breath_px)) + 2
        self._pad = pad
        Ht = H + pad

        # Background: vertical gradient only (see module docstring), with gentle ease.
        t = np.linspace(0.0, 1.0, Ht, dtype=np.float32)
        t = (t * t * (3 - 2 * t)) * 0.6 + t * 0.4
        top = np.array(col["background_top"], np.float32)
        bot = np.array(col["background_bottom"], np.float32)
        column = top[None, :] * (1 - t[:, None]) + bot[None, :] * t[:, None]
        bg = np.repeat(column[:, None, :], W, axis=1)
        self._static = np.clip(bg[:H] + 0.5, 0, 255).astype(np.uint8)

        base = _Canvas(bg.copy())
        base_mask = np.zeros((Ht, W), np.float32)
        self._paint_body(base, base_mask)

        full = _Canvas(base.img.copy())
        head_mask = np.zeros((Ht, W), np.float32)
        self._paint_head(full, head_mask)

        # Body rectangle: rows from the first non-background base pixel (less the breathing
        # travel) to the bottom; columns covering the body and the head sprite.
        ys, xs = np.nonzero(base_mask > 1e-3)
        hy, hx = np.nonzero(head_mask > 1e-3)
        # the farthest head pixel from the pivot bounds how far a tilt can move anything
        R = float(np.sqrt(((hx - self.pivot[0]) ** 2 + (hy - self.pivot[1]) ** 2).max())) + 2.0
        dmax = self._max_disp(R)
        hx0 = max(0, int(hx.min() - dmax - 3))
        hx1 = min(W, int(hx.max() + dmax + 4))
        hy0 = max(0, int(hy.min() - dmax - 3))
        hy1 = min(H, int(hy.max() + dmax + 4))
        by0 = max(0, int(ys.min() - pad - 2)) if len(ys) else H
        bx0 = max(0, min(int(xs.min()) - 2 if len(xs) else W, hx0))
        bx1 = min(W, max(int(xs.max()) + 3 if len(xs) else 0, hx1))
        self._hrect = (hx0, hy0, hx1, hy1)
        self._brect = (bx0, by0, bx1, H)
        self._base = np.ascontiguousarray(np.clip(base.img[by0:Ht, bx0:bx1] + 0.5, 0, 255).astype(np.uint8))

        self._sprite = np.ascontiguousarray(np.clip(full.img[hy0:hy1, hx0:hx1] + 0.5, 0, 255).astype(np.uint8))
        a = head_mask[hy0:hy1, hx0:hx1]
        # A small grow + feather keeps the sprite's own anti-aliased edge fully opaque, so the
        # edge is not attenuated twice; beyond it the sprite holds background, which matches.
        grow = max(1, int(round(0.003 * S)))
        a = cv2.dilate(a, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        a = cv2.GaussianBlur(a, (0, 0), max(0.8, 0.0025 * S))
        self._alpha = np.ascontiguousarray(np.clip(a, 0.0, 1.0).astype(np.float32))

        # Eyes at each closure level, painted on copies of the eye area of the full canvas.
        ex0, ey0, ex1, ey1 = self._eye_area
        # Blink patches differ from the sprite only inside _eye_area; after the head moves that
        # difference lies within one motion margin of it, and sampling it needs one more.
        dm = int(math.ceil(self._max_disp(R))) + 2
        ex0, ey0 = max(hx0, ex0 - 2 * dm), max(hy0, ey0 - 2 * dm)
        ex1, ey1 = min(hx1, ex1 + 2 * dm), min(hy1, ey1 + 2 * dm)
        self._eye_rect = (ex0, ey0, ex1, ey1)
        self._eye_margin = dm
        variants = []
        for k in range(_EYE_LEVELS):
            patch = _Canvas(full.img[ey0:ey1, ex0:ex1].copy(), ex0, ey0)
            self._paint_eyes(patch, k / (_EYE_LEVELS - 1))
            variants.append(np.ascontiguousarray(np.clip(patch.img + 0.5, 0, 255).astype(np.uint8)))
        # Level 0 (open) is also what the sprite shows between blinks.
        self._sprite[ey0 - hy0 : ey1 - hy0, ex0 - hx0 : ex1 - hx0] = variants[0]
        self._eye_variants = tuple(variants)
        for arr in (self._static, self._base, self._sprite, self._alpha, *self._eye_variants):
            arr.flags.writeable = False

    # ---- body: back hair, neck, clothing (all in the breathing layer)

    def _paint_body(self, cv: _Canvas, acc: np.ndarray) -> None:
        S, st, col = self.S, self.style, self.style.colors
        cx, nb = self.cx, self.neck_base_y
        Hb = cv.img.shape[0] + 4
        skin = col["skin"]
        hair = col["hair"]

        if st.hair_style == "long":
            # Only the part below the jaw lives here; above it the head sprite covers it, so a
            # swaying head never uncovers a second, static copy of the hair outline.
            fw = self.fw
            top = self.fy + 0.05 * S
            pts = np.concatenate(
                [
                    _bez((cx - (fw + 0.035) * S, top), (cx - (fw + 0.05) * S, nb), (cx - (fw + 0.07) * S, nb + 0.16 * S)),
                    _bez((cx - (fw + 0.07) * S, nb + 0.16 * S), (cx, nb + 0.22 * S), (cx + (fw + 0.07) * S, nb + 0.16 * S)),
                    _bez((cx + (fw + 0.07) * S, nb + 0.16 * S), (cx + (fw + 0.05) * S, nb), (cx + (fw + 0.035) * S, top)),
                ]
            )
            mb = cv.mask([pts], blur=0.0, pad=0.02 * S)
            _, ys = cv.grid(mb[1])
            # darker towards the ends, where the hair falls behind the shoulders
            shade = 0.78 + 0.22 * np.clip(1.0 - (ys - top) / (0.35 * S), 0, 1)
            cv.paint(mb, hair, shade=shade.astype(np.float32))
            _stamp(acc, mb)

        # Neck: a slightly tapered column, in the head's shadow near the jaw.
        nw = 0.056 * S
        neck = np.concatenate(
            [
                _bez((cx - nw * 0.95, self.chin_y - 0.06 * S), (cx - nw * 0.92, nb - 0.04 * S), (cx - nw * 1.15, nb + 0.05 * S)),
                _bez((cx + nw * 1.15, nb + 0.05 * S), (cx + nw * 0.92, nb - 0.04 * S), (cx + nw * 0.95, self.chin_y - 0.06 * S)),
            ]
        )
        mb = cv.mask([neck], pad=0.03 * S)
        xs, ys = cv.grid(mb[1])
        shade = 0.90 + 0.05 * np.clip((ys - self.chin_y) / (0.08 * S), 0, 1) - 0.05 * (xs - cx) / nw
        cv.paint(mb, skin, shade=shade.astype(np.float32))
        _stamp(acc, mb)
        skin_m = np.zeros(acc.shape, np.float32)
        _stamp(skin_m, mb)

        # Torso silhouette (shoulders, upper arms), symmetric.
        sw = 0.40 * S * st.shoulder_width
        sy = nb + 0.055 * S

        def side(sg):
            return np.concatenate(
                [
                    _bez((cx + sg * nw * 0.95, nb - 0.035 * S), (cx + sg * nw * 1.3, nb + 0.01 * S),
                         (cx + sg * sw * 0.55, sy - 0.02 * S), (cx + sg * sw * 0.8, sy + 0.004 * S)),
                    # shoulder cap, tangent-continuous with the slope so no corner shows
                    _bez((cx + sg * sw * 0.8, sy + 0.004 * S), (cx + sg * (sw * 0.8 + 0.06 * S), sy + 0.018 * S),
                         (cx + sg * sw * 1.05, sy + 0.05 * S), (cx + sg * sw * 1.06, sy + 0.15 * S)),
                    np.array([[cx + sg * sw * 1.08, Hb]]),
                ]
            )

        left, right = side(-1), side(1)
        torso = np.concatenate([left, right[::-1]])
        clothes = col["clothes"]
        mb = cv.mask([torso], pad=0.04 * S)
        xs, ys = cv.grid(mb[1])
        rim = _blur(mb[0], 0.035 * S)
        shade = (
            1.04
            - 0.16 * (1.0 - np.clip(rim * 2.0, 0, 1))
            - 0.10 * np.clip((ys - sy) / (0.5 * S), 0, 1)
            - 0.04 * (xs - cx) / sw
        )
        cv.paint(mb, clothes, shade=shade.astype(np.float32))
        _stamp(acc, mb)
        torso_m = np.zeros(acc.shape, np.float32)
        _stamp(torso_m, mb)

        dark = _mul(clothes, 0.72)
        if st.clothing == "crew":
            neckline = _bez((cx - nw * 1.55, nb - 0.012 * S), (cx, nb + 0.085 * S), (cx + nw * 1.55, nb - 0.012 * S), n=40)
            opening = np.concatenate([neckline, _bez((cx + nw * 1.55, nb - 0.05 * S), (cx, nb - 0.08 * S), (cx - nw * 1.55, nb - 0.05 * S))])
            mb = cv.mask([opening], pad=0.02 * S)
            x0, y0, x1, y1 = mb[1]
            # skin only where the torso is, so the opening follows the neck and shoulder line
            mb = (mb[0] * torso_m[y0:y1, x0:x1], mb[1])
            xs, ys = cv.grid(mb[1])
            shade = 0.9 + 0.04 * np.clip((ys - nb) / (0.05 * S), 0, 1) - 0.05 * (xs - cx) / nw
            cv.paint(mb, skin, shade=shade.astype(np.float32))
            _stamp(skin_m, mb)
            # the neck's shadow on the chest just above the collar
            cv.darken(cv.mask([neckline + (0, -0.006 * S)], stroke=0.02 * S, closed=False, blur=0.006 * S), 0.12, clip=skin_m)
            for mb, c, op in (
                (cv.mask([neckline], stroke=0.016 * S, closed=False), _mul(clothes, 0.86), 1.0),
                (cv.mask([neckline + (0, 0.008 * S)], stroke=max(1.0, 0.003 * S), closed=False, blur=0.002 * S), dark, 0.6),
            ):
                x0, y0, x1, y1 = mb[1]
                cv.paint((mb[0] * torso_m[y0:y1, x0:x1], mb[1]), c, op)
        else:
            self._paint_blazer(cv, nw, nb, sw, sy, torso_m, skin_m)
        # The jaw's cast shadow across the neck, painted last so the collar opening gets it too.
        jaw = _ellipse(cx, self.chin_y - 0.02 * S, self.fw * 0.7 * S, 0.05 * S, n=48)
        cv.darken(cv.mask([jaw], blur=0.016 * S), 0.26, clip=skin_m)

        # Soft fold shadows where the arms meet the chest.
        for sg in (-1, 1):
            fold = _bez((cx + sg * sw * 0.78, sy + 0.08 * S), (cx + sg * sw * 0.74, sy + 0.2 * S), (cx + sg * sw * 0.76, Hb), n=20)
            cv.darken(cv.mask([fold], stroke=0.012 * S, closed=False, blur=0.01 * S), 0.18, clip=torso_m)

    def _paint_blazer(self, cv: _Canvas, nw, nb, sw, sy, torso_m, skin_m) -> None:
        S, col = self.S, self.style.colors
        cx = self.cx
        clothes, inner, skin = col["clothes"], col["clothes_inner"], col["skin"]
        v_bot = nb + 0.30 * S
        # shirt front (V between the lapels)
        shirt = np.array(
            [[cx - nw * 1.6, nb - 0.03 * S], [cx + nw * 1.6, nb - 0.03 * S], [cx + 0.07 * S, v_bot - 0.05 * S], [cx, v_bot], [cx - 0.07 * S, v_bot - 0.05 * S]]
        )
        mb = cv.mask([shirt], pad=0.02 * S)
        xs, ys = cv.grid(mb[1])
        shade = 0.97 - 0.06 * np.clip((ys - nb) / (0.3 * S), 0, 1) - 0.03 * (xs - cx) / nw
        cv.paint(mb, inner, shade=shade.astype(np.float32))
        # open collar: skin V
        skin_v = np.concatenate([_bez((cx - nw * 1.0, nb - 0.05 * S), (cx - nw * 0.9, nb + 0.02 * S), (cx, nb + 0.075 * S)),
                                 _bez((cx, nb + 0.075 * S), (cx + nw * 0.9, nb + 0.02 * S), (cx + nw * 1.0, nb - 0.05 * S))])
        mb = cv.mask([skin_v], pad=0.02 * S)
        xs, ys = cv.grid(mb[1])
        cv.paint(mb, skin, shade=(0.9 - 0.04 * (xs - cx) / nw + 0 * ys).astype(np.float32))
        _stamp(skin_m, mb)
        cv.darken(cv.mask([skin_v[: len(skin_v) // 2] + (0.004 * S, 0)], stroke=0.01 * S, closed=False, blur=0.006 * S), 0.12)
        # shirt collar points, each with a thin shadow line
        for sg in (-1, 1):
            collar = np.array(
                [
                    [cx + sg * nw * 1.02, nb - 0.058 * S],
                    [cx + sg * nw * 1.62, nb - 0.03 * S],
                    [cx + sg * nw * 1.55, nb + 0.045 * S],
                    [cx + sg * 0.004 * S, nb + 0.085 * S],
                    [cx + sg * nw * 0.9, nb + 0.0 * S],
                ]
            )
            cv.darken(cv.mask([collar + (sg * 0.004 * S, 0.008 * S)], blur=0.005 * S), 0.18)
            mb = cv.mask([collar], pad=0.01 * S)
            cv.paint(mb, _mul(inner, 1.0))
            cv.paint(cv.mask([collar], stroke=max(1.0, 0.0022 * S), blur=0.001 * S), _mul(inner, 0.78), 0.8)
        # lapels over the shirt
        for sg in (-1, 1):
            lapel = np.concatenate(
                [
                    np.array([[cx + sg * nw * 1.75, nb - 0.035 * S]]),
                    _bez((cx + sg * nw * 1.55, nb + 0.02 * S), (cx + sg * 0.07 * S, v_bot - 0.12 * S), (cx + sg * 0.004 * S, v_bot + 0.005 * S), n=16),
                    np.array([[cx + sg * 0.05 * S, v_bot + 0.03 * S], [cx + sg * 0.115 * S, nb + 0.12 * S], [cx + sg * 0.095 * S, nb + 0.075 * S],
                              [cx + sg * 0.135 * S, nb + 0.05 * S], [cx + sg * nw * 2.3, nb - 0.01 * S]]),
                ]
            )
            cv.darken(cv.mask([lapel + (sg * 0.006 * S, 0.004 * S)], blur=0.007 * S), 0.25, clip=torso_m)
            mb = cv.mask([lapel], pad=0.01 * S)
            xs, ys = cv.grid(mb[1])
            shade = 1.07 - 0.08 * np.clip((ys - nb) / (0.3 * S), 0, 1) + 0 * xs
            cv.paint(mb, clothes, shade=shade.astype(np.float32))
            cv.paint(cv.mask([lapel], stroke=max(1.0, 0.0025 * S), blur=0.0012 * S), _mul(clothes, 0.7), 0.7)
        # buttons hint
        for yy in (v_bot + 0.06 * S, v_bot + 0.16 * S):
            cv.paint(cv.mask([_ellipse(cx + 0.012 * S, yy, 0.007 * S, 0.007 * S, 24)]), _mul(clothes, 0.6))

    # ---- head: ears, hair, face, nose, brows (in the sprite); eyes are painted separately

    def _hair_shapes(self):
        """(back, front) hair polygons in rest pixels for the chosen style."""
        S, fw, fh, st = self.S, self.fw, self.fh, self.style
        P = self.P
        if st.hair_style == "short":
            cap = _ellipse(0, -0.035, fw + 0.018, fh + 0.022, n=96)
            keep = cap[:, 1] < 0.02
            back = P(cap[keep, 0], cap[keep, 1])
            # side-swept fringe with a parting on the viewer's left
            hairline = np.concatenate(
                [
                    _bez((-(fw + 0.012), -0.0), (-(fw - 0.005), -0.07), (-fw * 0.55, -0.135), n=16),
                    _bez((-fw * 0.55, -0.135), (-0.0, -0.1), (fw * 0.7, -0.125), (fw + 0.006, -0.04), n=24),
                ]
            )
            crown = _ellipse(0, -0.035, fw + 0.018, fh + 0.022, n=64, a0=-0.02, a1=-math.pi + 0.02)[::-1]
            crown = crown[crown[:, 1] < -0.0]
            front = P(*np.concatenate([hairline, crown[::-1]]).T)
            return back, front
        # bob and long: volume around the head with a soft fringe and side locks framing the face
        drop = 0.135 if st.hair_style == "bob" else 0.24
        wide = fw + 0.05
        # rounded crown: an elliptical arc, then the sides fall straight-ish to the ends
        crown = _ellipse(0, -0.045, wide, fh + 0.005, n=48, a0=math.pi, a1=2 * math.pi)
        left = _bez((-(wide - 0.012), drop), (-(wide + 0.012), 0.03), (-wide, -0.045), n=20)
        right = left[::-1] * (-1, 1)
        ends = np.concatenate(
            [
                _bez((wide - 0.012, drop), (wide - 0.03, drop + 0.022), (fw - 0.005, drop - 0.01), n=10)[1:],
                _bez((fw - 0.005, drop - 0.01), (0, drop + 0.01), (-(fw - 0.005), drop - 0.01), n=10)[1:-1],
                _bez((-(fw - 0.005), drop - 0.01), (-(wide - 0.03), drop + 0.022), (-(wide - 0.012), drop), n=10)[:-1],
            ]
        )
        top = np.concatenate([left, crown[1:-1], right])
        back = P(*np.concatenate([top, ends]).T)
        fringe_edge = np.concatenate(
            [
                _bez((-(fw + 0.012), drop - 0.015), (-(fw - 0.004), 0.02), (-(fw - 0.02), -0.075), n=16),
                _bez((-(fw - 0.02), -0.075), (-0.07, -0.105), (-0.02, -0.08), (0.03, -0.118), n=16)[1:],
                _bez((0.03, -0.118), (0.08, -0.085), (fw - 0.012, -0.075), n=12)[1:],
                _bez((fw - 0.012, -0.075), (fw - 0.012, 0.02), (fw + 0.012, drop - 0.015), n=16)[1:],
            ]
        )
        front = P(*np.concatenate([fringe_edge, top[::-1]]).T)
        return back, front

    def _paint_head(self, cv: _Canvas, acc: np.ndarray) -> None:
        S, st, col = self.S, self.style, self.style.colors
        P, fw, fh = self.P, self.fw, self.fh
        skin, hair = col["skin"], col["hair"]
        cx, fy = self.cx, self.fy
        back, front = self._hair_shapes()

        # Alpha weight: 1 on the head, fading down the neck so the neck bends with a tilt.
        ramp = np.ones(acc.shape, np.float32)
        y_a, y_b = self.chin_y - 0.01 * S, self.neck_base_y - 0.025 * S
        ys = np.arange(acc.shape[0], dtype=np.float32)
        r = np.clip((y_b - ys) / max(1.0, y_b - y_a), 0.0, 1.0)
        ramp *= (r * r * (3 - 2 * r))[:, None]

        # neck top belongs to the head sprite too (already painted by _paint_body)
        neck = np.array([[cx - 0.07 * S, fy], [cx + 0.07 * S, fy], [cx + 0.07 * S, self.neck_base_y], [cx - 0.07 * S, self.neck_base_y]])
        _stamp(acc, cv.mask([neck]), ramp)

        def hair_paint(poly, strength=1.0):
            mb = cv.mask([poly], pad=0.03 * S)
            xs, ys_ = cv.grid(mb[1])
            rim = _blur(mb[0], 0.03 * S)
            shade = (
                1.0
                - 0.22 * (1.0 - np.clip(rim * 2.0, 0, 1))
                - 0.12 * np.clip((ys_ - (fy - 0.1 * S)) / (0.3 * S), 0, 1)
                - 0.05 * (xs - cx) / (fw * S)
            )
            cv.paint(mb, hair, shade=shade.astype(np.float32))
            _stamp(acc, mb, ramp)
            return mb

        hair_paint(back)

        # ears (hidden under bob/long hair, but painting them costs nothing)
        if st.hair_style == "short":
            for sg in (-1, 1):
                ex, ey = cx + sg * (fw - 0.004) * S, fy + 0.015 * S
                ear = _ellipse(ex, ey, 0.024 * S, 0.04 * S, n=48, rot=sg * 0.18)
                mb = cv.mask([ear], pad=0.01 * S)
                xs, ys_ = cv.grid(mb[1])
                cv.paint(mb, skin, shade=(0.93 + 0.0 * xs + 0.03 * (ey - ys_) / (0.04 * S)).astype(np.float32))
                _stamp(acc, mb, ramp)
                inner = _ellipse(ex + sg * 0.004 * S, ey + 0.002 * S, 0.012 * S, 0.026 * S, n=32, rot=sg * 0.18)
                cv.darken(cv.mask([inner], blur=0.004 * S), 0.18)

        # face
        t = np.linspace(0, 2 * math.pi, 160, endpoint=False)
        x = fw * np.sin(t)
        y = -fh * np.cos(t)
        low = y > 0
        x = np.where(low, x * (1.0 - 0.24 * (y / fh) ** 2), x * (1.0 + 0.02 * (y / fh)))
        y = np.where(low, y * (1.0 - 0.04 * (x / fw) ** 2), y)
        face = P(x, y)
        mb = cv.mask([face], pad=0.03 * S)
        xs, ys_ = cv.grid(mb[1])
        rim = _blur(mb[0], 0.04 * S)
        shade = (
            1.02
            - 0.13 * (1.0 - np.clip(rim * 1.8, 0, 1))
            - 0.035 * (xs - cx) / (fw * S)
            - 0.03 * np.clip((ys_ - fy) / (fh * S), -1, 1)
        )
        cv.paint(mb, skin, shade=shade.astype(np.float32))
        _stamp(acc, mb, ramp)
        face_m = np.zeros(acc.shape, np.float32)
        _stamp(face_m, mb)

        # cheeks
        for sg in (-1, 1):
            cheek = _ellipse(cx + sg * 0.082 * S, fy + 0.062 * S, 0.032 * S, 0.02 * S, n=32)
            cv.paint(cv.mask([cheek], blur=0.014 * S), _mix(skin, (90, 90, 230), 0.6), st.blush)

        # nose: soft side shadow, tip highlight, a small curved underside with nostril hints
        ny = fy + 0.072 * S
        side = _bez((cx + 0.012 * S, fy + 0.0 * S), (cx + 0.02 * S, fy + 0.04 * S), (cx + 0.018 * S, ny - 0.006 * S), n=16)
        cv.darken(cv.mask([side], stroke=0.01 * S, closed=False, blur=0.007 * S), 0.10)
        cv.darken(cv.mask([_ellipse(cx + 0.002 * S, ny + 0.006 * S, 0.024 * S, 0.008 * S, 32)], blur=0.006 * S), 0.16)
        cv.paint(cv.mask([_ellipse(cx - 0.005 * S, ny - 0.01 * S, 0.008 * S, 0.006 * S, 24)], blur=0.004 * S), _mul(skin, 1.1, 10), 0.6)
        under = _bez((cx - 0.017 * S, ny - 0.004 * S), (cx - 0.008 * S, ny + 0.008 * S), (cx + 0.002 * S, ny + 0.006 * S), (cx + 0.012 * S, ny + 0.006 * S), n=16)
        under = np.concatenate([under, _bez((cx + 0.012 * S, ny + 0.006 * S), (cx + 0.02 * S, ny + 0.006 * S), (cx + 0.018 * S, ny - 0.004 * S), n=8)[1:]])
        cv.paint(cv.mask([under], stroke=max(1.0, 0.0045 * S), closed=False, blur=0.0012 * S), _mul(skin, 0.7), 0.75)

        # philtrum shading and the shadow under the lower lip are static
        cv.darken(cv.mask([_ellipse(cx, fy + 0.17 * S, 0.03 * S, 0.008 * S, 24)], blur=0.008 * S), 0.08)

        # hair in front (fringe), with its soft shadow on the forehead
        fm = cv.mask([front + (0.003 * S, 0.012 * S)], blur=0.008 * S)
        cv.darken(fm, 0.22, clip=face_m)
        fmb = hair_paint(front)
        # a broad sheen on the hair and a few strands
        sheen = _ellipse(cx - 0.02 * S, fy - 0.15 * S, (fw + 0.01) * S, 0.05 * S, n=48, a0=math.pi * 1.1, a1=math.pi * 1.7)
        hair_m = np.zeros(acc.shape, np.float32)
        _stamp(hair_m, fmb)
        if st.hair_style != "short":
            _stamp(hair_m, cv.mask([back]))
        sh = cv.mask([sheen], stroke=0.014 * S, closed=False, blur=0.01 * S)
        if sh is not None:
            m, (x0, y0, x1, y1) = sh
            m = m * hair_m[y0:y1, x0:x1]
            cv.paint((m, (x0, y0, x1, y1)), _mul(hair, 1.35, 18), 0.55)
        strands = self._strands()
        for s in strands:
            mb = cv.mask([s], stroke=max(1.0, 0.0035 * S), closed=False, blur=0.0015 * S)
            if mb is not None:
                m, box = mb
                x0, y0, x1, y1 = box
                cv.paint((m * hair_m[y0:y1, x0:x1], box), _mul(hair, 0.72), 0.35)

        # brows
        for sg in (-1, 1):
            c = _bez((sg * 0.03, -0.06), (sg * 0.062, -0.078), (sg * 0.101, -0.064), n=20)
            w = 0.0095 - 0.005 * np.linspace(0, 1, len(c)) ** 1.5
            nrm = np.gradient(c, axis=0)
            nrm = np.stack([-nrm[:, 1], nrm[:, 0]], 1) / np.linalg.norm(nrm, axis=1, keepdims=True)
            poly = np.concatenate([c + nrm * w[:, None] / 2, (c - nrm * w[:, None] / 2)[::-1]])
            cv.paint(cv.mask([P(*poly.T)], blur=0.0012 * S), _mul(hair, 0.85), 0.95)

        # the area the eye variants repaint (eyes, lids, lashes; brows stay outside)
        ew = 0.031 * st.eye_size
        esp = 0.063 * st.eye_spacing
        pts = P(np.array([-esp - ew - 0.012, esp + ew + 0.012]), np.array([-0.04, 0.034]) * st.eye_size + 0.012)
        self._eye_area = (int(pts[0, 0]), int(pts[0, 1]), int(math.ceil(pts[1, 0])), int(math.ceil(pts[1, 1])))

    def _strands(self):
        fw, fh, st, P = self.fw, self.fh, self.style, self.P
        if st.hair_style == "short":
            ctrl = [
                ((-fw * 0.55, -0.135), (-0.02, -0.19), (fw * 0.6, -0.2)),
                ((-fw * 0.3, -0.125), (0.02, -0.16), (fw * 0.8, -0.14)),
                ((-fw * 0.7, -0.12), (-fw * 0.9, -0.17), (-fw * 0.3, -0.225)),
            ]
        else:
            ctrl = [
                ((0.03, -0.115), (0.07, -0.2), (0.01, -fh - 0.045)),
                ((-0.02, -0.08), (-0.08, -0.16), (-0.06, -fh - 0.03)),
                ((-(fw + 0.02), 0.08), (-(fw + 0.04), -0.06), (-(fw - 0.03), -0.17)),
                ((fw + 0.02, 0.08), (fw + 0.04, -0.06), (fw - 0.03, -0.17)),
            ]
        return [P(*_bez(*c, n=20).T) for c in ctrl]

    def _eye_geometry(self, sg: int, closure: float):
        """Upper-lid, lower-lid curves (rest pixels) of one eye at a closure; sg=-1 left."""
        st = self.style
        ew, eu, el = 0.031 * st.eye_size, 0.0175 * st.eye_size, 0.0105 * st.eye_size
        ex, ey = sg * 0.063 * st.eye_spacing, 0.012
        u = np.linspace(-1.0, 1.0, 33)
        x = ex + sg * u * ew
        lift = -0.0035 * st.eye_size * (u + 1) / 2  # outer corner slightly raised: a friendly look
        skew = 1.0 - 0.18 * u  # the upper lid peaks nearer the nose
        up_open = ey + lift - eu * np.clip(1 - u**2, 0, 1) ** 0.75 * skew
        low = ey + lift + el * np.clip(1 - u**2, 0, 1) ** 0.9
        # a shut lid meets the lower lid exactly, so no sliver of eye white survives
        up = up_open * (1 - closure) + low * closure
        return x, up, low, (ex, ey)

    def _paint_eyes(self, cv: _Canvas, closure: float) -> None:
        S, st, col, P = self.S, self.style, self.style.colors, self.P
        skin = col["skin"]
        for sg in (-1, 1):
            x, up, low, (ex, ey) = self._eye_geometry(sg, closure)
            x_o, up_o, _, _ = self._eye_geometry(sg, 0.0)
            # crease above the open lid (stays when the lid closes)
            crease = P(x_o[6:-4], up_o[6:-4] - 0.0085 * st.eye_size)
            cv.paint(cv.mask([crease], stroke=max(1.0, 0.0028 * S), closed=False, blur=0.0015 * S), _mul(skin, 0.75), 0.45)
            opening = P(np.concatenate([x, x[::-1]]), np.concatenate([up, low[::-1]]))
            gap = float(np.max(low - up))
            if gap > 0.002:
                om = cv.mask([opening], pad=0.01 * S)
                m, box = om
                x0, y0, x1, y1 = box
                white = (238.0, 242.0, 245.0)
                xs, ys_ = cv.grid(box)
                upper_y = self.fy + (ey - 0.02 * st.eye_size) * S
                lid_shadow = 1.0 - 0.18 * np.clip(1 - (ys_ - upper_y) / (0.02 * S), 0, 1) + 0 * xs
                cv.paint(om, white, shade=lid_shadow.astype(np.float32))
                # iris, pupil and highlights, clipped to the opening
                icx, icy = self.cx + ex * S, self.fy + (ey + 0.001) * S
                ir = 0.0158 * st.eye_size * S

                def clipped(poly, blur=0.0):
                    mb = cv.mask([poly], blur=blur)
                    if mb is None:
                        return None
                    mm, bb = mb
                    ix0, iy0, ix1, iy1 = max(bb[0], x0), max(bb[1], y0), min(bb[2], x1), min(bb[3], y1)
                    if ix1 <= ix0 or iy1 <= iy0:
                        return None
                    mm = mm[iy0 - bb[1] : iy1 - bb[1], ix0 - bb[0] : ix1 - bb[0]] * m[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
                    return mm, (ix0, iy0, ix1, iy1)

                iris_m = clipped(_ellipse(icx, icy, ir, ir, 64))
                if iris_m is not None:
                    xs, ys_ = cv.grid(iris_m[1])
                    rr = np.sqrt((xs - icx) ** 2 + (ys_ - icy) ** 2) / ir
                    shade = 0.72 + 0.45 * np.clip(rr, 0, 1) ** 1.5 - 0.25 * np.clip(rr - 0.85, 0, 1) / 0.15
                    shade = shade - 0.2 * np.clip(1 - (ys_ - (icy - ir)) / (0.6 * ir), 0, 1)
                    cv.paint(iris_m, col["iris"], shade=shade.astype(np.float32))
                pm = clipped(_ellipse(icx, icy, ir * 0.47, ir * 0.47, 48))
                cv.paint(pm, (28.0, 22.0, 20.0))
                hm = clipped(_ellipse(icx - ir * 0.36, icy - ir * 0.38, ir * 0.26, ir * 0.24, 32))
                cv.paint(hm, (255.0, 255.0, 255.0), 0.95)
                hm2 = clipped(_ellipse(icx + ir * 0.38, icy + ir * 0.32, ir * 0.11, ir * 0.11, 24))
                cv.paint(hm2, (255.0, 255.0, 255.0), 0.7)
                lower_line = P(x[4:-2], low[4:-2])
                cv.paint(cv.mask([lower_line], stroke=max(1.0, 0.0022 * S), closed=False, blur=0.001 * S), _mul(skin, 0.68), 0.55)
            # lash line along the current upper lid, thick in the middle, flicked at the outer end
            th = (0.0052 - 0.0012 * closure) * st.eye_size
            w = th * (0.35 + 0.65 * np.sin(np.linspace(0.15, math.pi - 0.35, len(x))))
            uy = up - w * 0.35
            top_edge = np.stack([x, uy - w / 2], 1)
            bot_edge = np.stack([x, uy + w / 2], 1)
            flick = np.array([[x[-1] + sg * 0.006 * st.eye_size, uy[-1] - 0.006 * st.eye_size]])
            lash = np.concatenate([top_edge, flick, bot_edge[::-1]])
            cv.paint(cv.mask([P(*lash.T)], blur=0.0008 * S), (45.0, 38.0, 40.0), 0.95)

    # ------------------------------------------------------------------ mouth

    def _mouth_curves(self, m: MouthShape):
        """Inner-upper, inner-lower, outer-upper, outer-lower curves (x, y in units of S)."""
        st = self.style
        o = min(1.0, max(0.0, float(m.open)))
        sp = min(1.0, max(0.0, float(m.spread)))
        rd = min(1.0, max(0.0, float(m.round)))
        cl = min(1.0, max(0.0, float(m.close)))
        oe = o * (1.0 - cl)
        w = 0.047 * st.mouth_width * (1 + 0.28 * sp - 0.38 * rd) * (1 - 0.1 * oe)
        gap = 0.058 * oe * (1 - 0.3 * sp) + 0.015 * rd * (1 - cl) * (1 - 0.6 * oe)
        w_in = w * (0.86 - 0.12 * rd)
        lift = (0.0095 * (1 - 0.5 * oe) + 0.003 * sp) * (1 - rd)
        p = 0.62 - 0.25 * rd + 0.3 * sp
        lf = st.lip_fullness
        tu = 0.0085 * lf * (1 - 0.3 * cl) * (1 + 0.5 * rd) * (1 - 0.25 * sp)
        tl = 0.0118 * lf * (1 - 0.3 * cl) * (1 + 0.45 * rd) * (1 - 0.25 * sp)
        x = np.linspace(-w, w, 31)
        f = np.clip(1 - (x / w_in) ** 2, 0, 1) ** p
        g = np.clip(1 - (x / w) ** 2, 0, 1) ** 0.5
        curve = -lift * (x / w) ** 2
        yui = curve - gap * 0.3 * f
        yli = curve + gap * 0.7 * f
        ax = np.abs(x) / w
        bow = tu * (0.32 * np.exp(-(((ax - 0.3) / 0.16) ** 2)) - 0.22 * np.exp(-((ax / 0.1) ** 2)))
        yuo = yui - tu * g - bow
        ylo = yli + tl * g ** 0.8
        return x, yui, yli, yuo, ylo, gap, w_in

    def _mouth_bounds(self) -> None:
        my = 0.122 * self.style.face_length
        self._mouth_y = my
        xs, ys = [], []
        vals = (0.0, 0.5, 1.0)
        for o in vals:
            for sp in vals:
                for rd in vals:
                    for cl in vals:
                        x, yui, yli, yuo, ylo, _, _ = self._mouth_curves(MouthShape(o, sp, rd, cl))
                        xs += [x.min(), x.max()]
                        ys += [yuo.min(), ylo.max()]
        S = self.S
        ext_x = max(abs(min(xs)), abs(max(xs))) * 1.1 * S
        mc = self.P(0.0, my)
        d = self._max_disp(abs(mc[1] - self.pivot[1]) + ext_x) + 3
        x0 = mc[0] - ext_x - d
        x1 = mc[0] + ext_x + d
        y0 = mc[1] + min(ys) * 1.1 * S - d
        y1 = mc[1] + max(ys) * 1.1 * S + d
        self._mouth_box = (
            max(0, int(math.floor(x0))),
            max(0, int(math.floor(y0))),
            min(self.width, int(math.ceil(x1))),
            min(self.height, int(math.ceil(y1))),
        )

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

    def _mouth_tables(self) -> None:
        """Per-frame constants of _draw_mouth, computed once: colours, unit circles, the crease's
        parameter. Drawing a mouth is ~30 small polygons; without these the numpy call overhead,
        not the pixels, was most of its cost."""
        col = self.style.colors
        lips = col["lips"]
        self._mc = {
            "crease": _mul(col["skin"], 0.92), "upper": _mul(lips, 0.8), "lower": lips,
            "hl": _mul(lips, 1.05, 8), "seam": _mul(lips, 0.42), "corner": _mul(lips, 0.5),
        }
        self._crease_u = np.linspace(-1, 1, 9)
        t12 = np.linspace(0.0, 2 * math.pi, 12, endpoint=False)
        t32 = np.linspace(0.0, 2 * math.pi, 32, endpoint=False)
        self._circle12 = np.stack([np.cos(t12), np.sin(t12)], axis=1)
        self._circle32 = (np.cos(t32), np.sin(t32))
        self._seam_thick = max(1, int(round(0.0032 * self.S)))
        self._crease_thick = max(1, int(round(0.004 * self.S)))
        self._corner_r = max(1.0, 0.0022 * self.S)

    def _draw_mouth(self, out: np.ndarray, M: np.ndarray, mouth: MouthShape) -> None:
        S = self.S
        mc = self._mc
        x, yui, yli, yuo, ylo, gap, w_in = self._mouth_curves(mouth)
        # T: head-local (x, y) in units of S -> this frame's pixels, i.e. P(x, y + mouth_y) then
        # the head's affine M, folded into one 2x2 matrix and an offset
        A = M[:, :2]
        a00, a01, a10, a11 = S * A[0, 0], S * A[0, 1], S * A[1, 0], S * A[1, 1]
        px, py = self.cx, self.fy + self._mouth_y * S
        c0 = A[0, 0] * px + A[0, 1] * py + M[0, 2]
        c1 = A[1, 0] * px + A[1, 1] * py + M[1, 2]

        def T(xx, yy):
            pts = np.empty((xx.shape[0], 2))
            pts[:, 0] = xx * a00 + yy * a01 + c0
            pts[:, 1] = xx * a10 + yy * a11 + c1
            return pts

        xx = np.concatenate([x, x[::-1]])
        outer = T(xx, np.concatenate([yuo, ylo[::-1]]))
        # everything is drawn inside a small box of out; sub-pixel fixed point keeps motion smooth
        hx0, hy0, hx1, hy1 = self._hrect
        bx0 = max(hx0, int(outer[:, 0].min()) - 3)
        by0 = max(hy0, int(outer[:, 1].min()) - 3)
        bx1 = min(hx1, int(outer[:, 0].max()) + 4)
        by1 = min(hy1, int((outer[:, 1].max()) + 0.02 * S) + 4)
        if bx1 <= bx0 or by1 <= by0:
            return
        roi = out[by0:by1, bx0:bx1]
        o = np.array([bx0, by0], np.float64)
        aa = cv2.LINE_AA

        # soft crease under the lower lip
        u = self._crease_u
        crease = T(u * 0.35 * x[-1], ylo.max() + 0.011 - 0.003 * u**2)
        cv2.polylines(roi, [_fix(crease - o)], False, mc["crease"], self._crease_thick, aa, _SHIFT)

        cv2.fillPoly(roi, [_fix(outer - o)], mc["lower"], aa, _SHIFT)
        upper = T(xx, np.concatenate([yuo, yui[::-1]]))
        cv2.fillPoly(roi, [_fix(upper - o)], mc["upper"], aa, _SHIFT)
        # a highlight on the lower lip
        k = len(x)
        lo, hi = k // 2 - k // 5, k // 2 + k // 5 + 1
        hl_x = x[lo:hi]
        d = ylo[lo:hi] - yli[lo:hi]
        hl = T(np.concatenate([hl_x, hl_x[::-1]]), np.concatenate([yli[lo:hi] + 0.4 * d, (yli[lo:hi] + 0.6 * d)[::-1]]))
        cv2.fillPoly(roi, [_fix(hl - o)], mc["hl"], aa, _SHIFT)

        gap_px = gap * S
        if gap_px >= 0.8:
            inner = T(xx, np.concatenate([yui, yli[::-1]]))
            ix0 = max(0, int(inner[:, 0].min()) - bx0 - 1)
            iy0 = max(0, int(inner[:, 1].min()) - by0 - 1)
            ix1 = min(roi.shape[1], int(inner[:, 0].max()) - bx0 + 3)
            iy1 = min(roi.shape[0], int(inner[:, 1].max()) - by0 + 3)
            if ix1 > ix0 and iy1 > iy0:
                sub = roi[iy0:iy1, ix0:ix1]
                oo = o + (ix0, iy0)
                mask = np.zeros(sub.shape[:2], np.uint8)
                cv2.fillPoly(mask, [_fix(inner - oo)], 255, aa, _SHIFT)
                content = np.empty_like(sub)
                content[:] = (38, 26, 62)
                open_t = min(1.0, gap / 0.05)
                # tongue and lower teeth sit low, upper teeth hang from the upper lip
                cs, sn = self._circle32
                tongue = T(w_in * 0.62 * cs, float(yli.max()) - 0.12 * gap + (0.3 * gap + 0.004) * sn)
                cv2.fillPoly(content, [_fix(tongue - oo)], (92, 84, 186), aa, _SHIFT)
                if open_t > 0.3:
                    sel = np.abs(x) < w_in * 0.55
                    lt = x[sel]
                    ylt = yli[sel]  # x is a grid of the curves themselves: interp at x is a lookup
                    lteeth = T(np.concatenate([lt, lt[::-1]]), np.concatenate([ylt - 0.006 * open_t, ylt[::-1] + 0.01]))
                    cv2.fillPoly(content, [_fix(lteeth - oo)], (200, 204, 210), aa, _SHIFT)
                sel = np.abs(x) < w_in * 0.82
                ut = x[sel]
                yut = yui[sel]
                th = min(0.016, 0.45 * gap + 0.003)
                prof = np.clip(1 - (ut / (w_in * 0.82)) ** 2, 0, 1) ** 0.3
                edge_y = yut + th * prof
                teeth = T(np.concatenate([ut, ut[::-1]]), np.concatenate([yut - 0.01, edge_y[::-1]]))
                cv2.fillPoly(content, [_fix(teeth - oo)], (236, 241, 246), aa, _SHIFT)
                # a faint line where teeth meet the gum shadow
                cv2.polylines(content, [_fix(T(ut, edge_y) - oo)], False, (196, 202, 210), 1, aa, _SHIFT)
                a = mask.astype(np.float32) * (1.0 / 255.0)
                cv2.blendLinear(content, sub, a, 1.0 - a, dst=sub)
        # the line where the lips meet (and a dark corner) reads at any size
        seam = T(x, (yui + yli) * 0.5)
        if gap_px < 1.5:
            cv2.polylines(roi, [_fix(seam - o)], False, mc["seam"], self._seam_thick, aa, _SHIFT)
        r = self._corner_r
        for end in (0, -1):
            pts = seam[end] + r * self._circle12
            cv2.fillPoly(roi, [_fix(pts - o)], mc["corner"], aa, _SHIFT)

    # ------------------------------------------------------------------ per frame

    def _scratch(self):
        s = getattr(self._tls, "bufs", None)
        if s is None:
            hx0, hy0, hx1, hy1 = self._hrect
            h, w = hy1 - hy0, hx1 - hx0
            s = (np.empty((h, w, 3), np.uint8), np.empty((h, w), np.float32), np.empty((h, w), np.float32))
            self._tls.bufs = s
        return s

    def render(self, out: np.ndarray, frame_index: int, mouth: MouthShape, fresh: bool = True) -> None:
        """Draw frame `frame_index` into out (H, W, 3) uint8 BGR, C-contiguous, preallocated by the caller."""
        if out.shape != (self.height, self.width, 3) or out.dtype != np.uint8:
            raise ValueError(f"out must be ({self.height}, {self.width}, 3) uint8, got {out.shape} {out.dtype}")
        if fresh:
            np.copyto(out, self._static)

        # breathing: the body rectangle is a sub-pixel vertical shift of the base layer
        _, _, _, breath = self.pose(frame_index)
        bx0, by0, bx1, by1 = self._brect
        n = by1 - by0
        if n > 0:
            k = int(breath)
            f = breath - k
            dst = out[by0:by1, bx0:bx1]
            if f < 1e-3:
                np.copyto(dst, self._base[k : k + n])
            else:
                cv2.addWeighted(self._base[k : k + n], 1.0 - f, self._base[k + 1 : k + 1 + n], f, 0.0, dst=dst)

        hx0, hy0, hx1, hy1 = self._hrect
        if hy0 < by0:
            top = min(by0, hy1)
            np.copyto(out[hy0:top, hx0:hx1], self._static[hy0:top, hx0:hx1])

        M = self._head_matrix(frame_index)
        Ml = M.copy()
        Ml[:, 2] += M[:, :2] @ (hx0, hy0) - (hx0, hy0)
        spr, a, inv = self._scratch()
        h, w = spr.shape[:2]
        cv2.warpAffine(self._sprite, Ml, (w, h), dst=spr, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        level = int(round(self.blink_closure(frame_index) * (_EYE_LEVELS - 1)))
        if level:
            ex0, ey0, ex1, ey1 = self._eye_rect
            dm = self._eye_margin
            d0x, d0y, d1x, d1y = ex0 + dm, ey0 + dm, ex1 - dm, ey1 - dm
            if d1x > d0x and d1y > d0y:
                Me = M.copy()
                Me[:, 2] += M[:, :2] @ (ex0, ey0) - (d0x, d0y)
                view = spr[d0y - hy0 : d1y - hy0, d0x - hx0 : d1x - hx0]
                cv2.warpAffine(self._eye_variants[level], Me, (d1x - d0x, d1y - d0y), dst=view, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.warpAffine(self._alpha, Ml, (w, h), dst=a, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        np.subtract(1.0, a, out=inv)
        dsth = out[hy0:hy1, hx0:hx1]
        cv2.blendLinear(spr, dsth, a, inv, dst=dsth)

        self._draw_mouth(out, M, mouth)
