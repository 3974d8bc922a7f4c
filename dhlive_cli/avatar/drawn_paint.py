"""The drawn avatar's one-off prerender, part 1: background, breathing body layer and the head
sprite's frame (see drawn.py's docstring for the layer scheme). Runs once per frame size."""

from __future__ import annotations

import math

import cv2
import numpy as np

from dhlive_cli.avatar.drawn_style import _EYE_LEVELS, _Canvas, _bez, _blur, _ellipse, _mul, _stamp


class BodyPainter:
    """Mixin of DrawnAvatar: _prerender and the body layer (back hair, neck, clothing)."""

    def _prerender(self) -> None:
        W, H, S, st = self.width, self.height, self.S, self.style
        col = st.colors
        pad = int(math.ceil(self.breath_px)) + 2
        pad += pad % 2  # even, like the body's rectangle below: its I420 planes (render_i420)
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
        # even corners (grown outwards): a chroma sample of I420 covers 2 x 2 pixels
        by0, bx0, bx1 = by0 - by0 % 2, bx0 - bx0 % 2, min(W, bx1 + bx1 % 2)
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

