"""A talking source clip made quiet: every frame gets the same resting mouth (prepare time).

A clip of a presenter who talks would otherwise show its own mouth under ours: its teeth on our
lower lip, lips that cannot close on b/m/p because the source mouth is open. ``MouthNeutraliser``
takes the clip's most closed frame as the rest frame and, for every frame, lays the rest frame's
lower face over it: the rest frame is aligned to the frame by a similarity transform fitted to
landmarks that speech does not move (nose, eye corners, cheeks, face edges), placed through a
feathered mask over the mouth, jaw and chin (the union of both frames' lower faces, so an open
jaw is covered down to its chin), with the mean colour of the mask's border matched so lighting
changes over the clip do not leave a patch. The frame's mouth and jaw landmarks move the same
way, weighted by the mask, so the rig sees the rest mouth.

What the clip showed inside the mouth is kept: ``bank_frames`` picks frames whose openings span
the clip's range and ``mouth_crop`` resamples each opening (upper inner lip edge to lower, corner
to corner) to a small picture. At run time the inner mouth is drawn from the crop whose opening
is nearest the one asked for (inner_mouth.draw_inner_mouth), so the teeth, tongue and lips are
the presenter's own.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MouthNeutraliser", "rest_frame_index", "mouth_gap", "NEEDS_NEUTRAL_GAP", "mouth_crop", "bank_frames"]

# landmarks that speech does not move: nose bridge and tip, eye corners, cheekbones, face edges
STABLE = (1, 4, 5, 6, 168, 197, 195, 33, 133, 362, 263, 50, 280, 234, 454, 98, 327, 116, 345)
# the lower face: the face oval from one cheek edge round the chin to the other, closed across
# the cheeks just under the nose
LOWER_FACE = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323,
              454, 411, 425, 423, 391, 393, 164, 167, 165, 203, 205, 187)
# a clip whose mouth opens by more than this (inner gap over mouth width) beyond its most closed
# frame is treated as talking and neutralised
NEEDS_NEUTRAL_GAP = 0.06


def mouth_gap(lm: np.ndarray) -> float:
    """Inner lip gap over mouth width: about 0 closed, 0.3+ clearly open."""
    w = np.linalg.norm(lm[308, :2] - lm[78, :2])
    return float(np.linalg.norm(lm[14, :2] - lm[13, :2]) / max(w, 1e-6))


def rest_frame_index(lms: np.ndarray) -> int:
    """The frame to take the resting mouth from: among the most closed tenth of the frames, the
    one whose head position is nearest the clip's median (so alignment errors stay small)."""
    gaps = np.array([mouth_gap(x) for x in lms])
    k = max(1, len(gaps) // 10)
    closed = np.argsort(gaps, kind="stable")[:k]
    centre = np.median(lms[:, STABLE, :2], axis=0)
    d = [float(np.abs(lms[i, STABLE, :2] - centre).mean()) for i in closed]
    return int(closed[int(np.argmin(d))])


class MouthNeutraliser:
    """Lays one rest frame's lower face over other frames of the same clip.

    rest: (H, W, 3) uint8 BGR; rest_lm: (468, 2|3) landmarks of it in pixels.
    """

    def __init__(self, rest: np.ndarray, rest_lm: np.ndarray):
        self.rest = np.ascontiguousarray(rest)
        self.rest_lm = np.asarray(rest_lm, np.float64)
        self.h, self.w = rest.shape[:2]

    def plan(self, lm: np.ndarray):
        """(2x3 similarity rest -> frame, (H, W) float32 blend mask, new landmarks) for a frame."""
        lm = np.asarray(lm, np.float64)
        src = self.rest_lm[list(STABLE), :2].astype(np.float32)
        dst = lm[list(STABLE), :2].astype(np.float32)
        a, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
        if a is None:
            a = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
        rest_w = self.rest_lm[:, :2] @ a[:, :2].T + a[:, 2]
        face_h = float(np.linalg.norm(lm[152, :2] - lm[10, :2]))
        m = np.zeros((self.h, self.w), np.uint8)
        for pts in (lm[list(LOWER_FACE), :2], rest_w[list(LOWER_FACE)]):
            cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
        sigma = max(1.0, 0.025 * face_h)
        # shrink by about the blur so the feathered edge ends on the face, not beyond it
        r = max(1, int(round(1.5 * sigma)))
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        mask = cv2.GaussianBlur(m, (0, 0), sigma).astype(np.float32) * (1.0 / 255.0)
        # mouth and jaw landmarks follow the rest frame's, as much as the mask replaces them
        xy = np.clip(np.round(lm[:, :2]).astype(np.int64), 0, [self.w - 1, self.h - 1])
        wts = mask[xy[:, 1], xy[:, 0]][:, None]
        # the lower face outline keeps the rest frame's shape fully (the mask edge sits on it)
        wts[list(LOWER_FACE[:21])] = 1.0
        new = lm.copy()
        new[:, :2] = lm[:, :2] + wts * (rest_w - lm[:, :2])
        return a, mask, new

    def apply(self, frame: np.ndarray, a: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The frame with the aligned rest frame blended in through mask (a new array)."""
        warped = cv2.warpAffine(self.rest, a, (self.w, self.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        f = frame.astype(np.float32)
        wf = warped.astype(np.float32)
        # match the mean colour on the mask's border (lighting drifts over a clip)
        ring = (mask > 0.05) & (mask < 0.6)
        if ring.sum() > 20:
            wf += (f[ring].mean(axis=0) - wf[ring].mean(axis=0))[None, None, :] * 1.0
        m = mask[..., None]
        out = f + (wf - f) * m
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the real mouth bank

BANK_SIZE = (48, 128)  # rows (upper lip -> lower lip), columns (corner -> corner) of a bank crop
BANK_LEVELS = 6


def mouth_crop(frame: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, float]:
    """The inside of a frame's mouth resampled to BANK_SIZE, and its opening (centre gap over the
    inner half-width). Rows run from the upper inner lip edge (0) to the lower one (1), columns
    from the image-left inner corner to the image-right one, so a crop lays into any opening."""
    from dhlive_cli.avatar.facerig import RIG_INDEX, MouthGeometry

    h, w = frame.shape[:2]
    g = MouthGeometry.from_points(np.asarray(lm, np.float64)[RIG_INDEX, :2], w, h)
    rows, cols = BANK_SIZE
    u = np.linspace(-0.96, 0.96, cols)[None, :]
    a = np.linspace(0.0, 1.0, rows)[:, None]
    vup = np.interp(u, g.us, g.vup)
    vlo = np.interp(u, g.us, g.vlo)
    v = vup + a * (vlo - vup)
    x, y = g.to_px(np.broadcast_to(u, v.shape), v)
    crop = cv2.remap(frame, x.astype(np.float32), y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, float(g.gap[len(g.gap) // 2] / g.hw)


def bank_frames(lms: np.ndarray, levels: int = BANK_LEVELS) -> list[int]:
    """Frames whose mouths span the clip's openings: one per level between a third of the widest
    opening and the widest (only frames clearly open show teeth and tongue)."""
    gaps = np.array([mouth_gap(x) for x in lms])
    top = float(gaps.max())
    if top < NEEDS_NEUTRAL_GAP:
        return []
    picks = []
    for t in np.linspace(top / 3.0, top, levels):
        i = int(np.argmin(np.abs(gaps - t)))
        if i not in picks:
            picks.append(i)
    return picks
