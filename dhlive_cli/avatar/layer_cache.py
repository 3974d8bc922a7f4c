"""Prerendered avatar layers kept on disk between runs, so a short render does not repaint them.

Painting the drawn avatar's layers costs 80-250 ms of CPU per frame size, a third of what a
1-second render may take in all; loading them back is a few milliseconds. Entries live in the
user's cache directory ($XDG_CACHE_HOME/dhlive/layers, else ~/.cache/dhlive/layers) as
uncompressed .npz files named by a SHA-256 of everything that decides the pixels: the source
of the painting modules, the avatar's spec and the frame size. A change to any of them is a
new name, so a stale entry is never read (old ones are simply left for the user to clear).
Writes go to a temporary file renamed into place, so concurrent processes never see half a
file; any failure to read or write just means painting again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dhlive" / "layers"


def layer_key(sources: list[Path], spec: dict, width: int, height: int) -> str:
    """Hex SHA-256 of the painting code, the spec (as sorted JSON) and the size."""
    h = hashlib.sha256()
    for src in sources:
        h.update(src.read_bytes())
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    h.update(f"{width}x{height}:numpy{np.__version__.split('.')[0]}".encode())
    return h.hexdigest()


def load(key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under key, or None (absent, unreadable, truncated)."""
    path = cache_dir() / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - a damaged entry is a cache miss, never an error
        log.debug("layer cache %s unreadable (%s): painting again", path, e)
        return None


def save(key: str, arrays: dict[str, np.ndarray]) -> None:
    """Store arrays under key atomically; errors (read-only home, full disk) are ignored."""
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".npz.part", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, d / f"{key}.npz")
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        log.debug("layer cache not written (%s)", e)
