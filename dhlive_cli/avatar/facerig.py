"""The photoreal mouth: a warp of lips and jaw driven by the mouth parameters, a synthesised
inner mouth, and eyelid blinks, all computed from one frame's face-mesh landmarks.

Geometry lives in a face frame per frame: origin at the middle of the inner lip corners, ``u``
along the corner-to-corner axis in units of the inner half-width ``hw``, ``v`` perpendicular to
it (down the face) in pixels. Head roll and small yaw come with the landmarks of each frame.

The warp is a backward map (output pixel -> source pixel) for ``cv2.remap``, built from a smooth
forward displacement with one deliberate discontinuity: the lip seam. Points below the seam follow
the lower lip and jaw, points above it follow the upper lip; the gap that opens between the two
is covered by the synthesised inner mouth. The forward field is inverted by fixed-point
iteration (``s = p - d(s)``), which converges because every field has a vertical slope well
under one. Each field is multiplied by an envelope that is zero on the warp box border, so the
warped box meets the untouched frame without a seam. The fields are evaluated on a coarse grid
and upsampled (they are smooth); only the inner mouth is drawn at full resolution.

Everything here is pure numpy/OpenCV on small arrays; per-thread scratch is owned by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# MediaPipe face-mesh indices (468-point topology). Lip rings run from the image-left corner
# (the subject's right, 61/78) to the image-right corner (291/308).
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
NOSE_BOTTOM = 2
CHIN = 152
FACE_EDGE_L, FACE_EDGE_R = 234, 454  # cheek edges at the ear line (image left, image right)
EYE_A_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)  # the eye on the image left
EYE_A_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_B_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)  # the eye on the image right
EYE_B_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
BROW_A = (46, 53, 52, 65, 55)  # lower edge of the brow over eye A
BROW_B = (276, 283, 282, 295, 285)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

# The subset of landmarks the rig reads, gathered once per avatar: RIG_INDEX[k] is mesh index.
RIG_INDEX = np.array(sorted(set(UPPER_INNER + LOWER_INNER + UPPER_OUTER + LOWER_OUTER + EYE_A_UPPER
                                + EYE_A_LOWER + EYE_B_UPPER + EYE_B_LOWER + BROW_A + BROW_B + FACE_OVAL
                                + (NOSE_BOTTOM, CHIN, FACE_EDGE_L, FACE_EDGE_R))), dtype=np.int64)
_POS = {int(m): k for k, m in enumerate(RIG_INDEX)}


def rig_slots(indices) -> np.ndarray:
    """Positions in the rig subset of the given mesh indices."""
    return np.array([_POS[i] for i in indices], dtype=np.int64)


_UI, _LI = rig_slots(UPPER_INNER), rig_slots(LOWER_INNER)
_UO, _LO = rig_slots(UPPER_OUTER), rig_slots(LOWER_OUTER)
_EAU, _EAL = rig_slots(EYE_A_UPPER), rig_slots(EYE_A_LOWER)
_EBU, _EBL = rig_slots(EYE_B_UPPER), rig_slots(EYE_B_LOWER)
_OVAL = rig_slots(FACE_OVAL)
_NOSE, _CHIN = _POS[NOSE_BOTTOM], _POS[CHIN]
_EDGE_L, _EDGE_R = _POS[FACE_EDGE_L], _POS[FACE_EDGE_R]

_N_SAMPLES = 25  # samples along each inner lip edge


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.minimum(np.maximum(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _hat(x: np.ndarray, t: float) -> np.ndarray:
    """0 at x <= 0, rising to 1 at x = t, back to 0 at x = 2t: where a lip's thickness changes."""
    up = np.minimum(np.maximum(x * (1.0 / t), 0.0), 1.0)
    return np.where(x < t, up, 1.0 - smoothstep((x - t) * (1.0 / t)))


def _monotone(u: np.ndarray) -> np.ndarray:
    """np.interp needs increasing sample positions; landmark noise may break that by a hair."""
    return np.maximum.accumulate(u + np.arange(u.shape[0]) * 1e-4)


# --------------------------------------------------------------------------- palette


