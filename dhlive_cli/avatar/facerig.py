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
_TURN = 2.0 * math.pi
# Where the warp ends: fields fade to zero from INNER_FADE of the way to the face oval to the oval
# itself, except downward, where the chin moves as a whole and slides over the neck; points whose
# source lies beyond the oval grown by OVAL_MARGIN are never moved (neck, collar, background).
INNER_FADE = 0.7
OVAL_MARGIN = 0.05
# Below a chin that moves up (closing a mouth open in the source) the neck stretches over this
# fraction of the mouth-to-oval distance instead of showing the old chin.
NECK_STRETCH = 0.35


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 of x clipped to 0..1 (float64 arrays in, a new array out)."""
    x = np.maximum(x, 0.0)
    if not isinstance(x, np.ndarray) or x.ndim == 0:  # a scalar
        x = np.minimum(x, 1.0)
        return x * x * (3.0 - 2.0 * x)
    np.minimum(x, 1.0, out=x)
    t = 2.0 * x  # in place from here: the same arithmetic as x * x * (3 - 2x), fewer temporaries
    np.subtract(3.0, t, out=t)
    np.multiply(x, x, out=x)
    np.multiply(x, t, out=x)
    return x


def _hat(x: np.ndarray, t: float) -> np.ndarray:
    """0 at x <= 0, rising to 1 at x = t, back to 0 at x = 2t: where a lip's thickness changes."""
    up = np.minimum(np.maximum(x * (1.0 / t), 0.0), 1.0)
    return np.where(x < t, up, 1.0 - smoothstep((x - t) * (1.0 / t)))


