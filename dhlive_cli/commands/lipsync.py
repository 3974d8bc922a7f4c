"""`dhlive lipsync`: speech to a mouth track for other animation tools: mouth cues in Rhubarb Lip
Sync's TSV/XML/JSON formats or Moho switch data (.dat), or the per-frame parameters."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import err_console, interrupted_line, parse_fps, stdout_closed, user_errors

EXAMPLES = """
Examples:

  # Rhubarb TSV: start<TAB>shape per cue
  dhlive lipsync speech.wav -o cues.tsv

  # Rhubarb JSON (metadata + mouthCues)
  dhlive lipsync speech.wav -o cues.json

  dhlive lipsync speech.wav -o cues.xml --extended-shapes GX

  # Moho / OpenToonz switch data
  dhlive lipsync speech.wav -o mouth.dat --dat-fps 30 --dat-preston-blair

  # per-frame parameters
  dhlive lipsync speech.mp3 -o track.json --format frames --fps 50

  dhlive lipsync speech.wav -o - --format rhubarb-json | my_tool

Shapes: X A B C D E F G H (Rhubarb's letters; G, H and X are optional, see --extended-shapes).
With --format frames each frame carries time, open, spread, round, close (0..1) and its shape.
"""


def lipsync(
    input: Annotated[Path, typer.Argument(help="Speech audio: any format ffmpeg reads.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (- for stdout). The suffix picks the "
                                         "format unless --format says: .tsv .xml .json .dat cues, .csv frames.",
                                         show_default=False)],
    format: Annotated[str, typer.Option(
        "--format", "-f",
        help="auto (by suffix), rhubarb (Rhubarb's export for the suffix: .tsv .xml .json .dat), rhubarb-tsv, rhubarb-xml, rhubarb-json, "
             "moho (.dat switch data) or frames (per-frame parameters as .json, .tsv or .csv).")] = "auto",
    extended_shapes: Annotated[str, typer.Option(
        "--extended-shapes", help="Optional shapes your mouth set has (any of G, H, X; '' for the basic six).")] = "GHX",
    fps: Annotated[int, typer.Option(parser=parse_fps, help="Track frames per second, 1 to 60 (e.g. 24, 30, 60): the time step of "
                                          "cues and frames; the model's 25 Hz track is resampled to it.")] = 25,
    dat_fps: Annotated[Optional[int], typer.Option("--dat-fps", help="Frame rate of the .dat timeline (1-120; default 24).",
                                                   show_default=False)] = None,
    dat_preston_blair: Annotated[bool, typer.Option(
        "--dat-preston-blair", help="Name .dat shapes MBP etc E AI O U FV L rest instead of letters "
                                    "(OpenToonz needs these).")] = False,
    device: Annotated[str, typer.Option(help="Inference device: auto, cpu or cuda.")] = "auto",
    model: Annotated[Optional[Path], typer.Option(help="Mouth model .onnx (default: the bundled model).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Write the mouth track of a speech file: mouth cues (Rhubarb/Moho formats) or per-frame parameters."""

    def on_term(signum, frame):  # SIGTERM stops as Ctrl+C does (exit 130, nothing half-written), as in render
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGHUP)}  # a hang-up too
    try:
        with user_errors(interrupted_line(output)):
            if quiet or not err_console.is_terminal:
                n, dur, fmt = _lipsync(input, output, format, extended_shapes, fps, dat_fps, dat_preston_blair,
                                       device, model)
            else:
                # a long file takes a while (2 h of speech: about 50 s here): its progress, as render shows
                from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

                from dhlive_cli.commands.common import logs_through

                with logs_through(err_console), Progress(
                    TextColumn("[bold]analysing"), BarColumn(), TextColumn("{task.fields[done]:>8.1f} s of audio"),
                    TimeRemainingColumn(), console=err_console.console, transient=True,
                ) as progress:
                    task = progress.add_task("lipsync", total=None, done=0.0)

                    def tick(samples: int, total: int | None) -> None:
                        progress.update(task, completed=samples, total=total, done=samples / 16000)

                    n, dur, fmt = _lipsync(input, output, format, extended_shapes, fps, dat_fps, dat_preston_blair,
                                           device, model, on_progress=tick)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    where = "stdout" if str(output) == "-" else str(output)
    err_console.status("wrote", "green", f"{where}  {fmt}: {n} {'frame' if fmt == 'frames' else 'cue'}{'' if n == 1 else 's'}, "
                                          f"{dur:.2f} s analysed at {fps} fps")


lipsync.__doc__ = (lipsync.__doc__ or "") + "\n\n" + EXAMPLES


