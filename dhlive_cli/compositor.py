"""Compositor: avatar frames drawn into a preallocated ring of I420 frames, the encoder's format.

An avatar draws BGR into one canvas per drawing thread (its static parts stay there between
frames); the Composer converts only the regions the avatar may change into the ring slot as
I420 (planar YUV 4:2:0: Y plane, then U, then V, BT.601 limited range, the same as ffmpeg's
swscale gives for bgr24 -> yuv420p). x264 takes those bytes as they are: half the bytes of BGR
through the pipe and no conversion in the encoder's process.

The ring is the only place encoded frames live. A slot goes free -> drawn -> encoded -> free
again; nothing frame-sized is allocated after start. Avatars are loaded once per (avatar, size)
and may be shared by several sessions: their render() is pure in (frame index, mouth).
"""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path

import numpy as np

from dhlive_cli import resources
from dhlive_cli.errors import InputError
from dhlive_cli.queues import BoundedQueue

DEFAULT_AVATAR = resources.default_avatar_dir()


def i420_shape(height: int, width: int) -> tuple[int, int]:
    """Rows x columns of one I420 frame as a 2-D uint8 array: (height * 3 / 2, width)."""
    if height % 2 or width % 2:
        raise InputError(f"frame size {width}x{height}: width and height must be even for yuv420p")
    return height * 3 // 2, width


def i420_planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (Y (h, w), U (h/2, w/2), V (h/2, w/2)) of an I420 frame stored as a C-contiguous
    (h * 3 / 2, w) uint8 array (i420_shape); writing a view writes the frame."""
    rows, w = frame.shape
    h = rows * 2 // 3
    flat = frame.reshape(-1)
    q = h * w // 4
    return frame[:h], flat[h * w : h * w + q].reshape(h // 2, w // 2), flat[h * w + q : h * w + 2 * q].reshape(h // 2, w // 2)


def _even_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """box (x0, y0, x1, y1) grown outwards to even coordinates (a chroma sample covers 2x2 pixels)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)
    x1, y1 = min(width, x1 + x1 % 2), min(height, y1 + y1 % 2)
    return x0, y0, x1, y1


