"""Per-frame backward maps of a face avatar's mouth and jaw, for cv2.remap (photo.py draws with them).

``mouth_displacement`` evaluates the mouth warp (facerig.MouthWarp) on a coarse grid over the
mouth box, one smooth map per side of the lip seam, upsampled and picked per pixel by a mask of
the lower side; where the chin moves down over the neck it also gives the cut: how much of the
moved picture each pixel shows, from the face oval feathered by CHIN_FEATHER. ``cut_blend``
then cross-fades the moved chin with each pixel's own picture. ``WarpScratch`` holds one
thread's buffers, grown (rarely) to the largest box seen, so frames allocate no large arrays.
"""

from __future__ import annotations

import cv2
import numpy as np

from dhlive_cli.avatar import facerig as fr

__all__ = ["CHIN_FEATHER", "WarpScratch", "coarse_axis", "cut_blend", "cut_rows", "fade_to_bottom", "mouth_displacement",
           "resize_into"]

_MOUTH_STRIDE = 4  # coarse grid of the jaw and lip warp (each side of the seam is smooth)
CHIN_FEATHER = 0.05  # blur of the chin's cut over the neck, in mouth half-widths (1 px or more)


def coarse_axis(lo: int, n: int, stride: int) -> np.ndarray:
    """Sample positions whose cv2.resize (INTER_LINEAR) to n pixels lands on pixels lo..lo+n-1."""
    m = max(2, -(-n // stride))
    return (lo + (np.arange(m, dtype=np.float64) + 0.5) * (n / m) - 0.5).astype(np.float32)


def resize_into(src: np.ndarray, dst: np.ndarray) -> None:
    """Upsample a coarse float32 field into dst in place (OpenCV would silently allocate on a mismatch)."""
    r = cv2.resize(src, (dst.shape[1], dst.shape[0]), dst=dst, interpolation=cv2.INTER_LINEAR)
    if r is not dst and not np.shares_memory(r, dst):
        raise AssertionError(f"resize did not write in place ({src.dtype} -> {dst.dtype})")


class WarpScratch:
    """Per-thread buffers, grown (rarely) to the largest box seen."""

    def __init__(self):
        self.mx = self.my = None
        self.dx = self.dy = self.lx = self.ly = self.mask = None
        self.ex = self.ey = None
        self.m1 = self.m2 = None

    @staticmethod
    def _grow(buf, h, w):
        if buf is None or buf.shape[0] < h or buf.shape[1] < w:
            hh = max(h, 0 if buf is None else buf.shape[0]) + 8
            ww = max(w, 0 if buf is None else buf.shape[1]) + 8
            return np.zeros((hh, ww), np.float32)
        return buf

    def maps(self, h, w):
        self.mx, self.my = self._grow(self.mx, h, w), self._grow(self.my, h, w)
        return self.mx[:h, :w], self.my[:h, :w]

    def disp(self, h, w):
        self.dx, self.dy = self._grow(self.dx, h, w), self._grow(self.dy, h, w)
        self.lx, self.ly = self._grow(self.lx, h, w), self._grow(self.ly, h, w)
        if self.mask is None or self.mask.shape != self.dx.shape:
            self.mask = np.zeros(self.dx.shape, np.uint8)
        return self.dx[:h, :w], self.dy[:h, :w], self.lx[:h, :w], self.ly[:h, :w], self.mask[:h, :w]

    def fixed(self, h, w):
        if self.m1 is None or self.m1.shape[:2] != (h, w):
            self.m1 = np.zeros((h, w, 2), np.int16)
            self.m2 = np.zeros((h, w), np.uint16)
        return self.m1, self.m2

    def cut(self, h, w):
        """Buffers of the chin cut: source x, y and the grown face oval (see mouth_displacement)."""
        self.cx_, self.cy_ = self._grow(getattr(self, "cx_", None), h, w), self._grow(getattr(self, "cy_", None), h, w)
        if getattr(self, "oval", None) is None or self.oval.shape != self.cx_.shape:
            self.oval = np.zeros(self.cx_.shape, np.uint8)
            self.keep = np.zeros(self.cx_.shape, np.uint8)
        return self.cx_[:h, :w], self.cy_[:h, :w], self.oval[:h, :w], self.keep[:h, :w]

    def own(self, h, w):
        """(h, w, 3) uint8: the picture under the chin's cut, without the jaw's motion."""
        self.own_ = self._grow3(getattr(self, "own_", None), h, w)
        return self.own_[:h, :w]

    @staticmethod
    def _grow3(buf, h, w):
        if buf is None or buf.shape[0] < h or buf.shape[1] < w:
            hh = max(h, 0 if buf is None else buf.shape[0]) + 8
            ww = max(w, 0 if buf is None else buf.shape[1]) + 8
            return np.zeros((hh, ww, 3), np.uint8)
        return buf

    def eye(self, h, w):
        self.ex, self.ey = self._grow(self.ex, h, w), self._grow(self.ey, h, w)
        return self.ex[:h, :w], self.ey[:h, :w]


def mouth_displacement(g: fr.MouthGeometry, warp: fr.MouthWarp, sc: WarpScratch, bottom: int | None = None):
    """Backward displacement (source - output) over g.box, and the chin cut.

    bottom: the last output row that shows the picture (a photo cut off at the chin ends there,
    or the frame does); a jaw moving up samples from below it, so the upward pull fades to zero
    at that row (fade_to_bottom) instead of smearing the edge row up as vertical streaks.

    Returns (dx, dy, keep): dx, dy (h, w) float32 views of the box in pixels; keep None, or
    (h, w) uint8: how much of the displaced picture each output pixel shows (255 all of it,
    0 none: its own picture, as if the mouth warp had not moved it), for the caller to blend
    with cut_blend.

    Each side of the lip seam has a smooth map of its own (evaluated on a coarse grid over the
    whole box and upsampled); a per-pixel mask of the lower side picks between them, so the
    seam stays sharp without evaluating the field per pixel.
    """
    x0, y0, x1, y1 = g.box
    w, h = x1 - x0, y1 - y0
    dx, dy, lx, ly, mask = sc.disp(h, w)
    xs = coarse_axis(x0, w, _MOUTH_STRIDE)
    ys = coarse_axis(y0, h, _MOUTH_STRIDE)
    X, Y = np.meshgrid(xs, ys)
    u, v = g.to_face(X.ravel(), Y.ravel())
    su_up, sv_up, su_lo, sv_lo = warp.inverse_sides(u, v)  # both sides in one pass
    for su, sv, bx, by in ((su_up, sv_up, dx, dy), (su_lo, sv_lo, lx, ly)):
        sx, sy = g.to_px(su, sv)
        resize_into((sx.reshape(X.shape) - X).astype(np.float32), bx)
        resize_into((sy.reshape(X.shape) - Y).astype(np.float32), by)
    mask[:] = 0
    poly = warp.lower_side_polygon() - (x0, y0)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    keep = None
    if warp.jaw0 > 0.0:
        # the chin slides over the neck: an output pixel whose source lies outside the face oval
        # (grown a little) keeps its own picture, so the neck, collar and background stay put.
        # The oval is feathered (CHIN_FEATHER: a blur of 1 px or more) and the two pictures
        # cross-fade over it: a hard cut drew the chin's edge as a line on the collar.
        sx, sy, oval, keep = sc.cut(h, w)
        np.add(lx, np.arange(w, dtype=np.float32)[None, :], out=sx)
        np.add(ly, np.arange(h, dtype=np.float32)[:, None], out=sy)
        oval[:] = 0
        cv2.fillPoly(oval, [np.round((g.oval_px - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        cv2.GaussianBlur(oval, (0, 0), max(1.0, CHIN_FEATHER * g.hw), dst=oval)
        cv2.remap(oval, sx, sy, cv2.INTER_LINEAR, dst=keep, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        keep[mask == 0] = 255  # the upper side is never cut
    cv2.copyTo(lx, mask, dx)
    cv2.copyTo(ly, mask, dy)
    if bottom is not None and bottom < y1 + 3.0 * g.hw:  # the reach is under 2 hw: far edges cannot matter
        fade_to_bottom(dy, y0, bottom)
    return dx, dy, keep


def fade_to_bottom(dy: np.ndarray, y0: int, bottom: int) -> None:
    """Scale the downward reach (dy > 0: the source lies below) of a backward map over rows
    y0.. in place so that no output row at or above `bottom` samples below it: the reach is
    multiplied by (bottom - y) / band, clipped to 0..1, with band twice the largest reach, so
    the map stays monotonic (its slope in y stays >= 1/2) and nothing folds. Rows below
    `bottom` (margins around a smaller picture) keep their own pixels."""
    reach = float(dy.max()) if dy.size else 0.0
    if reach <= 0.0:
        return
    band = 2.0 * reach + 1.0
    h = dy.shape[0]
    first = max(0, int(bottom - band) - y0)  # rows above this are far enough from the edge
    if first >= h:
        return
    room = (np.float32(bottom) - np.arange(y0 + first, y0 + h, dtype=np.float32))[:, None]
    f = np.clip(room * np.float32(1.0 / band), 0.0, 1.0)
    part = dy[first:]
    np.copyto(part, part * f, where=part > 0)


def cut_rows(keep: np.ndarray) -> tuple[int, int] | None:
    """First and past-last rows of keep ((h, w) uint8) holding a value under 255, or None."""
    rows = np.flatnonzero(keep.min(axis=1) < 255)
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else None


def cut_blend(dst: np.ndarray, own: np.ndarray, keep: np.ndarray) -> None:
    """dst = own + (dst - own) * keep / 255, rounded, in place: (h, w, 3) uint8 pictures and
    (h, w) uint8 weights (255 keeps dst as it is, 0 gives own)."""
    k = keep[..., None].astype(np.float32)
    k *= np.float32(1.0 / 255.0)
    o = own.astype(np.float32)
    d = dst.astype(np.float32)
    d -= o
    d *= k
    d += o
    d += np.float32(0.5)
    dst[:] = d.astype(np.uint8)
