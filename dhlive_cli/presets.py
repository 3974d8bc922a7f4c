"""Presets: the knobs the replaced system's users tuned by hand, as TOML files in presets/.

Each preset sets the output size, encoder speed, queue depths, frame-ring size, inference
threads and the memory budget (RSS above it is reported once; memory is bounded by the
engine's fixed buffers, not by forcing gc).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dhlive_cli import resources
from dhlive_cli.errors import InputError

PRESETS_DIR = resources.presets_dir()
NAMED_SIZES = {"240p": (426, 240), "360p": (640, 360), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    width: int
    height: int
    fps: int
    encoder_preset: str
    crf: int
    encoder_threads: int
    audio_bitrate: str
    gop_seconds: float
    block_frames: int  # frames analysed per block (render batches inference by block)
    queue_blocks: int  # analysis -> compose queue depth, in blocks
    queue_frames: int  # compose -> encode queue depth, in frames
    frame_ring: int  # preallocated frame buffers
    inference_sessions: int
    inference_threads: int
    memory_budget_mb: int


def parse_size(text: str) -> tuple[int, int]:
    t = text.strip().lower()
    if t in NAMED_SIZES:
        return NAMED_SIZES[t]
    m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", t)
    if not m:
        raise InputError(f"--size {text!r}: use 360p, 720p, 1080p or WxH (e.g. 960x540)")
    w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= 4096 and 64 <= h <= 4096):
        raise InputError(f"--size {text!r}: width and height must be between 64 and 4096")
    if w % 2 or h % 2:
        raise InputError(f"--size {text!r}: width and height must be even (H.264 yuv420p)")
    return w, h


def available() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str) -> Preset:
    path = Path(name) if name.endswith(".toml") else PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise InputError(f"--preset {name!r}: no such preset (have: {', '.join(available())})")
    try:
        d = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: {e}") from e
    try:
        w, h = parse_size(d["video"]["size"])
        return Preset(
            name=path.stem, width=w, height=h, fps=int(d["video"]["fps"]),
            encoder_preset=d["encoder"]["preset"], crf=int(d["encoder"]["crf"]),
            encoder_threads=int(d["encoder"].get("threads", 0)),
            audio_bitrate=str(d["encoder"]["audio_bitrate"]), gop_seconds=float(d["encoder"]["gop_seconds"]),
            block_frames=int(d["engine"]["block_frames"]), queue_blocks=int(d["engine"]["queue_blocks"]),
            queue_frames=int(d["engine"]["queue_frames"]), frame_ring=int(d["engine"]["frame_ring"]),
            inference_sessions=int(d["inference"]["sessions"]), inference_threads=int(d["inference"]["threads"]),
            memory_budget_mb=int(d["memory"]["budget_mb"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: bad or missing preset field: {e}") from e
