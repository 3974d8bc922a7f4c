"""The samples kept for `monitor --plot` and the PNG chart drawn from them (OpenCV, no
plotting library): memory of the process and of its children (MB, left axis) and the engine's
frames per second (right axis) over time."""

from __future__ import annotations

import math
from pathlib import Path


class History:
    """Samples kept for --plot: at most ~max_points, halving the resolution when full.

    A monitor left running for weeks must not grow itself; the chart needs no more points than
    it has pixels.
    """

    def __init__(self, max_points: int = 4000):
        self.max_points = max_points
        self.stride = 1
        self._n = 0
        self.t: list[float] = []
        self.rss: list[float] = []
        self.uss: list[float | None] = []
        self.children: list[float | None] = []
        self.fps: list[float | None] = []

    def add(self, t: float, rss: float, uss: float | None, fps: float | None, children_rss: float | None = None) -> None:
        """t: seconds since the watch began; rss, uss, children_rss (all children together): MB;
        fps: the engine's frames per second over the last interval (None: no engine)."""
        self._n += 1
        if (self._n - 1) % self.stride:
            return
        self.t.append(t)
        self.rss.append(rss)
        self.uss.append(uss)
        self.children.append(children_rss)
        self.fps.append(fps)
        if len(self.t) >= self.max_points:
            for a in (self.t, self.rss, self.uss, self.children, self.fps):
                del a[1::2]
            self.stride *= 2


# ----------------------------------------------------------------------------- chart


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def write_plot(path: Path, hist: History, title: str) -> None:
    """A 1000x540 PNG of RSS/USS and the children's RSS (left axis, MB) and the engine's fps
    (right axis) over time, drawn with OpenCV. Raises OutputError when it cannot be written."""
    import cv2
    import numpy as np

    from dhlive_cli.outpaths import write_png

    W, H = 1000, 540
    have_fps = any(v is not None for v in hist.fps)
    have_uss = any(v is not None for v in hist.uss)
    have_kids = any(v for v in hist.children)
    L, R, T, B = 80, (80 if have_fps else 30), 50, 70
    x0, x1, y0, y1 = L, W - R, T, H - B
    img = np.full((H, W, 3), 255, np.uint8)
    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (225, 225, 225)
    c_rss, c_uss, c_kids, c_fps = (180, 90, 20), (60, 150, 40), (150, 60, 160), (20, 120, 230)  # BGR

    ts = hist.t or [0.0]
    span = ts[-1] - ts[0]
    unit, div = ("h", 3600.0) if span > 7200 else ("min", 60.0) if span > 600 else ("s", 1.0)
    tx = [(t - ts[0]) / div for t in ts]
    tmax = max(tx[-1], 1e-6)

    def px(x):
        return int(round(x0 + (x1 - x0) * x / tmax))

    def text(s, org, color=black, scale=0.45, thick=1):
        cv2.putText(img, s, org, font, scale, color, thick, cv2.LINE_AA)

    def vtext(s, cx, cy, color=black):
        (w, h), base = cv2.getTextSize(s, font, 0.5, 1)
        tmp = np.full((h + base + 4, w + 4, 3), 255, np.uint8)
        cv2.putText(tmp, s, (2, h + 2), font, 0.5, color, 1, cv2.LINE_AA)
        rot = cv2.rotate(tmp, cv2.ROTATE_90_COUNTERCLOCKWISE)
        rh, rw = rot.shape[:2]
        top, left = max(0, cy - rh // 2), max(0, cx - rw // 2)
        img[top:top + rh, left:left + rw] = rot[: H - top, : W - left]

    mem = ([v for v in hist.rss] + [v for v in hist.uss if v is not None]
           + ([v for v in hist.children if v is not None] if have_kids else []))
    lo, hi = (min(mem), max(mem)) if mem else (0.0, 1.0)
    pad = max(0.05 * (hi - lo), 0.5)
    lo, hi = max(0.0, lo - pad), hi + pad

    def py(v, a, b):
        return int(round(y1 - (y1 - y0) * (v - a) / (b - a)))

    for v in _nice_ticks(lo, hi):
        y = py(v, lo, hi)
        cv2.line(img, (x0, y), (x1, y), grey, 1)
        text(f"{v:g}", (x0 - 8 - cv2.getTextSize(f"{v:g}", font, 0.45, 1)[0][0], y + 5))
    for v in _nice_ticks(0.0, tmax):
        x = px(v)
        cv2.line(img, (x, y0), (x, y1), grey, 1)
        lab = f"{v:g}"
        text(lab, (x - cv2.getTextSize(lab, font, 0.45, 1)[0][0] // 2, y1 + 20))
    cv2.rectangle(img, (x0, y0), (x1, y1), black, 1)

    def series(vals, a, b, color):
        run = []
        for x, v in zip(tx, vals):
            if v is None:
                _draw(run, color)
                run = []
            else:
                run.append((px(x), py(v, a, b)))
        _draw(run, color)

    def _draw(pts, color):
        if len(pts) == 1:
            cv2.circle(img, pts[0], 3, color, -1, cv2.LINE_AA)
        elif pts:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)

    series(hist.rss, lo, hi, c_rss)
    if have_uss:
        series(hist.uss, lo, hi, c_uss)
    if have_kids:
        series(hist.children, lo, hi, c_kids)
    legend = ([("RSS (MB)", c_rss)] + ([("USS (MB)", c_uss)] if have_uss else [])
              + ([("children RSS (MB)", c_kids)] if have_kids else []))
    if have_fps:
        fv = [v for v in hist.fps if v is not None]
        flo, fhi = 0.0, max(max(fv) * 1.15, 1.0)
        series(hist.fps, flo, fhi, c_fps)
        for v in _nice_ticks(flo, fhi):
            y = py(v, flo, fhi)
            cv2.line(img, (x1, y), (x1 + 5, y), black, 1)
            text(f"{v:g}", (x1 + 8, y + 5), c_fps)
        vtext("engine fps", W - 18, (y0 + y1) // 2, c_fps)
        legend.append(("engine fps", c_fps))

    text(title, (x0, 30), black, 0.6, 1)
    text(f"time ({unit})", ((x0 + x1) // 2 - 30, H - 25), black, 0.5)
    vtext("memory (MB)", 18, (y0 + y1) // 2)
    bw = 20 + max(cv2.getTextSize(s, font, 0.45, 1)[0][0] for s, _ in legend) + 30
    bx, by = x0 + 10, y0 + 10
    cv2.rectangle(img, (bx, by), (bx + bw, by + 10 + 20 * len(legend)), (255, 255, 255), -1)
    cv2.rectangle(img, (bx, by), (bx + bw, by + 10 + 20 * len(legend)), black, 1)
    for i, (s, color) in enumerate(legend):
        yy = by + 20 + 20 * i
        cv2.line(img, (bx + 8, yy - 4), (bx + 30, yy - 4), color, 2, cv2.LINE_AA)
        text(s, (bx + 38, yy))
    write_png(path, img)
