"""The inside of an opened mouth, painted in the person's own colours.

``sample_palette`` reads the face once at prepare time:

- skin: the cheeks (below the eyes, beside the nose), which a beard or a smile does not cover;
- white reference: the sclera of both eyes (the brightest, least coloured part inside the eye
  outline), i.e. how a white object looks under this photo's light and white balance;
- teeth: the person's real teeth where the photo shows them; otherwise made from the white
  reference and the skin: as light as the sclera (and never darker than the lit cheek), tinted
  along the skin's hue by half its chroma (teeth in real portraits measure 0.47-0.75 of the skin
  chroma along that direction, measured on the test faces of this project);
- lips, a dark cavity and a tongue derived from the lip colour; the photo's fine grain (the
  noise of the cheek patch after a 3x3 median), so painted areas carry the same noise.

``draw_inner_mouth`` paints one frame's opening (from ``MouthWarp``): a dark cavity shaded with
depth, the wet inner rim of each lip in the lip colour, an upper tooth row hanging from the upper
lip (separate teeth meeting at the midline and narrowing to the sides, gum shadow, darker to the
sides, never the whole gap), the lower teeth's edge from a middling opening on, a tongue low
in the mouth on open vowels, then the photo's grain; the edge is feathered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dhlive_cli.avatar.facerig import MouthWarp, _monotone, smoothstep

__all__ = ["MouthPalette", "MouthBank", "sample_palette", "draw_inner_mouth", "lab_of", "bgr_of"]

# MediaPipe face-mesh indices: cheek centres below each eye, and the eye outlines
CHEEKS = (50, 280, 205, 425, 187, 411)
EYE_RINGS = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
             (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382))
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
FACE_TOP, CHIN = 10, 152

# A fixed noise tile (seeded, read-only): the grain painted over the inner mouth. Tiled at an
# offset that changes per frame, so still teeth do not carry frozen noise.
_GRAIN = np.random.default_rng(20240).standard_normal((96, 96)).astype(np.float32)
_GRAIN.flags.writeable = False


def lab_of(bgr) -> np.ndarray:
    """CIE L*a*b* (L* 0..100) of BGR colours (..., 3) in 0..255, D65 sRGB as OpenCV converts."""
    a = np.asarray(bgr, np.float32).reshape(-1, 1, 3) / 255.0
    lab = cv2.cvtColor(a, cv2.COLOR_BGR2Lab)
    return lab.reshape(np.shape(bgr))


def bgr_of(lab) -> np.ndarray:
    """Inverse of lab_of, BGR 0..255 float (clipped)."""
    a = np.asarray(lab, np.float32).reshape(-1, 1, 3)
    bgr = cv2.cvtColor(a, cv2.COLOR_Lab2BGR) * 255.0
    return np.clip(bgr, 0.0, 255.0).reshape(np.shape(lab))


@dataclass(frozen=True, slots=True)
class MouthPalette:
    """BGR float colours (0..255) of the inner mouth, sampled from the face at prepare time, and
    the photo's grain (standard deviation of its fine noise, grey levels)."""

    lips: tuple[float, float, float]
    skin: tuple[float, float, float]
    teeth: tuple[float, float, float]
    cavity: tuple[float, float, float]
    tongue: tuple[float, float, float]
    grain: float = 0.0

    COLOURS = ("lips", "skin", "teeth", "cavity", "tongue")

    def as_hex(self) -> dict[str, str]:
        def h(c):
            b, g, r = (int(round(min(255.0, max(0.0, x)))) for x in c)
            return f"#{r:02x}{g:02x}{b:02x}"

        return {k: h(getattr(self, k)) for k in self.COLOURS}

    def as_table(self) -> dict:
        """The manifest's [palette] table: colours as #rrggbb, grain as a number."""
        return {**self.as_hex(), "grain": round(float(self.grain), 2)}

    @classmethod
    def from_hex(cls, table: dict) -> "MouthPalette":
        """From a [palette] table (KeyError/ValueError on a bad one; grain is optional)."""

        def c(v):
            s = str(v).lstrip("#")
            if len(s) != 6:
                raise ValueError(f"colour {v!r} is not #rrggbb")
            r, g, b = (int(s[i : i + 2], 16) for i in (0, 2, 4))
            return (float(b), float(g), float(r))

        grain = float(table.get("grain", 0.0))
        if not (0.0 <= grain <= 20.0):
            raise ValueError(f"grain {grain} out of range 0..20")
        return cls(*(c(table[k]) for k in cls.COLOURS), grain=grain)