def _monotone(u: np.ndarray) -> np.ndarray:
    """np.interp needs increasing sample positions; landmark noise may break that by a hair."""
    return np.maximum.accumulate(u + np.arange(u.shape[0]) * 1e-4)


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
    oval_t: np.ndarray  # face oval seen from the mouth centre: angles (rad, 0..2 pi, sorted, one
    #                     point repeated beyond each end so the table wraps) of its points
    oval_r: np.ndarray  # and their distances, px (angle 0 along +u, pi/2 down the face)
    oval_px: np.ndarray  # (n, 2) the oval grown by OVAL_MARGIN about the mouth centre, output px

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
        ou, ov = uv(pts[_OVAL])
        # the periodic table np.interp(..., period=2 pi) would build on every call, built once:
        # angles taken into [0, 2 pi) and sorted, the last and first points repeated across the wrap
        xp = np.arctan2(ov, ou * hw) % _TURN
        order = np.argsort(xp)
        xp, fp = xp[order], np.hypot(ou * hw, ov)[order]
        oval_t = np.concatenate((xp[-1:] - _TURN, xp, xp[0:1] + _TURN))
        oval_r = np.concatenate((fp[-1:], fp, fp[0:1]))
        oval_px = c + (pts[_OVAL] - c) * (1.0 + OVAL_MARGIN)
        return cls(float(c[0]), float(c[1]), (float(ex[0]), float(ex[1])), (float(ey[0]), float(ey[1])), hw,
                   us, vup, vlo, gap, t_up, t_lo, float(v_nose), chin, uf, ub, v_bot, (x0, y0, x1, y1),
                   oval_t, oval_r, oval_px.astype(np.float32))

    def oval_ratio(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rho, down) of face points: distance from the mouth centre over the face oval's in that
        direction (1 on the oval), and how much the direction points down the face (0..1)."""
        x = u * self.hw
        r = np.hypot(x, v)
        t = np.arctan2(v, x)
        ro = np.interp(t % _TURN, self.oval_t, self.oval_r)  # = np.interp(t, ..., period=2 pi)
        down = smoothstep((v / np.maximum(r, 1e-6) - 0.55) * (1.0 / 0.35))
        return r / np.maximum(ro, 1.0), down

    # ------------------------------------------------------------------ coordinates
    def to_face(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qx, qy = px - self.cx, py - self.cy
        u = (qx * self.ex[0] + qy * self.ex[1]) * (1.0 / self.hw)
        v = qx * self.ey[0] + qy * self.ey[1]
        return u, v

    def to_px(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uh = u * self.hw
        return self.cx + uh * self.ex[0] + v * self.ey[0], self.cy + uh * self.ex[1] + v * self.ey[1]


def effective_open(open_, close):
    """The opening drawn for mouth parameters open and close (both 0..1, scalars or arrays):
    lips pressed for b/m/p shut completely, from close = 1/2 on nothing is left open."""
    return np.clip(open_, 0.0, 1.0) * np.clip(1.0 - 2.0 * np.asarray(close, np.float64), 0.0, 1.0)


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
        o = effective_open(open_, close)
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
    """The forward displacement field of one (geometry, pose) and its backward map.

    Points are evaluated in arrays whose first ``k`` entries are on the upper side of the seam
    and the rest on the lower side, so both sides of a grid go through one pass of numpy calls
    (what the two sides share, the profiles, the envelope and the corner terms, is evaluated
    once over both); each element gets the same arithmetic as a one-sided evaluation.
    """

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
        # (2 * _N_SAMPLES,) each: the inner edges' v and displacement along u, upper edge then lower
        self._tab_v = np.concatenate([g.vup, g.vlo])
        self._tab_d = np.concatenate([self.d_up, self.d_lo])
        # target inner edges (used to split the output into upper / lower sides, and to draw)
        n = _N_SAMPLES
        su, sv = self._forward(np.concatenate([us, us]), np.concatenate([g.vup, g.vlo]), n)
        uu, vu, ul, vl = su[:n], sv[:n], su[n:], sv[n:]
        self.up_t = (uu, vu)
        self.lo_t = (ul, vl)
        self.mid_u = _monotone(0.5 * (uu + ul))
        self.mid_v = 0.5 * (vu + vl)

    # ---------------------------------------------------------------- the field
    # Everything that depends on u alone ("profiles") is evaluated once or twice per point; the
    # fixed-point iteration then only redoes the cheap v-dependent part.

    def _profiles(self, su: np.ndarray, k: int) -> tuple:
        g = self.g
        n = _N_SAMPLES - 1
        t = np.clip((su + 1.0) * (0.5 * n), 0.0, float(n))
        i = np.minimum(t.astype(np.int32), n - 1)
        f = t - i
        if k < su.shape[0]:
            i[k:] += _N_SAMPLES  # the lower edge's entries of the tables
        i1 = i + 1
        edge0, edge1 = self._tab_v.take(i), self._tab_v.take(i1)
        d0, d1 = self._tab_d.take(i), self._tab_d.take(i1)
        edge = edge0 + (edge1 - edge0) * f
        d = d0 + (d1 - d0) * f
        a = np.abs(su)
        q = su * (1.0 / 1.15)
        lp = np.maximum(1.0 - q * q, 0.0)
        prof = np.where(a <= 1.0, a, np.exp(-((a - 1.0) * (1.0 / 0.9)) ** 2))
        if k < su.shape[0]:
            q = su[k:] * (1.0 / g.uf)
            jaw = self.jaw0 * np.clip(1.0 - 0.85 * q * q, 0.1, 1.0)
        else:
            jaw = None
        return edge, d, lp, prof, np.sign(su) * prof, jaw, su, k

    def _envelope(self, su: np.ndarray, sv: np.ndarray, k: int) -> np.ndarray:
        """How much of the field acts at source points: 1 well inside the face oval, 0 outside it
        (downward the chin keeps moving: see INNER_FADE), 0 above the nose bottom."""
        g = self.g
        rho, down = g.oval_ratio(su, sv)
        inside = 1.0 - smoothstep((rho - INNER_FADE) * (1.0 / (1.0 - INNER_FADE)))
        if self.jaw0 < 0.0 and k < su.shape[0]:
            # a chin moving up drags the top of the neck with it (no second chin edge is left behind)
            down[k:] *= 1.0 - smoothstep((rho[k:] - 1.0) * (1.0 / NECK_STRETCH))
        # elsewhere beyond the grown oval the caller keeps the source (the chin covers the neck)
        return np.maximum(inside, down) * smoothstep((sv - g.v_nose) * (1.0 / -g.v_nose))

    def _step(self, P: tuple, sv: np.ndarray, env: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(du, dv) forward at source points with profiles P (their u) and vertical positions sv;
        env: their envelope when already known (it varies slowly, so the inverse reuses it)."""
        g, p = self.g, self.p
        edge, d, lp, prof, sprof, jaw, su, k = P
        n = sv.shape[0]
        dv = np.empty_like(sv)
        if k:
            rel = edge[:k] - sv[:k]
            x = d[:k] * (1.0 - smoothstep(rel * (1.0 / self.up_len)))
            if p.thin_up:
                x = x + p.thin_up * _hat(rel, g.t_up) * lp[:k]
            dv[:k] = x
        if k < n:
            dl = d[k:]
            rel = sv[k:] - edge[k:]
            x = dl + smoothstep(rel * (1.0 / self.lo_len)) * (jaw - dl)
            if p.thin_lo:
                x = x - p.thin_lo * _hat(rel, g.t_lo) * lp[k:]
            dv[k:] = x
        q = sv * (1.0 / self.sig_h)
        hy = np.exp(-q * q)
        if p.corner_lift:
            dv = dv - p.corner_lift * prof * prof * hy
        e = self._envelope(su, sv, k) if env is None else env
        du = (p.corner / g.hw) * sprof * hy * e if p.corner else np.zeros_like(sv)
        return du, dv * e

    def _forward(self, su: np.ndarray, sv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        du, dv = self._step(self._profiles(su, k), sv)
        return su + du, sv + dv

    def _inverse(self, u: np.ndarray, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        P = self._profiles(u, k)
        du, dv = self._step(P, v)
        su, sv = u - du, v - dv
        P = self._profiles(su, k)  # the corners moved: profiles where the point came from
        env = self._envelope(su, sv, k)
        for _ in range(2):
            du, dv = self._step(P, sv, env)
            sv = v - dv
        return u - du, sv

    @staticmethod
    def _flat(u, v) -> tuple[np.ndarray, np.ndarray, int]:
        u = np.asarray(u, np.float64).ravel()
        v = np.asarray(v, np.float64).ravel()
        return u, v, u.shape[0]

    def field(self, su: np.ndarray, sv: np.ndarray, lower: bool) -> tuple[np.ndarray, np.ndarray]:
        """Forward displacement (du in u units, dv in px) of source points on one side of the seam."""
        su, sv, n = self._flat(su, sv)
        return self._step(self._profiles(su, 0 if lower else n), sv)

    def forward(self, su, sv, lower: bool):
        su, sv, n = self._flat(su, sv)
        return self._forward(su, sv, 0 if lower else n)

    def inverse_side(self, u: np.ndarray, v: np.ndarray, lower: bool) -> tuple[np.ndarray, np.ndarray]:
        """Source (u, v) of output points (u, v) (1-D float64), all taken on one side of the seam."""
        u, v, n = self._flat(u, v)
        return self._inverse(u, v, 0 if lower else n)

    def inverse_sides(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(su, sv) of output points (u, v) (1-D float64, n points) taken on the upper side, then
        on the lower side: four (n,) arrays, the same values as two inverse_side calls."""
        u, v, n = self._flat(u, v)
        su, sv = self._inverse(np.concatenate([u, u]), np.concatenate([v, v]), n)
        return su[:n], sv[:n], su[n:], sv[n:]

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


__all__ = [
    "RIG_INDEX", "MouthGeometry", "MouthPose", "MouthWarp", "effective_open", "rig_slots", "smoothstep",
]
