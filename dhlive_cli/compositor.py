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

from dhlive_cli import resources
from dhlive_cli.errors import InputError
from dhlive_cli.queues import BoundedQueue

DEFAULT_AVATAR = resources.default_avatar_dir()


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