class Composer:
    """Draws one avatar's frames into I420 ring slots; one per drawing thread.

    draw(out, k, mouth, fresh) renders frame k into this composer's BGR canvas (height, width,
    3) uint8, then writes out, an I420 frame of i420_shape(height, width) uint8: converted
    whole when `fresh` (the slot has never held this avatar), otherwise only inside the boxes
    the avatar declares in `dynamic_boxes` (pixels it may change between frames; an avatar
    without them is converted whole every frame). The conversion is OpenCV's
    COLOR_BGR2YUV_I420, which gives the same bytes for an even-aligned region as for the whole
    frame; against ffmpeg's swscale (the old path) it differs by at most 1 in Y, PSNR above
    45 dB (tests/test_yuv.py).

    An avatar that writes some of its dynamic boxes in I420 itself (`i420_boxes` and
    render_i420(out, k), the drawn avatar's breathing body) draws those there instead, once
    the slot holds the avatar: render(..., native_i420=True) leaves them out of the canvas,
    render_i420 writes them into the slot, then the other boxes are converted over them.
    """

    def __init__(self, avatar):
        import cv2

        self._cv2 = cv2
        self.avatar = avatar
        self.width, self.height = w, h = avatar.width, avatar.height
        i420_shape(h, w)
        self.canvas = np.zeros((h, w, 3), dtype=np.uint8)
        self._canvas_fresh = True
        boxes = getattr(avatar, "dynamic_boxes", None)
        native = tuple(getattr(avatar, "i420_boxes", ())) if boxes is not None else ()
        self._native = bool(native)
        self.boxes = None if boxes is None else [
            b for b in (_even_box(b, w, h) for b in boxes if tuple(b) not in native) if b[2] > b[0] and b[3] > b[1]]
        # one preallocated I420 scratch per box: cvtColor writes there, the planes are copied out
        self._scratch = [np.empty(((y1 - y0) * 3 // 2, x1 - x0), np.uint8) for x0, y0, x1, y1 in self.boxes or ()]

    def draw(self, out: np.ndarray, frame_index: int, mouth, fresh: bool) -> None:
        if self._native and not fresh:
            self.avatar.render(self.canvas, frame_index, mouth, fresh=self._canvas_fresh, native_i420=True)
            self._canvas_fresh = False
            self.avatar.render_i420(out, frame_index)
            self.convert(out, fresh=False)
            return
        # a slot new to the avatar is converted whole: the canvas must hold every part
        self.avatar.render(self.canvas, frame_index, mouth, fresh=self._canvas_fresh)
        self._canvas_fresh = False
        self.convert(out, fresh)

    def convert(self, out: np.ndarray, fresh: bool = True) -> None:
        """The canvas (or its dynamic boxes, when not fresh) into the I420 frame out."""
        cv2 = self._cv2
        if fresh or self.boxes is None:
            cv2.cvtColor(self.canvas, cv2.COLOR_BGR2YUV_I420, dst=out)
            return
        y_plane, u_plane, v_plane = i420_planes(out)
        for (x0, y0, x1, y1), tmp in zip(self.boxes, self._scratch):
            cv2.cvtColor(self.canvas[y0:y1, x0:x1], cv2.COLOR_BGR2YUV_I420, dst=tmp)
            ty, tu, tv = i420_planes(tmp)
            y_plane[y0:y1, x0:x1] = ty
            u_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = tu
            v_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = tv


class FrameRing:
    """slots preallocated I420 frames (slots, height * 3 / 2, width) uint8 with a free list that
    blocks when empty (render: nothing is dropped, the drawing waits for the encoder)."""

    def __init__(self, slots: int, height: int, width: int, cancel: threading.Event | None = None):
        self.frames = np.zeros((slots, *i420_shape(height, width)), dtype=np.uint8)
        # a slot drawn once already holds this avatar's static parts: later draws convert only
        # the avatar's dynamic boxes
        self.drawn = np.zeros(slots, dtype=bool)
        self._free: BoundedQueue[int] = BoundedQueue("frame-ring", slots, "block", cancel)
        for i in range(slots):
            self._free.put(i)

    def acquire(self) -> int:
        return self._free.get()

    def release(self, slot: int) -> None:
        self._free.put(slot)

    @property
    def free(self) -> int:
        return len(self._free)


def load_avatar(avatar_dir: str | os.PathLike | None, width: int, height: int, fps: int):
    d = Path(avatar_dir) if avatar_dir else DEFAULT_AVATAR
    manifest = d / "avatar.toml"
    if not manifest.is_file():
        raise InputError(f"{d}: not an avatar directory (no avatar.toml)")
    try:
        spec = tomllib.loads(manifest.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{manifest}: {e}") from e
    kind = spec.get("kind")
    if kind == "drawn":
        from dhlive_cli.avatar.drawn import DrawnAvatar

        return DrawnAvatar(spec, width, height, fps)
    if kind == "photo":
        from dhlive_cli.avatar.photo import PhotoAvatar

        return PhotoAvatar(d, spec, width, height, fps)
    if kind == "video":
        from dhlive_cli.avatar.photo import VideoAvatar

        return VideoAvatar(d, spec, width, height, fps)
    raise InputError(f"{manifest}: unknown avatar kind {kind!r}")


class AvatarCache:
    """Avatar assets loaded once per (directory, size, fps) and shared across sessions.

    Counted: get() takes a reference, release() gives it back, and the last release drops the
    assets, so a process that starts and stops sessions for days does not keep every avatar
    it ever showed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple, list] = {}  # key -> [avatar, users]

    @staticmethod
    def _key(avatar_dir, width: int, height: int, fps: int) -> tuple:
        return (str(Path(avatar_dir).resolve()) if avatar_dir else "", width, height, fps)

    def get(self, avatar_dir, width: int, height: int, fps: int):
        key = self._key(avatar_dir, width, height, fps)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = [load_avatar(avatar_dir, width, height, fps), 0]
            item[1] += 1
            return item[0]

    def release(self, avatar) -> None:
        with self._lock:
            for key, item in self._items.items():
                if item[0] is avatar:
                    item[1] -= 1
                    if item[1] <= 0:
                        del self._items[key]
                        close = getattr(avatar, "close", None)
                        if close is not None:
                            close()
                    return

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