@dataclass(frozen=True, slots=True)
class MouthPalette:
    """BGR float colours for the inner mouth, sampled from the face at prepare time."""

    lips: tuple[float, float, float]
    skin: tuple[float, float, float]
    teeth: tuple[float, float, float]
    cavity: tuple[float, float, float]
    tongue: tuple[float, float, float]

    def as_hex(self) -> dict[str, str]:
        def h(c):
            b, g, r = (int(round(min(255.0, max(0.0, x)))) for x in c)
            return f"#{r:02x}{g:02x}{b:02x}"

        return {k: h(getattr(self, k)) for k in ("lips", "skin", "teeth", "cavity", "tongue")}

    @classmethod
    def from_hex(cls, table: dict) -> "MouthPalette":
        def c(v):
            s = str(v).lstrip("#")
            r, g, b = (int(s[i : i + 2], 16) for i in (0, 2, 4))
            return (float(b), float(g), float(r))

        return cls(**{k: c(table[k]) for k in ("lips", "skin", "teeth", "cavity", "tongue")})


def _luma(c) -> float:
    b, g, r = c
    return 0.114 * b + 0.587 * g + 0.299 * r


def sample_palette(bgr: np.ndarray, rig_pts: np.ndarray) -> MouthPalette:
    """Lip, skin and (if the source shows them) teeth tones of one frame; derived inner colours."""
    h, w = bgr.shape[:2]
    ring = np.concatenate([rig_pts[_UO], rig_pts[_LO][::-1]])
    inner = np.concatenate([rig_pts[_UI], rig_pts[_LI][::-1]])
    m_out = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m_out, [np.round(ring).astype(np.int32)], 255)
    m_in = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m_in, [np.round(inner).astype(np.int32)], 255)
    lips_m = cv2.erode(m_out, np.ones((3, 3), np.uint8)) & ~cv2.dilate(m_in, np.ones((3, 3), np.uint8))
    lips = _masked_median(bgr, lips_m) or (110.0, 115.0, 180.0)
    # skin: a band of the chin between the lower lip and the chin point
    lo_mid = rig_pts[_LO[5]]
    chin = rig_pts[_CHIN]
    hw = 0.5 * np.linalg.norm(rig_pts[_UO[-1]] - rig_pts[_UO[0]])
    skin_m = np.zeros((h, w), np.uint8)
    cxy = 0.45 * lo_mid + 0.55 * chin
    cv2.ellipse(skin_m, (int(cxy[0]), int(cxy[1])), (max(2, int(0.45 * hw)), max(2, int(0.12 * np.linalg.norm(chin - lo_mid)))),
                0, 0, 360, 255, -1)
    skin = _masked_median(bgr, skin_m) or tuple(min(255.0, 1.15 * x + 20) for x in lips)
    # teeth: the bright, low-saturation part of an open source mouth, if any
    teeth = None
    if cv2.countNonZero(m_in) > 30:
        px = bgr[m_in > 0].astype(np.float32)
        lum = px @ np.array([0.114, 0.587, 0.299], np.float32)
        sat = (px.max(axis=1) - px.min(axis=1)) / np.maximum(px.max(axis=1), 1.0)
        # teeth are bright and nearly colourless; lips and gums are not
        sel = (lum > np.percentile(lum, 60)) & (sat < 0.22) & (lum > 0.8 * _luma(skin))
        if sel.sum() > max(15, 0.1 * len(px)):
            teeth = tuple(float(x) for x in np.median(px[sel], axis=0))
    if teeth is None:
        k = min(0.92, max(0.5, (_luma(skin) + 20.0) / 255.0))
        teeth = tuple(k * (0.88 * x + 0.12 * s) for x, s in zip((226.0, 234.0, 238.0), skin))
    # inside colours follow the lips: a dark red-brown cavity, a muted pink-red tongue
    cavity = (0.2 * lips[0], 0.2 * lips[1], 0.36 * lips[2])
    tongue = (0.55 * lips[0], 0.55 * lips[1], 0.8 * lips[2])
    return MouthPalette(lips=lips, skin=skin, teeth=teeth, cavity=cavity, tongue=tongue)