def _disc_mask(shape, centres, radius) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    for x, y in centres:
        cv2.circle(m, (int(round(x)), int(round(y))), max(2, int(round(radius))), 255, -1)
    return m


def _poly_mask(shape, pts) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts)).astype(np.int32)], 255)
    return m


def _median_lab(lab: np.ndarray, mask: np.ndarray, lo_pct: float = 10, hi_pct: float = 90):
    """Median L*a*b* of the masked pixels whose L* lies between two percentiles (None: too few)."""
    px = lab[mask > 0]
    if len(px) < 8:
        return None
    lo, hi = np.percentile(px[:, 0], [lo_pct, hi_pct])
    sel = px[(px[:, 0] >= lo) & (px[:, 0] <= hi)]
    return np.median(sel if len(sel) >= 4 else px, axis=0)


def sample_palette(bgr: np.ndarray, lm: np.ndarray) -> MouthPalette:
    """The palette of one frame from its (468, 2+) face-mesh landmarks in pixels.

    bgr: (H, W, 3) uint8. Never fails: every part has a fallback derived from the others.
    """
    lm = np.asarray(lm, np.float64)[:, :2]
    lab = lab_of(bgr.astype(np.float32))
    face_h = float(np.linalg.norm(lm[CHIN] - lm[FACE_TOP]))
    ring = np.concatenate([lm[list(UPPER_OUTER)], lm[list(LOWER_OUTER)][::-1]])
    inner = np.concatenate([lm[list(UPPER_INNER)], lm[list(LOWER_INNER)][::-1]])
    m_out, m_in = _poly_mask(bgr.shape, ring), _poly_mask(bgr.shape, inner)
    lips_m = cv2.erode(m_out, np.ones((3, 3), np.uint8)) & ~cv2.dilate(m_in, np.ones((5, 5), np.uint8))
    lips = _median_lab(lab, lips_m)
    skin_m = _disc_mask(bgr.shape, lm[list(CHEEKS)], 0.035 * face_h)
    skin = _median_lab(lab, skin_m, 20, 80)
    if skin is None:
        skin = np.array([65.0, 14.0, 18.0], np.float32)
    if lips is None:
        lips = skin * np.array([0.85, 1.6, 1.0], np.float32)
    # grain: what a 3x3 median removes from the cheek patches (noise, not skin texture)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    resid = grey.astype(np.float32) - cv2.medianBlur(grey, 3).astype(np.float32)
    sel = resid[cv2.erode(skin_m, np.ones((5, 5), np.uint8)) > 0]
    grain = float(1.4826 * np.median(np.abs(sel - np.median(sel)))) if len(sel) > 30 else 0.0
    # white reference: the sclera, the bright and least coloured part of each eye
    eye_m = np.zeros(bgr.shape[:2], np.uint8)
    for ring_idx in EYE_RINGS:
        eye_m |= cv2.erode(_poly_mask(bgr.shape, lm[list(ring_idx)]), np.ones((3, 3), np.uint8))
    sclera = None
    px = lab[eye_m > 0]
    if len(px) >= 12:
        chroma = np.hypot(px[:, 1], px[:, 2])
        bright = px[:, 0] >= np.percentile(px[:, 0], 70)
        calm = chroma <= np.percentile(chroma, 60)
        pick = px[bright & calm]
        if len(pick) >= 4:
            sclera = np.median(pick, axis=0)
    skin_ab = skin[1:3].astype(np.float64)
    chroma_s = float(np.hypot(*skin_ab))
    dir_s = skin_ab / chroma_s if chroma_s > 1e-3 else np.zeros(2)
    # the person's real teeth, when the photo shows them: bright and the least coloured inside
    real = None
    if cv2.countNonZero(m_in) > 40:
        px = lab[m_in > 0]
        chroma = np.hypot(px[:, 1], px[:, 2])
        sel = (px[:, 0] >= max(np.percentile(px[:, 0], 60), 0.8 * float(skin[0]))) & (chroma <= 0.9 * max(chroma_s, 8.0))
        if sel.sum() > max(15, 0.1 * len(px)):
            real = np.median(px[sel], axis=0)
    ref_l = max(float(sclera[0]) if sclera is not None else 0.0, float(real[0]) if real is not None else 0.0)
    # teeth are lit from the front like the cheek and never darker than it; cap below paper white
    t_l = min(94.0, max(ref_l + 2.0, 1.05 * float(skin[0]) + 3.0))
    if real is not None:
        t_ab = real[1:3].astype(np.float64)
    else:
        base = sclera[1:3].astype(np.float64) if sclera is not None else np.zeros(2)
        t_ab = 0.4 * base + 0.5 * skin_ab
    # warm like the light on the face, never grey, never pink: along the skin's hue 0.5-0.7 of
    # its chroma (see the module docstring), across it at most a quarter
    along = float(t_ab @ dir_s)
    across = t_ab - along * dir_s
    c_across = float(np.hypot(*across))
    if c_across > 0.25 * chroma_s:
        across *= 0.25 * chroma_s / c_across
    t_ab = min(max(along, 0.5 * chroma_s), 0.7 * chroma_s) * dir_s + across
    teeth = np.array([t_l, t_ab[0], t_ab[1]], np.float32)
    lip_l = float(lips[0])
    # the inside of a mouth is redder than the lips; in a black-and-white photo it stays grey
    red = 4.0 * min(1.0, chroma_s / 10.0)
    cavity = np.array([0.24 * min(lip_l, float(skin[0])), 0.6 * float(lips[1]) + red, 0.3 * float(lips[2])], np.float32)
    tongue = np.array([0.78 * lip_l, 0.9 * float(lips[1]) + red, 0.7 * float(lips[2])], np.float32)
    tup = lambda v: tuple(float(x) for x in bgr_of(v))  # noqa: E731
    return MouthPalette(lips=tup(lips), skin=tup(skin), teeth=tup(teeth), cavity=tup(cavity), tongue=tup(tongue),
                        grain=min(20.0, grain))


