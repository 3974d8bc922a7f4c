"""Writers for `dhlive lipsync`: the per-frame parameter track and the mouth-cue formats that 2-D
animation tools read.

Cue formats follow the output formats documented in Rhubarb Lip Sync's README (its `tsv`, `xml`
and `json` exports) and the Moho / OpenToonz "switch data" file (`MohoSwitch1`, as Papagayo and
Rhubarb's `dat` export write it), so tools built for those read dhlive's tracks unchanged:

- tsv: one `start<TAB>shape` line per cue, the start in seconds with two decimals, the first at
  0.00; a last line at the end of the audio (truncated to 0.01 s) with the closed mouth (X, or A
  without the X shape) marks where the last cue ends.
- xml: `<rhubarbResult>` with `<metadata>` (soundFile, duration) and `<mouthCues>` of
  `<mouthCue start=".." end="..">SHAPE</mouthCue>`; each end is the next start.
- json: {"metadata": {"soundFile", "duration"}, "mouthCues": [{"start", "end", "value"}]}.
- dat: the line `MohoSwitch1`, then `FRAME SHAPE` lines with 1-based frame numbers at the
  file's own frame rate (--dat-fps, 24 by default as in Rhubarb), a line only where the shape
  changes, and a last line with the closed mouth on the frame after the audio ends.

Times in the cue formats are whole centiseconds (the documented two decimals); a cue's start is
rounded to the nearest one, so at 25 fps (40 ms frames) they are exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape

from dhlive_cli.mouth_cues import PRESTON_BLAIR, MouthCue

CUE_FORMATS = ("rhubarb-tsv", "rhubarb-xml", "rhubarb-json", "moho")
FRAME_FORMATS = ("frames",)
# what --format auto picks from the output's suffix
BY_SUFFIX = {".tsv": "rhubarb-tsv", ".txt": "rhubarb-tsv", ".xml": "rhubarb-xml", ".json": "rhubarb-json",
             ".dat": "moho", ".csv": "frames"}
# Rhubarb's own exports (its -f tsv|xml|json|dat), by suffix; .dat is Moho switch data
RHUBARB_BY_SUFFIX = {".tsv": "rhubarb-tsv", ".txt": "rhubarb-tsv", ".xml": "rhubarb-xml", ".json": "rhubarb-json",
                     ".dat": "moho"}
FRAME_SUFFIXES = (".json", ".tsv", ".csv")


def resolve_format(fmt: str, output: Path) -> str:
    """The concrete format for --format fmt and the output name: one of CUE_FORMATS or
    'frames'. 'auto' goes by suffix (BY_SUFFIX); 'rhubarb' by suffix among Rhubarb's four
    exports, .dat being Moho's (tsv when the suffix says none; .csv, which names the
    per-frame format, is refused); 'dat' is 'moho'. Raises ValueError with the choices."""
    suffix = output.suffix.lower()
    f = fmt.lower()
    if f == "auto":
        if suffix not in BY_SUFFIX:
            raise ValueError(f"{output}: cannot tell the format from the suffix; use .tsv, .xml, .json or .dat "
                             "(Rhubarb/Moho cues) or .csv (per-frame parameters), or give --format")
        return BY_SUFFIX[suffix]
    if f == "rhubarb":
        if suffix == ".csv":  # the one suffix that names another format: tab-separated cues in a .csv
            raise ValueError(f"{output}: Rhubarb's exports are .tsv or .txt, .xml, .json and .dat; a .csv "
                             "file gets per-frame parameters (--format auto or frames)")
        return RHUBARB_BY_SUFFIX.get(suffix, "rhubarb-tsv")
    if f == "dat":
        return "moho"
    if f in CUE_FORMATS:
        return f
    if f == "frames":
        if suffix not in FRAME_SUFFIXES:
            raise ValueError(f"{output}: --format frames writes .json, .tsv or .csv")
        return f
    raise ValueError(f"--format {fmt}: use auto, rhubarb, rhubarb-tsv, rhubarb-xml, rhubarb-json, moho or frames")


def centis(t: float) -> int:
    """Seconds -> whole centiseconds, rounded."""
    return int(round(t * 100))


def truncated_duration(duration_s: float) -> int:
    """The audio's length in whole centiseconds, truncated as the documented formats have it."""
    return int(math.floor(duration_s * 100 + 1e-6))