def _masked_median(bgr: np.ndarray, mask: np.ndarray):
    if cv2.countNonZero(mask) < 8:
        return None
    return tuple(float(x) for x in np.median(bgr[mask > 0].astype(np.float32), axis=0))


# --------------------------------------------------------------------------- mouth geometry


@dataclass(slots=True)
class MouthGeometry:
    """One frame's mouth, jaw and warp box in the face frame (see the module docstring)."""

    cx: float
    cy: float
    ex: tuple[float, float]
    ey: tuple[float, float]
    hw: float  # inner half-width, px
    us: np.ndarray  # (n,) sample positions along the inner edges, -1..1
    vup: np.ndarray  # upper inner edge v at us (source)
    vlo: np.ndarray  # lower inner edge v at us (source)
    gap: np.ndarray  # source opening at us (>= 0)
    t_up: float  # upper lip thickness at the centre, px
    t_lo: float
    v_nose: float  # nose bottom (negative)
    chin: float  # chin v
    uf: float  # face half-width in u units
    ub: float  # warp box half-width in u units
    v_bot: float  # warp box bottom
    box: tuple[int, int, int, int]  # warp box in pixels (x0, y0, x1, y1), clipped to the frame

    @classmethod
    def from_points(cls, pts: np.ndarray, width: int, height: int) -> "MouthGeometry":
        """pts: (K, 2) rig landmarks of one frame in output pixels."""
        a, b = pts[_UI[0]], pts[_UI[-1]]
        a = 0.5 * (a + pts[_LI[0]])
        b = 0.5 * (b + pts[_LI[-1]])
        c = 0.5 * (a + b)
        d = b - a
        hw = max(1.0, 0.5 * float(math.hypot(d[0], d[1])))
        ex = d / (2.0 * hw)
        ey = np.array([-ex[1], ex[0]])

        def uv(p):
            q = p - c
            return q @ ex / hw, q @ ey

        uu, vu = uv(pts[_UI])
        ul, vl = uv(pts[_LI])
        us = np.linspace(-1.0, 1.0, _N_SAMPLES)
        vup = np.interp(us, _monotone(uu), vu)
        vlo = np.interp(us, _monotone(ul), vl)
        gap = np.maximum(vlo - vup, 0.0)
        mid_lo = 0.5 * (vup + vlo)
        vlo = np.maximum(vlo, mid_lo)
        vup = np.minimum(vup, mid_lo)
        _, vuo = uv(pts[_UO[5]])
        _, vlo_o = uv(pts[_LO[5]])
        t_up = max(2.0, float(vup[_N_SAMPLES // 2] - vuo))
        t_lo = max(2.0, float(vlo_o - vlo[_N_SAMPLES // 2]))
        _, v_nose = uv(pts[_NOSE])
        v_nose = min(float(v_nose), float(vup.min()) - 1.5 * t_up)
        _, chin = uv(pts[_CHIN])
        chin = max(float(chin), float(vlo_o) + 2.0 * t_lo)
        ul_e, _ = uv(pts[_EDGE_L])
        ur_e, _ = uv(pts[_EDGE_R])
        uf = max(1.6, 0.5 * float(ur_e - ul_e))
        ub = 1.08 * uf
        v_bot = chin + 0.9 * (chin - float(vlo[_N_SAMPLES // 2]))
        corners = np.array([[-ub, v_nose], [ub, v_nose], [ub, v_bot], [-ub, v_bot]])
        px = c[0] + corners[:, 0] * hw * ex[0] + corners[:, 1] * ey[0]
        py = c[1] + corners[:, 0] * hw * ex[1] + corners[:, 1] * ey[1]
        x0 = max(0, int(math.floor(px.min())) - 1)
        y0 = max(0, int(math.floor(py.min())) - 1)
        x1 = min(width, int(math.ceil(px.max())) + 2)
        y1 = min(height, int(math.ceil(py.max())) + 2)
        return cls(float(c[0]), float(c[1]), (float(ex[0]), float(ex[1])), (float(ey[0]), float(ey[1])), hw,
                   us, vup, vlo, gap, t_up, t_lo, float(v_nose), chin, uf, ub, v_bot, (x0, y0, x1, y1))

    # ------------------------------------------------------------------ coordinates
    def to_face(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qx, qy = px - self.cx, py - self.cy
        u = (qx * self.ex[0] + qy * self.ex[1]) * (1.0 / self.hw)
        v = qx * self.ey[0] + qy * self.ey[1]
        return u, v

    def to_px(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uh = u * self.hw
        return self.cx + uh * self.ex[0] + v * self.ey[0], self.cy + uh * self.ex[1] + v * self.ey[1]


@dataclass(frozen=True, slots=True)
class MouthPose:
    """Amplitudes (px) derived from the mouth parameters for one geometry."""

    gap: float  # target opening at the centre
    corner: float  # corner motion outward (negative: inward)
    corner_lift: float
    thin_up: float  # upper lip outer edge toward the seam
    thin_lo: float
    close: float

    @classmethod
    def from_shape(cls, g: MouthGeometry, open_: float, spread: float, round_: float, close: float) -> "MouthPose":
        o = min(1.0, max(0.0, open_)) * (1.0 - min(1.0, max(0.0, close)))
        sp, rd, cl = (min(1.0, max(0.0, x)) for x in (spread, round_, close))
        return cls(
            gap=0.85 * o * g.hw,
            corner=g.hw * (0.13 * sp - 0.24 * rd - 0.05 * o),
            corner_lift=g.hw * 0.05 * sp,
            thin_up=g.t_up * (0.3 * cl + 0.15 * sp - 0.22 * rd),
            thin_lo=g.t_lo * (0.3 * cl + 0.18 * sp - 0.22 * rd),
            close=cl,
        )


class MouthWarp:
    """The forward displacement field of one (geometry, pose) and its backward map."""

    def __init__(self, g: MouthGeometry, p: MouthPose):
        self.g, self.p = g, p
        us = g.us
        self.bump = np.clip(1.0 - us * us, 0.0, 1.0) ** 0.6
        self.gt = p.gap * self.bump  # target opening along the mouth
        mid = g.gap
        self.d_up = 0.4 * mid - 0.12 * self.gt  # upper inner edge moves down to the meeting line
        self.d_lo = 0.88 * self.gt - 0.6 * mid  # lower inner edge moves up to it, then opens
        self.jaw0 = 1.05 * float(self.d_lo[_N_SAMPLES // 2])
        self.up_len = max(2.0, float(g.vup[_N_SAMPLES // 2]) - g.v_nose)
        self.lo_len = max(2.0, g.chin - float(g.vlo[_N_SAMPLES // 2]))
        self.sig_h = 1.3 * max(g.t_up, g.t_lo) + 0.5 * float(mid.max())
        self._tab_up = np.stack([g.vup, self.d_up], axis=1)
        self._tab_lo = np.stack([g.vlo, self.d_lo], axis=1)
        # target inner edges (used to split the output into upper / lower sides, and to draw)
        uu, vu = self.forward(us, g.vup, lower=False)
        ul, vl = self.forward(us, g.vlo, lower=True)
        self.up_t = (uu, vu)
        self.lo_t = (ul, vl)
        self.mid_u = _monotone(0.5 * (uu + ul))
        self.mid_v = 0.5 * (vu + vl)

    # ---------------------------------------------------------------- the field
    # Everything that depends on u alone ("profiles") is evaluated once or twice per point; the
    # fixed-point iteration then only redoes the cheap v-dependent part.

    def _profiles(self, su: np.ndarray, lower: bool) -> tuple:
        g = self.g
        n = _N_SAMPLES - 1
        t = np.clip((su + 1.0) * (0.5 * n), 0.0, float(n))
        i = np.minimum(t.astype(np.int32), n - 1)
        f = t - i
        tab = self._tab_lo if lower else self._tab_up
        e0, e1 = tab[i], tab[i + 1]
        vals = e0 + (e1 - e0) * f[:, None]
        a = np.abs(su)
        q = su * (1.0 / 1.15)
        lp = np.maximum(1.0 - q * q, 0.0)
        prof = np.where(a <= 1.0, a, np.exp(-((a - 1.0) * (1.0 / 0.9)) ** 2))
        eu = smoothstep((g.ub - a) * (1.0 / (g.ub - 0.55 * g.uf)))
        if lower:
            q = su * (1.0 / g.uf)
            jaw = self.jaw0 * np.clip(1.0 - 0.85 * q * q, 0.1, 1.0)
        else:
            jaw = None
        return vals[:, 0], vals[:, 1], lp, prof, np.sign(su) * prof, eu, jaw

    def _step(self, P: tuple, sv: np.ndarray, lower: bool) -> tuple[np.ndarray, np.ndarray]:
        """(du, dv) forward at source points with profiles P (their u) and vertical positions sv."""
        g, p = self.g, self.p
        edge, d, lp, prof, sprof, eu, jaw = P
        if lower:
            rel = sv - edge
            dv = d + smoothstep(rel * (1.0 / self.lo_len)) * (jaw - d)
            if p.thin_lo:
                dv = dv - p.thin_lo * _hat(rel, g.t_lo) * lp
        else:
            rel = edge - sv
            dv = d * (1.0 - smoothstep(rel * (1.0 / self.up_len)))
            if p.thin_up:
                dv = dv + p.thin_up * _hat(rel, g.t_up) * lp
        q = sv * (1.0 / self.sig_h)
        hy = np.exp(-q * q)
        if p.corner_lift:
            dv = dv - p.corner_lift * prof * prof * hy
        e = eu * smoothstep((g.v_bot - sv) * (1.0 / (g.v_bot - g.chin))) * smoothstep((sv - g.v_nose) * (1.0 / -g.v_nose))
        du = (p.corner / g.hw) * sprof * hy * e if p.corner else np.zeros_like(sv)
        return du, dv * e

    def field(self, su: np.ndarray, sv: np.ndarray, lower: bool) -> tuple[np.ndarray, np.ndarray]:
        """Forward displacement (du in u units, dv in px) of source points on one side of the seam."""
        su = np.asarray(su, np.float64).ravel()
        sv = np.asarray(sv, np.float64).ravel()
        return self._step(self._profiles(su, lower), sv, lower)

    def forward(self, su, sv, lower: bool):
        du, dv = self.field(su, sv, lower)
        return su + du, sv + dv

    def inverse_side(self, u: np.ndarray, v: np.ndarray, lower: bool) -> tuple[np.ndarray, np.ndarray]:
        P = self._profiles(u, lower)
        du, dv = self._step(P, v, lower)
        su, sv = u - du, v - dv
        P = self._profiles(su, lower)  # the corners moved: profiles where the point came from
        for _ in range(2):
            du, dv = self._step(P, sv, lower)
            sv = v - dv
        return u - du, sv

    def inverse(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source (u, v) of output points (u, v): s = p - d(s), side chosen by the output point."""
        shape = u.shape
        u, v = u.ravel(), v.ravel()
        lower = v > np.interp(u, self.mid_u, self.mid_v)
        su = np.empty_like(u)
        sv = np.empty_like(v)
        lo = np.flatnonzero(lower)
        up = np.flatnonzero(~lower)
        if lo.size:
            su[lo], sv[lo] = self.inverse_side(u[lo], v[lo], True)
        if up.size:
            su[up], sv[up] = self.inverse_side(u[up], v[up], False)
        return su.reshape(shape), sv.reshape(shape)

    def lower_side_polygon(self) -> np.ndarray:
        """Output-pixel polygon of everything below the seam split (the lower lip and jaw side)."""
        g = self.g
        far = 2.0 * g.ub + 1.0
        deep = g.v_bot + 4.0 * g.hw
        u = np.concatenate([[-far], self.mid_u, [far, far, -far]])
        v = np.concatenate([[self.mid_v[0]], self.mid_v, [self.mid_v[-1], deep, deep]])
        x, y = g.to_px(u, v)
        return np.stack([x, y], axis=1)

    def inner_polygon(self) -> np.ndarray:
        """Output-pixel polygon of the opened inner mouth (upper edge, then lower edge back)."""
        g = self.g
        uu, vu = self.up_t
        ul, vl = self.lo_t
        u = np.concatenate([uu, ul[::-1]])
        v = np.concatenate([vu, vl[::-1]])
        x, y = g.to_px(u, v)
        return np.stack([x, y], axis=1)


# --------------------------------------------------------------------------- eyes


@dataclass(slots=True)
class EyeGeometry:
    cx: float
    cy: float
    ex: tuple[float, float]
    ey: tuple[float, float]
    hw: float
    us: np.ndarray
    vup: np.ndarray
    gap: np.ndarray
    reach: float  # how far above the lid the skin stretches
    box: tuple[int, int, int, int]

    @classmethod
    def from_points(cls, up: np.ndarray, lo: np.ndarray, brow: np.ndarray, width: int, height: int) -> "EyeGeometry":
        a, b = up[0], up[-1]
        if a[0] > b[0]:
            up, lo = up[::-1], lo[::-1]
            a, b = b, a
        c = 0.5 * (a + b)
        d = b - a
        hw = max(1.0, 0.5 * float(math.hypot(d[0], d[1])))
        ex = d / (2.0 * hw)
        ey = np.array([-ex[1], ex[0]])
        qu, ql = up - c, lo - c
        us = np.linspace(-1.0, 1.0, 17)
        vup = np.interp(us, _monotone(qu @ ex / hw), qu @ ey)
        vlo = np.interp(us, _monotone(ql @ ex / hw), ql @ ey)
        gap = np.maximum(vlo - vup, 0.0)
        g0 = max(1.0, float(gap.max()))
        # the lid skin stretches down from below the brow; the brow itself stays put
        qb = brow - c
        ub, vb = qb @ ex / hw, qb @ ey
        room = float(np.min(np.interp(ub, us, vup) - vb)) if brow.size else 3.0 * g0
        reach = max(1.6 * g0, min(2.2 * g0, 0.7 * room))
        top = float(vup.min()) - reach - 1.0
        bot = float(vlo.max()) + 1.0
        corners = np.array([[-1.15, top], [1.15, top], [1.15, bot], [-1.15, bot]])
        px = c[0] + corners[:, 0] * hw * ex[0] + corners[:, 1] * ey[0]
        py = c[1] + corners[:, 0] * hw * ex[1] + corners[:, 1] * ey[1]
        box = (max(0, int(math.floor(px.min()))), max(0, int(math.floor(py.min()))),
               min(width, int(math.ceil(px.max())) + 1), min(height, int(math.ceil(py.max())) + 1))
        return cls(float(c[0]), float(c[1]), (float(ex[0]), float(ex[1])), (float(ey[0]), float(ey[1])), hw, us, vup, gap,
                   reach, box)

    def displacement(self, px: np.ndarray, py: np.ndarray, closure: float, out_dx: np.ndarray, out_dy: np.ndarray) -> None:
        """Backward displacement (source - output) of a blink at `closure` in [0, 1]."""
        qx, qy = px - self.cx, py - self.cy
        u = (qx * self.ex[0] + qy * self.ex[1]) * (1.0 / self.hw)
        v = qx * self.ey[0] + qy * self.ey[1]
        vup = np.interp(u, self.us, self.vup)
        gap = np.interp(u, self.us, self.gap, left=0.0, right=0.0) * closure
        # above the lowered lid edge: stretched lid skin; below it the eye, untouched; the edge
        # itself is blended over a pixel so the lashes do not end in a cut
        lid = smoothstep(vup + gap - v + 0.5)
        inv_reach = 1.0 / self.reach
        sv = v
        for _ in range(4):
            sv = v - gap * (1.0 - smoothstep((vup - sv) * inv_reach))
        dv = (lid * (sv - v)).astype(np.float32)
        np.multiply(dv, self.ey[0], out=out_dx)
        np.multiply(dv, self.ey[1], out=out_dy)


def blink_closure(frame_index: int, fps: int, starts: tuple[int, ...], period: int, first: int, blink_ms: float) -> float:
    """Eyelid closure in [0, 1]: close fast, hold briefly, open a little slower."""
    import bisect

    phase = (int(frame_index) - first) % period
    j = bisect.bisect_right(starts, phase) - 1
    t = (phase - starts[j]) / fps
    d = blink_ms / 1000.0
    tc, th = 0.38 * d, 0.12 * d
    to = d - tc - th
    if t < tc:
        return float(smoothstep(np.float64(t / tc)))
    if t < tc + th:
        return 1.0
    if t < d:
        return float(1.0 - smoothstep(np.float64((t - tc - th) / to)))
    return 0.0


# --------------------------------------------------------------------------- inner mouth


def draw_inner_mouth(out: np.ndarray, w: MouthWarp, pal: MouthPalette, gain: float = 1.0) -> None:
    """Paint the opened inner mouth into out, feathered: a dark red cavity lit from the front,
    the wet inner rim of the lips, upper teeth hanging from the upper lip (darker to the sides and
    in the gum shadow), the tip of the lower teeth and the tongue low in the mouth when it is wide
    open. Colours come from the face's own palette."""
    g = w.g
    poly = w.inner_polygon()
    H, W = out.shape[:2]
    x0 = max(0, int(math.floor(poly[:, 0].min())) - 2)
    y0 = max(0, int(math.floor(poly[:, 1].min())) - 2)
    x1 = min(W, int(math.ceil(poly[:, 0].max())) + 3)
    y1 = min(H, int(math.ceil(poly[:, 1].max())) + 3)
    gt_c = float(w.gt.max())
    if w.p.close > 0.05 or gt_c < 1.0:
        _press_line(out, w, 0.12 + 0.2 * w.p.close)
    if x1 - x0 < 3 or y1 - y0 < 2 or gt_c < 0.35:
        return
    ph, pw = y1 - y0, x1 - x0
    m = np.zeros((ph, pw), np.uint8)
    shift = 3
    pts = np.round((poly - (x0, y0)) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, shift)
    sigma = max(0.5, 0.018 * g.hw)
    mask = cv2.GaussianBlur(m, (0, 0), sigma).astype(np.float32) * (1.0 / 255.0)
    # a small opening fades in instead of popping: its alpha grows over the first pixels of gap
    mask *= min(1.0, 0.35 + 0.65 * gt_c / 2.5)

    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = g.to_face(xs, ys)
    uu, vu = w.up_t
    ul, vl = w.lo_t
    top = np.interp(u, _monotone(uu), vu)
    bot = np.interp(u, _monotone(ul), vl)
    gap = np.maximum(bot - top, 1e-3)
    a = np.clip((v - top) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip
    depth = v - top  # px below the upper lip
    height = bot - v  # px above the lower lip
    half = float(max(abs(uu[0]), abs(uu[-1]), 0.3))
    un = np.abs(u) * (1.0 / half)  # 0 in the middle, 1 at the corners of the opening
    gain = float(gain)

    # cavity: darkest at the back and the sides, a little light reaches the middle front
    cav = np.array(pal.cavity, np.float32) * gain
    img = np.empty((ph, pw, 3), np.float32)
    img[:] = cav
    light = (0.7 + 0.35 * smoothstep(1.0 - un)) * (0.85 + 0.3 * smoothstep((a - 0.35) / 0.65))
    img *= light[..., None]
    # the wet inner rim of the lips: lip colour, darker, along both edges
    rim_w = max(0.8, 0.06 * g.hw)
    rim = np.maximum(1.0 - smoothstep(depth / rim_w), 1.0 - smoothstep(height / (1.3 * rim_w)))
    lipc = np.array(pal.lips, np.float32) * (0.5 * gain)
    img += (lipc - img) * (0.75 * rim)[..., None]

    g0 = gt_c
    # tongue: fills the floor of the mouth when it is open enough to see it
    if g0 > 0.25 * g.hw:
        t_h = 0.42 * g0
        t_top = height - t_h  # < 0 inside the tongue
        tm = smoothstep(-t_top / (0.35 * t_h)) * smoothstep((0.82 - un) / 0.3)
        tm *= min(1.0, (g0 - 0.25 * g.hw) / (0.2 * g.hw))
        tcol = np.array(pal.tongue, np.float32) * gain
        tsh = (0.55 + 0.3 * smoothstep(1.0 - un)) * (0.8 + 0.2 * smoothstep(-t_top / t_h))
        img += (tcol * tsh[..., None] - img) * tm[..., None]
    teeth = np.array(pal.teeth, np.float32) * gain
    # lower teeth: only their edge shows above the lower lip, and only when wide open
    if g0 > 0.45 * g.hw:
        lb = 0.1 * g.hw
        lm = smoothstep((lb - height + 0.5 * rim_w) / max(0.6, 0.3 * lb)) * smoothstep((0.55 - un) / 0.2)
        lm *= 0.75 * min(1.0, (g0 - 0.45 * g.hw) / (0.2 * g.hw))
        img += (teeth * 0.7 - img) * lm[..., None]

    # upper teeth: a band under the upper lip, darker to the sides and in the gum shadow
    th = 0.34 * g.hw
    band = np.clip(1.0 - un * un / 0.85, 0.0, 1.0) ** 0.5 * th
    soft = max(0.7, 0.04 * g.hw)
    tmask = smoothstep((band - depth) / soft + 0.5) * smoothstep((0.93 - un) / 0.15)
    side = 0.5 + 0.5 * np.clip(np.cos(np.clip(un, 0.0, 1.0) * (0.5 * math.pi)), 0.0, 1.0) ** 0.9
    gum = 0.78 + 0.22 * smoothstep(depth / max(1.0, 0.25 * th))
    edge = 1.0 - 0.2 * smoothstep((depth - 0.75 * band) / max(0.5, 0.25 * th))
    gaps = np.ones_like(u)
    tooth_w = max(0.035, 0.8 / g.hw)
    for k in (0.0, 0.36, -0.36, 0.64, -0.64, 0.86, -0.86):
        gaps -= 0.08 * np.exp(-(((u - k * half) / tooth_w) ** 2))
    tsh = side * gum * edge * gaps
    img += (teeth * tsh[..., None] - img) * tmask[..., None]

    dst = out[y0:y1, x0:x1]
    mf = mask[..., None]
    blended = dst.astype(np.float32)
    blended += (img - blended) * mf
    np.clip(blended, 0, 255, out=blended)
    dst[:] = blended.astype(np.uint8)


def _press_line(out: np.ndarray, w: MouthWarp, strength: float) -> None:
    """The line where closed lips meet: a soft shadow, darker when they press (p, b, m)."""
    g = w.g
    uu, vu = w.up_t
    ul, vl = w.lo_t
    u = 0.5 * (uu + ul)
    v = 0.5 * (vu + vl)
    x, y = g.to_px(u, v)
    pts = np.stack([x, y], 1)
    H, W = out.shape[:2]
    x0 = max(0, int(pts[:, 0].min()) - 4)
    y0 = max(0, int(pts[:, 1].min()) - 4)
    x1 = min(W, int(pts[:, 0].max()) + 5)
    y1 = min(H, int(pts[:, 1].max()) + 5)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 3
    cv2.polylines(m, [np.round((pts - (x0, y0)) * (1 << shift)).astype(np.int32)], False, 255,
                  max(1, int(round(0.03 * g.hw))), cv2.LINE_AA, shift)
    mk = cv2.GaussianBlur(m, (0, 0), max(0.6, 0.02 * g.hw)).astype(np.float32) * (strength / 255.0)
    dst = out[y0:y1, x0:x1]
    dst[:] = (dst.astype(np.float32) * (1.0 - mk[..., None])).astype(np.uint8)


__all__ = [
    "RIG_INDEX", "MouthGeometry", "MouthPose", "MouthWarp", "EyeGeometry", "MouthPalette", "sample_palette",
    "blink_closure", "draw_inner_mouth", "rig_slots", "smoothstep",
]
