"""`dhlive lipsync`: speech to a per-frame mouth track (json, tsv or csv) for other animation tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import err_console, user_errors

EXAMPLES = """
Examples:

  dhlive lipsync speech.wav -o track.json

  dhlive lipsync speech.mp3 -o track.tsv --fps 50

Each frame carries time, open, spread, round, close (0..1) and a mouth-shape letter
(X A B C D E F G H, the set 2-D lip-sync tools use).
"""


def lipsync(
    input: Annotated[Path, typer.Argument(help="Speech audio: any format ffmpeg reads.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Track file: .json, .tsv or .csv.", show_default=False)],
    fps: Annotated[int, typer.Option(help="Frames per second of the track (10, 20, 25 or 50).")] = 25,
    device: Annotated[str, typer.Option(help="Inference device: auto, cpu or cuda.")] = "auto",
    model: Annotated[Optional[Path], typer.Option(help="Mouth model .onnx (default: the bundled model).")] = None,
):
    """Write the mouth track of a speech file: parameters and mouth-shape letters per frame."""
    with user_errors():
        n, dur = _lipsync(input, output, fps, device, model)
    err_console.print(f"[green]wrote[/] {output}  {n} frames, {dur:.2f} s at {fps} fps")


lipsync.__doc__ = (lipsync.__doc__ or "") + "\n\n" + EXAMPLES


def _lipsync(input, output, fps, device, model) -> tuple[int, float]:
    import numpy as np

    from dhlive_cli.analysis import MouthAnalyzer
    from dhlive_cli.engine import check_output_path, sibling_name
    from dhlive_cli.errors import InputError
    from dhlive_cli.inference import PARAMS, InferenceOptions, InferencePool
    from dhlive_cli.mouth_cues import mouth_cue
    from dhlive_cli.sources import FileAudioSource
    from dhlive_cli.timebase import Timebase

    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("json", "tsv", "csv"):
        raise InputError(f"{output}: use a .json, .tsv or .csv file name")
    try:
        tb = Timebase(fps)
    except ValueError as e:
        raise InputError(f"--fps {fps}: {e}") from e
    out_path = check_output_path(output)
    pool = InferencePool(model, InferenceOptions(device=device))
    block = 50
    analyzer = MouthAnalyzer(pool, tb, max_push_frames=block)
    spf = tb.samples_per_frame
    buf = np.zeros(block * spf, np.float32)
    mouth = np.zeros((block + 8, 4), np.float32)
    rows: list[tuple] = []  # a track is small: 4 floats per frame

    def drain():
        while (k := analyzer.take(mouth)) > 0:
            first = analyzer.frames_done - k
            for i in range(k):
                o, s, r, c = (float(x) for x in mouth[i])
                rows.append(((first + i) / fps, o, s, r, c, mouth_cue(o, s, r, c)))

    samples = 0
    with FileAudioSource(input) as src:
        while True:
            n = src.read_into(buf)
            samples += n
            frames = -(-n // spf)
            buf[n : frames * spf] = 0.0
            if frames:
                analyzer.push(buf, frames)
            if n < buf.shape[0]:
                analyzer.finish()
                drain()
                break
            drain()
    if not rows:
        raise InputError(f"{input}: contains no audio samples")
    tmp = sibling_name(out_path, "dhlive-partial")  # within NAME_MAX however long the name
    names = ("time", *PARAMS, "cue")
    with open(tmp, "w") as f:
        if fmt == "json":
            json.dump({"fps": fps, "model": pool.name, "duration_s": samples / 16000, "params": list(PARAMS),
                       "cues": "XABCDEFGH",
                       "frames": [{"t": round(t, 4), "open": round(o, 4), "spread": round(s, 4), "round": round(r, 4),
                                   "close": round(c, 4), "cue": q} for t, o, s, r, c, q in rows]}, f, indent=1)
        else:
            sep = "\t" if fmt == "tsv" else ","
            f.write(sep.join(names) + "\n")
            for t, o, s, r, c, q in rows:
                f.write(sep.join((f"{t:.3f}", f"{o:.4f}", f"{s:.4f}", f"{r:.4f}", f"{c:.4f}", q)) + "\n")
    tmp.replace(out_path)
    return len(rows), samples / 16000
