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


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")  # x264's --preset names (x264 --fullhelp)

# every field of a preset file: (section, key) -> (kind, low, high, default or None when required).
# The bounds keep the engine's buffers and threads finite and its loops moving (block_frames 0
# spun a core for ever; queue_blocks 10^8 asked for memory without end) and keep values ffmpeg
# would refuse only after the children had started from reaching it.
_FIELDS: dict[tuple[str, str], tuple[str, float, float, object]] = {
    ("video", "size"): ("size", 0, 0, None),
    ("video", "fps"): ("int", 1, 60, None),
    ("encoder", "preset"): ("x264", 0, 0, None),
    ("encoder", "crf"): ("int", 0, 51, None),  # x264's CRF scale at 8 bits
    ("encoder", "threads"): ("int", 0, 64, 0),
    ("encoder", "audio_bitrate"): ("bitrate", 8, 512, None),  # kbit/s
    ("encoder", "gop_seconds"): ("float", 0.04, 60.0, None),
    ("engine", "block_frames"): ("int", 1, 250, None),
    ("engine", "queue_blocks"): ("int", 1, 16, None),
    ("engine", "queue_frames"): ("int", 1, 64, None),
    ("engine", "frame_ring"): ("int", 3, 128, None),
    ("inference", "sessions"): ("int", 1, 16, None),
    ("inference", "threads"): ("int", 1, 64, None),
    ("memory", "budget_mb"): ("int", 16, 1_048_576, None),
}


def _field(path: Path, d: dict, section: str, key: str):
    """One checked value of a preset file; InputError naming the file, the field and the rule."""
    kind, low, high, default = _FIELDS[(section, key)]
    where = f"{path}: [{section}] {key}"
    table = d.get(section, {})
    if not isinstance(table, dict):
        raise InputError(f"{path}: [{section}] must be a table of fields")
    if key not in table:
        if default is not None:
            return default
        raise InputError(f"{where} is missing")
    v = table[key]
    if kind == "size":
        if not isinstance(v, str):
            raise InputError(f"{where} = {v!r}: a text such as \"720p\" or \"960x540\"")
        try:
            return parse_size(v)
        except InputError as e:
            raise InputError(f"{where}: {str(e).removeprefix('--size ')}") from None
    if kind == "x264":  # x264 takes its preset names in any case
        if not isinstance(v, str) or v.strip().lower() not in X264_PRESETS:
            raise InputError(f"{where} = {v!r}: one of {', '.join(X264_PRESETS)}")
        return v.strip().lower()
    if kind == "bitrate":
        m = (re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([kK]?)", str(v).strip())  # ASCII digits: what ffmpeg reads
             if isinstance(v, (str, int)) and not isinstance(v, bool) else None)
        kbps = (float(m.group(1)) if m.group(2) else float(m.group(1)) / 1000) if m else None
        if kbps is None or not low <= kbps <= high:
            raise InputError(f"{where} = {v!r}: a bit rate from {low:g}k to {high:g}k, such as \"128k\"")
        return str(v).strip()
    if kind == "int":
        # what presets written for the earlier, looser reader held stays valid: 25.0, "23"
        n = v
        if isinstance(v, float) and v.is_integer():
            n = int(v)
        elif isinstance(v, str) and re.fullmatch(r"\s*[0-9]+\s*", v):
            n = int(v)
        if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= high:
            raise InputError(f"{where} = {v!r}: a whole number from {low:g} to {high:g}")
        return n
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:  # float
        raise InputError(f"{where} = {v!r}: a number from {low:g} to {high:g}")
    return float(v)


def load_preset(name: str) -> Preset:
    """A bundled preset by name (low, default, high) or a .toml file of the same fields.
    Every field is checked (type and range, _FIELDS) before anything starts; raises InputError
    with one line naming the file and the field. Unknown sections and keys are refused too: a
    misspelt one would otherwise be silently left at its default."""
    path = Path(name) if name.endswith(".toml") else PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise InputError(f"--preset {name!r}: no such preset (have: {', '.join(available())})")
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from e
    known = {s for s, _ in _FIELDS}
    for section, table in d.items():
        if section not in known:
            raise InputError(f"{path}: unknown section [{section}] (known: {', '.join(sorted(known))})")
        for key in (table if isinstance(table, dict) else {}):
            if (section, key) not in _FIELDS:
                names = ", ".join(k for s, k in _FIELDS if s == section)
                raise InputError(f"{path}: [{section}] unknown field {key!r} (known: {names})")
    f = {(s, k): _field(path, d, s, k) for s, k in _FIELDS}
    ring, queue = f[("engine", "frame_ring")], f[("engine", "queue_frames")]
    if ring < queue + 2:
        raise InputError(f"{path}: [engine] frame_ring = {ring}: at least queue_frames + 2 ({queue + 2})")
    w, h = f[("video", "size")]
    return Preset(
        name=path.stem, width=w, height=h, fps=f[("video", "fps")], encoder_preset=f[("encoder", "preset")],
        crf=f[("encoder", "crf")], encoder_threads=f[("encoder", "threads")],
        audio_bitrate=f[("encoder", "audio_bitrate")], gop_seconds=f[("encoder", "gop_seconds")],
        block_frames=f[("engine", "block_frames")], queue_blocks=f[("engine", "queue_blocks")], queue_frames=queue,
        frame_ring=ring, inference_sessions=f[("inference", "sessions")],
        inference_threads=f[("inference", "threads")], memory_budget_mb=f[("memory", "budget_mb")],
    )
