"""The drawn avatar's mouth: lip curves for a MouthShape, the mouth's bounds, and the lips and
mouth interior drawn as anti-aliased polygons (OpenCV, sub-pixel fixed point).

MouthPainter is a mixin of DrawnAvatar (drawn.py), like BodyPainter and HeadPainter: it uses the
layout (S, cx, fy, P, pivot, _max_disp, _hrect, style, width, height) that DrawnAvatar sets up.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dhlive_cli.avatar.drawn_style import _ONE, _SHIFT, MouthShape, _fix, _mul


class MouthPainter:
    """Lips and mouth interior of the drawn avatar (mixin; see the module docstring)."""

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

    def _mouth_level(self) -> float:
        """The mouth's line below the face centre, in units of S."""
        return 0.122 * self.style.face_length

    def _mouth_bounds(self) -> None:
        my = self._mouth_y = self._mouth_level()
        ext_x, y_lo, y_hi = self._mouth_extent()
        mc = self.P(0.0, my)
        d = self._max_disp(abs(mc[1] - self.pivot[1]) + ext_x) + 3
        x0 = mc[0] - ext_x - d
        x1 = mc[0] + ext_x + d
        y0 = mc[1] + y_lo - d
        y1 = mc[1] + y_hi + d
        self._mouth_box = (
            max(0, int(math.floor(x0))),
            max(0, int(math.floor(y0))),
            min(self.width, int(math.ceil(x1))),
            min(self.height, int(math.ceil(y1))),
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

    def _mouth_extent(self) -> tuple[float, float, float]:
        """Half width and top/bottom (pixels from the mouth's centre) any mouth shape reaches."""
        xs, ys = [], []
        vals = (0.0, 0.5, 1.0)
        for o in vals:
            for sp in vals:
                for rd in vals:
                    for cl in vals:
                        x, _, _, yuo, ylo, _, _ = self._mouth_curves(MouthShape(o, sp, rd, cl))
                        xs.append(float(np.abs(x).max()))
                        ys += [float(yuo.min()), float(ylo.max())]
        S = self.S
        return max(xs) * 1.1 * S, min(ys) * 1.1 * S, max(ys) * 1.1 * S

    def _draw_mouth(self, out: np.ndarray, M: np.ndarray, mouth: MouthShape) -> None:
        """Lips and mouth interior of `mouth` into the frame out (H, W, 3) uint8 BGR, placed by
        the head's affine M (2x3: rest-pose pixels -> this frame's pixels), inside the head's box.

        Every polygon's points are made in head-local units first, then mapped to pixels and to
        fixed point in one pass each (same arithmetic per point as one pass per polygon, so the
        same pixels): per polygon, the numpy calls under the GIL were most of a mouth's cost."""
        S = self.S
        mc = self._mc
        x, yui, yli, yuo, ylo, gap, w_in = self._mouth_curves(mouth)
        # head-local (x, y) in units of S -> this frame's pixels: P(x, y + mouth_y) then the
        # head's affine M, folded into one 2x2 matrix and an offset
        A = M[:, :2]
        a00, a01, a10, a11 = S * A[0, 0], S * A[0, 1], S * A[1, 0], S * A[1, 1]
        px, py = self.cx, self.fy + self._mouth_y * S
        c0 = A[0, 0] * px + A[0, 1] * py + M[0, 2]
        c1 = A[1, 0] * px + A[1, 1] * py + M[1, 2]

        gap_px = gap * S
        inside = gap_px >= 0.8
        open_t = min(1.0, gap / 0.05)
        xx = np.concatenate([x, x[::-1]])
        k = len(x)
        lo, hi = k // 2 - k // 5, k // 2 + k // 5 + 1
        hl_x = x[lo:hi]
        d = ylo[lo:hi] - yli[lo:hi]
        u = self._crease_u
        parts = [  # (name, head-local x, head-local y), in drawing order
            ("outer", xx, np.concatenate([yuo, ylo[::-1]])),
            ("crease", u * 0.35 * x[-1], ylo.max() + 0.011 - 0.003 * u**2),
            ("upper", xx, np.concatenate([yuo, yui[::-1]])),
            ("hl", np.concatenate([hl_x, hl_x[::-1]]), np.concatenate([yli[lo:hi] + 0.4 * d, (yli[lo:hi] + 0.6 * d)[::-1]])),
            ("seam", x, (yui + yli) * 0.5),
        ]
        if inside:
            cs, sn = self._circle32
            parts.append(("inner", xx, np.concatenate([yui, yli[::-1]])))
            # tongue and lower teeth sit low, upper teeth hang from the upper lip
            parts.append(("tongue", w_in * 0.62 * cs, float(yli.max()) - 0.12 * gap + (0.3 * gap + 0.004) * sn))
            if open_t > 0.3:
                sel = np.abs(x) < w_in * 0.55
                lt = x[sel]
                ylt = yli[sel]  # x is a grid of the curves themselves: interp at x is a lookup
                parts.append(("lteeth", np.concatenate([lt, lt[::-1]]), np.concatenate([ylt - 0.006 * open_t, ylt[::-1] + 0.01])))
            sel = np.abs(x) < w_in * 0.82
            ut = x[sel]
            yut = yui[sel]
            th = min(0.016, 0.45 * gap + 0.003)
            prof = np.clip(1 - (ut / (w_in * 0.82)) ** 2, 0, 1) ** 0.3
            edge_y = yut + th * prof
            parts.append(("teeth", np.concatenate([ut, ut[::-1]]), np.concatenate([yut - 0.01, edge_y[::-1]])))
            parts.append(("edge", ut, edge_y))
        at, m = {}, 0  # name -> (first, end) row of its points
        for name, part_x, _ in parts:
            at[name] = (m, m + part_x.shape[0])
            m += part_x.shape[0]
        hx = np.concatenate([p[1] for p in parts])
        hy = np.concatenate([p[2] for p in parts])
        pts = np.empty((m + 24, 2))
        pts[:m, 0] = hx * a00 + hy * a01 + c0
        pts[:m, 1] = hx * a10 + hy * a11 + c1
        # the dark corners: circles around the seam's two ends, in pixels
        s0, s1 = at["seam"]
        r = self._corner_r
        pts[m : m + 12] = pts[s0] + r * self._circle12
        pts[m + 12 :] = pts[s1 - 1] + r * self._circle12

        outer = pts[slice(*at["outer"])]
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
        fx = _fix(pts - o)  # (N, 1, 2) int32, relative to the box

        def F(name):
            return fx[slice(*at[name])]

        aa = cv2.LINE_AA
        # soft crease under the lower lip
        cv2.polylines(roi, [F("crease")], False, mc["crease"], self._crease_thick, aa, _SHIFT)
        cv2.fillPoly(roi, [F("outer")], mc["lower"], aa, _SHIFT)
        cv2.fillPoly(roi, [F("upper")], mc["upper"], aa, _SHIFT)
        # a highlight on the lower lip
        cv2.fillPoly(roi, [F("hl")], mc["hl"], aa, _SHIFT)

        if inside:
            inner = pts[slice(*at["inner"])]
            ix0 = max(0, int(inner[:, 0].min()) - bx0 - 1)
            iy0 = max(0, int(inner[:, 1].min()) - by0 - 1)
            ix1 = min(roi.shape[1], int(inner[:, 0].max()) - bx0 + 3)
            iy1 = min(roi.shape[0], int(inner[:, 1].max()) - by0 + 3)
            if ix1 > ix0 and iy1 > iy0:
                sub = roi[iy0:iy1, ix0:ix1]
                shift = np.array([ix0 * _ONE, iy0 * _ONE], np.int32)  # exact: whole pixels in fixed point

                def G(name):
                    return F(name) - shift

                mask = np.zeros(sub.shape[:2], np.uint8)
                cv2.fillPoly(mask, [G("inner")], 255, aa, _SHIFT)
                content = np.empty_like(sub)
                content[:] = (38, 26, 62)
                cv2.fillPoly(content, [G("tongue")], (92, 84, 186), aa, _SHIFT)
                if "lteeth" in at:
                    cv2.fillPoly(content, [G("lteeth")], (200, 204, 210), aa, _SHIFT)
                cv2.fillPoly(content, [G("teeth")], (236, 241, 246), aa, _SHIFT)
                # a faint line where teeth meet the gum shadow
                cv2.polylines(content, [G("edge")], False, (196, 202, 210), 1, aa, _SHIFT)
                a = mask.astype(np.float32) * (1.0 / 255.0)
                cv2.blendLinear(content, sub, a, 1.0 - a, dst=sub)
        # the line where the lips meet (and a dark corner) reads at any size
        if gap_px < 1.5:
            cv2.polylines(roi, [F("seam")], False, mc["seam"], self._seam_thick, aa, _SHIFT)
        cv2.fillPoly(roi, [fx[m : m + 12]], mc["corner"], aa, _SHIFT)
        cv2.fillPoly(roi, [fx[m + 12 :]], mc["corner"], aa, _SHIFT)
