"""Process-wide allocator settings for long-running processes (live with sessions coming and going,
outputs reconnecting).

glibc serves big allocations (frame rings, audio rings: hundreds of KB to MB) with mmap and
gives them back to the system on free, but by default it raises that threshold to the size of
the last freed mmap chunk. After the first session stops, the next session's frame buffers
then come from the heap, where freed space is reused but rarely returned: RSS wanders by
several MB as sessions come and go. Pinning the threshold keeps big buffers on mmap, so
removing a session gives its memory back at once.

glibc also gives a thread that allocates while the existing arenas are busy a new arena (up to
8 per core), and keeps it, with the pages it touched, for the life of the process. A live
process starts short-lived threads all the time (an encoder's stderr reader on every reconnect,
one per metrics scrape or API upload), so its RSS climbs in steps of a few hundred KB to a few
MB whenever more of them than ever before overlap. Measured on `dhlive live` at 360p with 12
concurrent /metrics scrapers for three rounds of 15 s (two runs each): uncapped, 8 -> 15 arenas
and RSS 129.3 MB at the end, still creeping by 0.1 MB over the last two rounds; capped at two,
one extra arena, 128.0 / 128.3 MB, flat over the last two rounds. Big buffers go to mmap anyway
and small objects to Python's own allocator, so two arenas add little contention.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8  # from glibc's malloc.h
ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 256 * 1024  # anything frame-sized is larger than this

def tune_allocator() -> bool:
    """Fix glibc's mmap threshold (and so stop its dynamic raising) and cap its arenas at
    ARENA_MAX (see the module notes). Call it before starting threads. True when both were set.
    Calling it again is harmless: it sets the same values."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
        ok = bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX)) and ok
    except (OSError, AttributeError):  # musl and others have no mallopt: nothing to pin
        ok = False
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD / M_ARENA_MAX) not available")
    return ok


pin_mmap_threshold = tune_allocator  # the name callers used before the arena cap was added
