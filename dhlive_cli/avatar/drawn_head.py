"""The drawn avatar's one-off prerender, part 2: ears, hair, face, nose, brows and the eyes at
every eyelid closure (the head sprite). Runs once per frame size."""

from __future__ import annotations

import math

import numpy as np

from dhlive_cli.avatar.drawn_style import _Canvas, _bez, _blur, _ellipse, _mix, _mul, _stamp


class HeadPainter:
    """Mixin of DrawnAvatar: the head sprite and its eye variants."""

    # ---- head: ears, hair, face, nose, brows (in the sprite); eyes are painted separately

    def _hair_shapes(self):
        """(back, front) hair polygons in rest pixels for the chosen style."""
        fw, fh, st = self.fw, self.fh, self.style
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

