"""Where a photo or loop frame goes in the output frame: scale and offset, and the margins.

``compute_fit`` covers the frame unless that makes the face taller than about half of it; then
the picture is scaled smaller, kept centred on the face, and ``place_source`` fills the margins
with a blurred, darkened copy of itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Fit", "compute_fit", "place_source"]


@dataclass(frozen=True, slots=True)
class Fit:
    """Source pixels -> output pixels: x_out = x * sx + ox (source scaled to fw x fh, placed at ox, oy)."""

    width: int
    height: int
    fw: int
    fh: int
    ox: int
    oy: int
    sx: float
    sy: float
    fill: bool  # True when the scaled source leaves margins to fill

    def apply(self, pts: np.ndarray) -> np.ndarray:
        out = np.empty_like(pts, dtype=np.float64)
        out[..., 0] = pts[..., 0] * self.sx + self.ox
        out[..., 1] = pts[..., 1] * self.sy + self.oy
        return out


def compute_fit(src_w: int, src_h: int, face_box, width: int, height: int) -> Fit:
    """Cover the frame unless that makes the face taller than ~half the frame; keep the face centred."""
    fx0, fy0, fx1, fy1 = (float(v) for v in face_box)
    face_h = max(8.0, fy1 - fy0)
    s_cover = max(width / src_w, height / src_h)
    s_contain = min(width / src_w, height / src_h)
    s = max(s_contain, min(s_cover, 0.5 * height / face_h))
    fw, fh = max(1, int(round(src_w * s))), max(1, int(round(src_h * s)))
    sx, sy = fw / src_w, fh / src_h
    cx, cy = 0.5 * (fx0 + fx1) * sx, 0.5 * (fy0 + fy1) * sy

    def place(size, frame, centre, want):
        off = want - centre
        lo, hi = (frame - size, 0.0) if size >= frame else (0.0, frame - size)
        return int(round(min(hi, max(lo, off))))

    ox = place(fw, width, cx, 0.5 * width)
    oy = place(fh, height, cy, 0.46 * height)
    fill = not (ox <= 0 and oy <= 0 and ox + fw >= width and oy + fh >= height)
    return Fit(width, height, fw, fh, ox, oy, sx, sy, fill)


def _fill_background(src: np.ndarray, width: int, height: int, fit: Fit) -> np.ndarray:
    """A blurred, darkened cover-fit of the source for the margins around a smaller picture."""
    sh, sw = src.shape[:2]
    s = max(width / sw, height / sh)
    small = cv2.resize(src, (max(1, int(sw * s / 8)), max(1, int(sh * s / 8))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    big = cv2.resize(small, (int(round(sw * s)), int(round(sh * s))), interpolation=cv2.INTER_LINEAR)
    x0 = (big.shape[1] - width) // 2
    y0 = (big.shape[0] - height) // 2
    return (big[y0 : y0 + height, x0 : x0 + width].astype(np.float32) * 0.55).astype(np.uint8)


def place_source(src: np.ndarray, fit: Fit, out: np.ndarray) -> None:
    """Scale and place one source frame into out (H, W, 3) as the fit says."""
    W, H = fit.width, fit.height
    interp = cv2.INTER_AREA if fit.sx < 1.0 else cv2.INTER_CUBIC
    scaled = cv2.resize(src, (fit.fw, fit.fh), interpolation=interp)
    if fit.fill:
        out[:] = _fill_background(src, W, H, fit)
    x0, y0 = max(0, fit.ox), max(0, fit.oy)
    x1, y1 = min(W, fit.ox + fit.fw), min(H, fit.oy + fit.fh)
    out[y0:y1, x0:x1] = scaled[y0 - fit.oy : y1 - fit.oy, x0 - fit.ox : x1 - fit.ox]