def _cs(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def quantised(cues: Sequence[MouthCue], duration_s: float) -> list[tuple[int, int, str]]:
    """Cues as (start, end, shape) in centiseconds, contiguous from 0 to the truncated duration;
    a cue that rounds to nothing is dropped (its neighbour takes its time)."""
    end_cs = truncated_duration(duration_s)
    out: list[tuple[int, int, str]] = []
    for c in cues:
        s = min(centis(c.start_s), end_cs)
        if out and s <= out[-1][0]:
            continue
        if out:
            out[-1] = (out[-1][0], s, out[-1][2])
        out.append((s, end_cs, c.shape))
    out = [c for c in out if c[1] > c[0]]
    if out and out[0][0] != 0:
        out[0] = (0, out[0][1], out[0][2])
    return out


def write_rhubarb_tsv(f: TextIO, cues: Sequence[MouthCue], duration_s: float, closed: str) -> None:
    """Rhubarb's TSV: `start<TAB>shape` per cue, then `duration<TAB>closed` (closed: X or A)."""
    q = quantised(cues, duration_s)
    for s, _e, shape in q:
        f.write(f"{_cs(s)}\t{shape}\n")
    f.write(f"{_cs(truncated_duration(duration_s))}\t{closed}\n")


def write_rhubarb_xml(f: TextIO, cues: Sequence[MouthCue], duration_s: float, sound_file: str) -> None:
    """Rhubarb's XML: rhubarbResult/metadata(soundFile, duration) and mouthCues/mouthCue(start, end)."""
    f.write('<?xml version="1.0" encoding="utf-8"?>\n<rhubarbResult>\n  <metadata>\n')
    f.write(f"    <soundFile>{escape(sound_file)}</soundFile>\n")
    f.write(f"    <duration>{_cs(truncated_duration(duration_s))}</duration>\n  </metadata>\n  <mouthCues>\n")
    for s, e, shape in quantised(cues, duration_s):
        f.write(f'    <mouthCue start="{_cs(s)}" end="{_cs(e)}">{shape}</mouthCue>\n')
    f.write("  </mouthCues>\n</rhubarbResult>\n")


def write_rhubarb_json(f: TextIO, cues: Sequence[MouthCue], duration_s: float, sound_file: str) -> None:
    """Rhubarb's JSON: {"metadata": {soundFile, duration}, "mouthCues": [{start, end, value}]}."""
    # one cue per line, the numbers with their two decimals (json.dumps would write 0.0 and 1.2)
    f.write('{\n  "metadata": {\n')
    f.write(f'    "soundFile": {json.dumps(sound_file)},\n')
    f.write(f'    "duration": {_cs(truncated_duration(duration_s))}\n  }},\n  "mouthCues": [\n')
    q = quantised(cues, duration_s)
    for i, (s, e, shape) in enumerate(q):
        sep = "," if i + 1 < len(q) else ""
        f.write(f'    {{ "start": {_cs(s)}, "end": {_cs(e)}, "value": "{shape}" }}{sep}\n')
    f.write("  ]\n}\n")


def write_moho_dat(f: TextIO, cues: Sequence[MouthCue], duration_s: float, dat_fps: int, closed: str,
                   preston_blair: bool = False) -> None:
    """Moho/OpenToonz switch data at dat_fps frames per second. Frame numbers: a cue starting at t seconds switches on frame floor(t * dat_fps) + 1; when
    two cues fall on one frame the later one wins; the closed mouth follows on the frame after
    the audio's end."""
    name = (lambda c: PRESTON_BLAIR[c]) if preston_blair else (lambda c: c)
    rows: list[tuple[int, str]] = []
    for s, _e, shape in quantised(cues, duration_s):
        frame = s * dat_fps // 100 + 1
        if rows and rows[-1][0] == frame:
            rows[-1] = (frame, shape)
        else:
            rows.append((frame, shape))
    merged: list[tuple[int, str]] = []
    for frame, shape in rows:  # a shape that wins its frame may repeat the one before it
        if not merged or merged[-1][1] != shape:
            merged.append((frame, shape))
    end_frame = truncated_duration(duration_s) * dat_fps // 100 + 1
    if merged and end_frame > merged[-1][0] and merged[-1][1] != closed:
        merged.append((end_frame, closed))
    f.write("MohoSwitch1\n")
    for frame, shape in merged:
        f.write(f"{frame} {name(shape)}\n")


def write_frames(f: TextIO, suffix: str, rows: Sequence[tuple], fps: int, model: str, duration_s: float,
                 params: Sequence[str]) -> None:
    """The per-frame track: rows of (time s, open, spread, round, close, letter), as JSON (an
    object with 'frames') or as a TSV/CSV table with a header line."""
    if suffix == ".json":
        json.dump({"fps": fps, "model": model, "duration_s": duration_s, "params": list(params),
                   "cues": "XABCDEFGH",
                   "frames": [{"t": round(t, 4), "open": round(o, 4), "spread": round(s, 4), "round": round(r, 4),
                               "close": round(c, 4), "cue": q} for t, o, s, r, c, q in rows]}, f, indent=1)
        return
    sep = "\t" if suffix == ".tsv" else ","
    f.write(sep.join(("time", *params, "cue")) + "\n")
    for t, o, s, r, c, q in rows:
        f.write(sep.join((f"{t:.3f}", f"{o:.4f}", f"{s:.4f}", f"{r:.4f}", f"{c:.4f}", q)) + "\n")
