"""The drawn avatar's style and the small types it shares: MouthShape, DrawnStyle, drawing
constants and the float32 painting canvas used once per size by the prerender (drawn_paint.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from dhlive_cli.errors import InputError

HAIR_STYLES = ("short", "bob", "long")
CLOTHING = ("crew", "blazer")

_SHIFT = 4  # fixed-point bits for cv2 drawing: sub-pixel positions keep slow motion smooth
_ONE = 1 << _SHIFT
_EYE_LEVELS = 6  # eyelid closures prerendered: 0, 0.2, ... 1.0


# What the painter is made for (a head that fits the frame, features on the face): outside
# these, heads of 2x scale or more failed to paint (a Python error instead of a message)
_PROPORTIONS = ("head_scale", "face_width", "face_length", "eye_size", "eye_spacing", "mouth_width",
                "lip_fullness", "shoulder_width")
_RANGES = {**{k: (0.5, 1.5) for k in _PROPORTIONS}, "blush": (0.0, 1.0), "breath_hz": (0.05, 1.0),
           "breath_amount": (0.0, 3.0), "sway_amount": (0.0, 3.0)}


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
            try:
                lo, hi = (float(v) for v in kwargs["blink_interval_s"])
            except (TypeError, ValueError):
                raise InputError("avatar.toml: blink_interval_s must be two numbers of seconds, "
                                 "e.g. [2.4, 5.6]") from None
            if not (2.0 <= lo <= hi <= 6.0):
                raise InputError("avatar.toml: blink_interval_s must lie within [2, 6] seconds")
            kwargs["blink_interval_s"] = (lo, hi)
        style = cls(**kwargs)
        for name in ("blink_ms", *_RANGES):  # TOML gives ints, floats, strings, ...: numbers only
            v = getattr(style, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"avatar.toml: {name} must be a number, got {v!r}")
        if isinstance(style.seed, bool) or not isinstance(style.seed, int) or not 0 <= style.seed < 2**63:
            raise InputError(f"avatar.toml: seed must be a whole number from 0 to 2**63 - 1, got {style.seed!r}")
        if style.hair_style not in HAIR_STYLES:
            raise InputError(f"avatar.toml: hair_style must be one of {HAIR_STYLES}")
        if style.clothing not in CLOTHING:
            raise InputError(f"avatar.toml: clothing must be one of {CLOTHING}")
        if not 60.0 <= style.blink_ms <= 400.0:
            raise InputError("avatar.toml: blink_ms must lie within [60, 400]")
        for name, (lo, hi) in _RANGES.items():
            v = getattr(style, name)
            if not lo <= v <= hi:  # NaN fails too
                raise InputError(f"avatar.toml: {name} = {getattr(style, name)!r} must lie within [{lo:g}, {hi:g}]")
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


