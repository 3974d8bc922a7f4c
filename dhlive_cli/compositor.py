"""Compositor: avatar frames drawn into a preallocated ring of frame buffers.

The ring is the only place frames live. A slot goes free -> drawn -> encoded -> free again;
nothing frame-sized is allocated after start. Avatars are loaded once per (avatar, size) and
may be shared by several sessions: their render() is pure in (frame index, mouth).
"""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path

import numpy as np

from dhlive_cli.errors import InputError
from dhlive_cli.queues import BoundedQueue

DEFAULT_AVATAR = Path(__file__).resolve().parent.parent / "presets" / "avatars" / "default"


class FrameRing:
    def __init__(self, slots: int, height: int, width: int, cancel: threading.Event | None = None):
        self.frames = np.zeros((slots, height, width, 3), dtype=np.uint8)
        # a slot drawn once already holds this avatar's static parts: later draws may skip them
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
    raise InputError(f"{manifest}: unknown avatar kind {kind!r}")


class AvatarCache:
    """Avatar assets loaded once per (directory, size, fps) and shared across sessions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple, object] = {}

    def get(self, avatar_dir, width: int, height: int, fps: int):
        key = (str(Path(avatar_dir).resolve()) if avatar_dir else "", width, height, fps)
        with self._lock:
            av = self._items.get(key)
            if av is None:
                av = load_avatar(avatar_dir, width, height, fps)
                self._items[key] = av
            return av
