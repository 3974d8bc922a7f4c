"""Blinks for photo avatars: an eyelid warp from one frame's face-mesh landmarks.

The upper lid edge is moved down over the eye by ``closure`` times the eye's opening; the lid
skin above it stretches down from below the brow (the brow stays put), the eye under the lid
is left untouched. ``blink_closure`` gives the lid's closure over time for a seeded schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dhlive_cli.avatar.facerig import _monotone, smoothstep

__all__ = ["EyeGeometry", "blink_closure"]


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