def _analyse(input: Path, fps: int, device: str, model: Optional[Path], on_progress=None):
    """(rows of (t, open, spread, round, close, raw letter), samples, model name).

    on_progress(samples read at 16 kHz, expected total or None), when given, is called about
    four times a second while the audio is read.

    The model runs at its own 25 Hz (40 ms frames); its smoothed track is then resampled to
    `fps` by mouth_rate.resample_track (linear interpolation between the model frames around
    each frame's centre at 25 fps and above, an overlap-weighted mean below), so a row at t
    describes the frame [t, t + 1/fps). There are ceil(duration x fps) rows."""
    import time

    import numpy as np

    from dhlive_cli.analysis import MouthAnalyzer
    from dhlive_cli.errors import InputError
    from dhlive_cli.inference import InferenceOptions, InferencePool
    from dhlive_cli.mouth_cues import mouth_cue
    from dhlive_cli.mouth_rate import resample_track
    from dhlive_cli.sources import FileAudioSource
    from dhlive_cli.timebase import MODEL_FRAME, Timebase

    try:
        tb = Timebase(fps)
    except ValueError as e:
        raise InputError(f"--fps {fps}: {e}") from e
    pool = InferencePool(model, InferenceOptions(device=device))
    block = 50
    analyzer = MouthAnalyzer(pool, max_push_frames=block)
    buf = np.zeros(block * MODEL_FRAME, np.float32)
    mouth = np.zeros((block + 8, 4), np.float32)
    model_rows: list[np.ndarray] = []  # a track is small: 4 floats per 40 ms

    def drain():
        while (k := analyzer.take(mouth)) > 0:
            model_rows.append(mouth[:k].copy())

    samples = 0
    next_tick = 0.0
    with FileAudioSource(input) as src:
        total = src.info.estimated_samples
        while True:
            n = src.read_into(buf)
            samples += n
            if on_progress is not None and time.monotonic() >= next_tick:
                on_progress(samples, total)
                next_tick = time.monotonic() + 0.25
            frames = -(-n // MODEL_FRAME)
            buf[n : frames * MODEL_FRAME] = 0.0
            if frames:
                analyzer.push(buf, frames)
            if n < buf.shape[0]:
                analyzer.finish()
                drain()
                break
            drain()
    if not model_rows:
        raise InputError(f"{input}: contains no audio samples")
    track = resample_track(np.concatenate(model_rows), fps, tb.frames_for_samples(samples))
    rows = []
    for i, (o, s, r, c) in enumerate(track.tolist()):
        rows.append((i / fps, o, s, r, c, mouth_cue(o, s, r, c)))
    return rows, samples, pool.name


def _lipsync(input, output, fmt_opt, extended_opt, fps, dat_fps, dat_pb, device, model,
             on_progress=None) -> tuple[int, float, str]:
    import os

    from dhlive_cli import track_formats as tf
    from dhlive_cli.errors import InputError, OutputError
    from dhlive_cli.outpaths import (check_not_input, check_output_path, create_sibling, is_special_file,
                                     remove_stale_siblings, replaced_path)
    from dhlive_cli.inference import PARAMS
    from dhlive_cli.mouth_cues import cues, parse_extended, settle_letters
    from dhlive_cli.timebase import SAMPLE_RATE

    to_stdout = str(output) == "-"
    if to_stdout and stdout_closed():
        raise InputError("-o -: standard output is closed")
    try:
        if to_stdout:
            fmt = {"auto": "rhubarb-tsv", "rhubarb": "rhubarb-tsv"}.get(fmt_opt.lower()) or tf.resolve_format(
                fmt_opt, Path("stdout.tsv" if fmt_opt.lower() == "frames" else "stdout"))
        else:
            fmt = tf.resolve_format(fmt_opt, output)
        extended = parse_extended(extended_opt)
    except ValueError as e:
        raise InputError(str(e)) from e
    if fmt != "moho":  # options of the .dat output alone are not silently dropped for another one
        for given, name in ((dat_fps is not None, "--dat-fps"), (dat_pb, "--dat-preston-blair")):
            if given:
                raise InputError(f"{name} applies to .dat (Moho) output only, not to {fmt}")
    dat_fps = 24 if dat_fps is None else dat_fps
    if not 1 <= dat_fps <= 120:
        raise InputError(f"--dat-fps {dat_fps}: use a frame rate from 1 to 120")
    out_path = None if to_stdout else check_output_path(output)
    if out_path is not None and str(input) != "-":
        check_not_input(out_path, input)  # also through a link to the input (it would be replaced)

    rows, samples, model_name = _analyse(input, fps, device, model, on_progress)
    duration = samples / SAMPLE_RATE
    letters = settle_letters([r[5] for r in rows], fps, extended)
    rows = [(*r[:5], q) for r, q in zip(rows, letters)]
    track = cues(letters, fps, duration)
    closed = "X" if "X" in extended else "A"

    def write(f):
        if fmt == "frames":
            tf.write_frames(f, ".tsv" if to_stdout else output.suffix.lower(), rows, fps, model_name, duration, PARAMS)
        elif fmt == "rhubarb-tsv":
            tf.write_rhubarb_tsv(f, track, duration, closed)
        elif fmt == "rhubarb-xml":
            tf.write_rhubarb_xml(f, track, duration, str(input))
        elif fmt == "rhubarb-json":
            tf.write_rhubarb_json(f, track, duration, str(input))
        else:
            tf.write_moho_dat(f, track, duration, dat_fps, closed, preston_blair=dat_pb)

    if to_stdout:
        write(sys.stdout)
        sys.stdout.flush()
    elif is_special_file(out_path):
        # a device or FIFO (/dev/null, /dev/stdout, a named pipe) is written in place: a file
        # renamed over it would replace the node (as root, /dev/null itself)
        with open(out_path, "w", encoding="utf-8", newline="\n") as f:
            write(f)
    else:
        final = replaced_path(out_path)  # a link to the output stays a link
        tmp, fd = create_sibling(final, "dhlive-partial")  # a new file of our own, never a planted link
        remove_stale_siblings(final, "dhlive-partial")  # of runs killed outright
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                write(f)
            tmp.replace(final)
        except OSError as e:  # a full disk: the message names the output (written through a descriptor)
            raise OutputError(f"{out_path}: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)
    return (len(rows) if fmt == "frames" else len(track)), duration, fmt
