"""The contact sheet `dhlive avatar prepare` writes next to an avatar: its face with a set of
mouth shapes and a blink (a photo) or a later loop frame (a video)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dhlive_cli.avatar import facerig as fr
from dhlive_cli.outpaths import write_png

__all__ = ["PREVIEW_SHAPES", "write_preview"]


PREVIEW_SHAPES = (
    ("rest", (0.0, 0.0, 0.0, 0.0)),
    ("open small", (0.25, 0.0, 0.0, 0.0)),
    ("open mid", (0.5, 0.0, 0.0, 0.0)),
    ("open wide", (0.9, 0.0, 0.0, 0.0)),
    ("spread (ee)", (0.25, 1.0, 0.0, 0.0)),
    ("round (oo)", (0.3, 0.0, 1.0, 0.0)),
    ("pressed (m b p)", (0.0, 0.0, 0.0, 1.0)),
)


def write_preview(avatar_dir: Path, path: Path, tile_w: int = 240) -> None:
    """A 4x2 contact sheet of the avatar's face with PREVIEW_SHAPES and a blink (or a later frame)."""
    import tomllib

    from dhlive_cli.avatar.drawn import MouthShape
    from dhlive_cli.avatar.photo import PhotoAvatar, VideoAvatar

    spec = tomllib.loads((avatar_dir / "avatar.toml").read_text())
    fr_ = spec["frames"]
    side = int(min(720, max(fr_["width"], fr_["height"]))) // 2 * 2
    cls = PhotoAvatar if spec["kind"] == "photo" else VideoAvatar
    av = cls(avatar_dir, spec, side, side, int(fr_.get("fps", 25)))
    try:
        pts = av.frame_points(0)
        oval = pts[fr.rig_slots(fr.FACE_OVAL)]
        x0, y0 = oval.min(axis=0)
        x1, y1 = oval.max(axis=0)
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1) + 0.08 * (y1 - y0)
        half = 0.62 * max(x1 - x0, y1 - y0)
        bx0, by0 = int(max(0, cx - half)), int(max(0, cy - half))
        bx1, by1 = int(min(side, cx + half)), int(min(side, cy + half))
        frame = np.zeros((side, side, 3), np.uint8)
        tiles = []
        items = [(label, 0, MouthShape(*m)) for label, m in PREVIEW_SHAPES]
        if isinstance(av, PhotoAvatar):
            k = next(i for i in range(av._blink_first, av._blink_first + 10 * av.fps) if av.blink_closure(i) >= 0.99)
            items.append(("blink", k, MouthShape()))
        else:
            items.append((f"loop frame {av.count // 2}", av.count // 2, MouthShape()))
        tile_h = int(round(tile_w * (by1 - by0) / max(1, bx1 - bx0)))
        for label, idx, m in items:
            av.render(frame, idx, m, fresh=True)
            t = cv2.resize(frame[by0:by1, bx0:bx1], (tile_w, tile_h), interpolation=cv2.INTER_AREA)
            bar = np.full((26, tile_w, 3), 245, np.uint8)
            cv2.putText(bar, label, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
            tiles.append(np.concatenate([t, bar], axis=0))
        gap = 4
        th = tiles[0].shape[0]
        sheet = np.full((2 * th + 3 * gap, 4 * tile_w + 5 * gap, 3), 255, np.uint8)
        for i, t in enumerate(tiles):
            r, c = divmod(i, 4)
            y, x = gap + r * (th + gap), gap + c * (tile_w + gap)
            sheet[y : y + th, x : x + tile_w] = t
        write_png(path, sheet)
    finally:
        av.close()
