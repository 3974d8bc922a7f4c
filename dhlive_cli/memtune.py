"""Process-wide allocator setting for long-running processes (live with sessions coming and going).

glibc serves big allocations (frame rings, audio rings: hundreds of KB to MB) with mmap and
gives them back to the system on free, but by default it raises that threshold to the size of
the last freed mmap chunk. After the first session stops, the next session's frame buffers
then come from the heap, where freed space is reused but rarely returned: RSS wanders by
several MB as sessions come and go. Pinning the threshold keeps big buffers on mmap, so
removing a session gives its memory back at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 256 * 1024  # anything frame-sized is larger than this

def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold (and so stop its dynamic raising). True when it was set.
    Calling it again is harmless: it sets the same value."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl and others have no mallopt: nothing to pin
        ok = False
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD) not available")
    return ok