@dataclass(frozen=True, slots=True)
class MouthBank:
    """A talking clip's own mouth insides (neutral.mouth_crop): crops (k, rows, cols, 3) float32
    BGR, rows from the upper inner lip edge to the lower, columns corner to corner; openings (k,)
    centre gap over inner half-width of each."""

    crops: np.ndarray
    openings: np.ndarray

    def pick(self, opening: float) -> np.ndarray:
        """The crop whose opening (gap over inner half-width) is nearest the one asked for."""
        return self.crops[int(np.argmin(np.abs(self.openings - opening)))]


# --------------------------------------------------------------------------- drawing


# Tooth rows (judged on contact sheets of the test faces; a full upper row filling a small opening
# read as dentures): the upper row covers at most this share of the gap, the lower row's edge at
# most LOWER_MAX of it, shown from an opening (gap) of LOWER_FROM x the mouth's half-width on;
# teeth narrow by NARROW towards the corners (the arch turns away), and the midline falls
# between the two front teeth.
UPPER_MAX = 0.55
LOWER_MAX = 0.2
LOWER_FROM = 0.25
NARROW = 0.25


def draw_inner_mouth(out: np.ndarray, w: MouthWarp, pal: MouthPalette, frame_index: int = 0,
                     bank: MouthBank | None = None) -> None:
    """Paint the opened inner mouth of warp `w` into out (H, W, 3) uint8 BGR, in place.

    Only the pixels of the opening (plus a feathered edge of ~2 px) change; a closed or pressed
    mouth gets the soft line where the lips meet instead. frame_index moves the grain. With a
    bank (a talking clip's own mouths), the crop nearest in opening is laid into the opening
    instead of the painted teeth, cavity and tongue.
    """
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
    g0 = gt_c

    if bank is not None:
        crop = bank.pick(g0 / g.hw)
        rows, cols = crop.shape[:2]
        mx = ((np.clip(u * (1.0 / half), -0.96, 0.96) * (1.0 / 0.96) + 1.0) * (0.5 * (cols - 1))).astype(np.float32)
        my = (a * (rows - 1)).astype(np.float32)
        img = cv2.remap(crop, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        _blend(out, x0, y0, x1, y1, img, mask)
        return
    # cavity: darkest at the back (the middle of the gap) and the sides; light reaches the front
    cav = np.array(pal.cavity, np.float32)
    img = np.empty((ph, pw, 3), np.float32)
    img[:] = cav
    back = 4.0 * a * (1.0 - a)  # 1 half-way between the lips
    light = (0.65 + 0.45 * smoothstep(1.0 - un)) * (1.25 - 0.45 * back)
    img *= light[..., None]
    # tongue: low in the mouth on open vowels, lit a little from the front
    if g0 > 0.22 * g.hw:
        t_h = 0.4 * g0
        t_top = height - t_h  # < 0 inside the tongue
        tm = smoothstep(-t_top / (0.4 * t_h)) * smoothstep((0.85 - un) / 0.3)
        tm *= min(1.0, (g0 - 0.22 * g.hw) / (0.2 * g.hw))
        tcol = np.array(pal.tongue, np.float32)
        tsh = (0.6 + 0.3 * smoothstep(1.0 - un)) * (0.75 + 0.25 * smoothstep(-t_top / t_h))
        img += (tcol * tsh[..., None] - img) * (0.9 * tm)[..., None]
    teeth = np.array(pal.teeth, np.float32)
    tooth_w = 0.36 * half  # a front tooth is about a sixth of the opening's width
    # lower teeth: their edge above the lower lip, from a middling opening on (at most a fifth
    # of the gap, so a dark slit stays between the rows)
    if g0 > LOWER_FROM * g.hw:
        lb = np.minimum(0.13 * g.hw, LOWER_MAX * gap)
        lm = smoothstep((lb - height) / np.maximum(0.6, 0.3 * lb) + 0.5) * smoothstep((0.6 - un) / 0.2)
        lm *= 0.85 * min(1.0, (g0 - LOWER_FROM * g.hw) / (0.2 * g.hw))
        # narrower than the upper teeth, and, like them, meeting at the midline
        lsh = 0.72 + 0.14 * np.sin(np.pi * np.clip(u * (1.0 / (0.7 * tooth_w)), -50, 50)) ** 2
        img += (teeth * lsh[..., None] - img) * lm[..., None]
    # upper teeth: a row hanging from the upper lip, each tooth's lower edge a little rounded
    th = 0.36 * g.hw
    # tooth number (0 and -1: the front teeth, meeting at the midline), fraction inside it
    k = u * (1.0 + NARROW * un) * (1.0 / tooth_w)
    frac = k - np.floor(k)
    round_edge = 1.0 - 0.18 * (2.0 * frac - 1.0) ** 4  # the corners of each tooth are higher
    # never the whole gap: a small opening shows the teeth's edge over a dark slit, not a plate
    band = np.minimum(np.clip(1.0 - un * un / 0.9, 0.0, 1.0) ** 0.5 * th, UPPER_MAX * gap) * round_edge
    soft = max(0.6, 0.035 * g.hw)
    tmask = smoothstep((band - depth) / soft + 0.5) * smoothstep((0.95 - un) / 0.15)
    side = 0.66 + 0.34 * np.clip(np.cos(np.clip(un, 0.0, 1.0) * (0.5 * math.pi)), 0.0, 1.0) ** 0.8
    gum = 0.86 + 0.14 * smoothstep(depth / max(1.0, 0.3 * th))
    seam = 1.0 - 0.16 * smoothstep((np.abs(frac - 0.5) - 0.4) / 0.1)  # darker where two teeth meet
    tsh = side * gum * seam
    img += (teeth * tsh[..., None] - img) * tmask[..., None]
    # the wet inner rim of each lip, in the person's lip colour, a little darker
    rim_w = max(0.7, 0.045 * g.hw)
    rim = np.maximum(1.0 - smoothstep(depth / rim_w), 1.0 - smoothstep(height / (1.2 * rim_w)))
    lipc = np.array(pal.lips, np.float32) * 0.8
    img += (lipc - img) * (0.6 * rim)[..., None]
    # the photo's grain (a fixed tile at a per-frame offset)
    if pal.grain > 0.3:
        oy, ox = (frame_index * 37) % 96, (frame_index * 53) % 96
        reps = (-(-(ph + oy) // 96), -(-(pw + ox) // 96))
        noise = np.tile(_GRAIN, reps)[oy : oy + ph, ox : ox + pw]
        img += (pal.grain * noise)[..., None]

    _blend(out, x0, y0, x1, y1, img, mask)


def _blend(out, x0, y0, x1, y1, img, mask) -> None:
    dst = out[y0:y1, x0:x1]
    mf = mask[..., None]
    blended = dst.astype(np.float32)
    blended += (img - blended) * mf
    np.clip(blended, 0, 255, out=blended)
    dst[:] = (blended + 0.5).astype(np.uint8)


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
