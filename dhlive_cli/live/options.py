"""Options of a live session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LiveOptions:
    crossfade_ms: int = 160  # idle <-> talking mouth envelope
    hangover_ms: int = 400  # pauses shorter than this stay "talking"
    max_queued_s: float = 30.0  # speech buffer size
    queue_frames: int = 8  # per-output queue (frames); full -> drop oldest
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    max_viewers: int = 4  # browser previews (WebRTC) watching this session at once
    # end by itself after exactly this many frames (`--duration` x fps), fading out over the
    # last crossfade; None: run until stop()
    stop_after_frames: int | None = None
