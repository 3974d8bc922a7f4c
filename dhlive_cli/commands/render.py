"""`dhlive render`: a speech file to a lip-synced mp4, faster than real time."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import (err_console, interrupted_line, logs_through, parse_fps, start_metrics,
                                       stdout_closed, user_errors)

EXAMPLES = """
Examples:

  dhlive render speech.wav -o out.mp4

  dhlive render talk.mp3 -o talk.mp4 --preset high --size 1080p

  dhlive render clip.flac -o clip.mp4 --avatar my_avatar/ --json

  # audio in any container on stdin
  my_tts | dhlive render - -o out.mp4

  # Matroska to stdout as it renders
  dhlive render talk.wav -o - | ffplay -

  # fragmented mp4 to stdout
  dhlive render talk.wav -o - --format mp4 > talk.mp4

  # any whole rate 1-60; the sound keeps the input's rate
  dhlive render talk.wav -o talk.mp4 --fps 30
"""


def render(
    input: Annotated[Path, typer.Argument(help="Speech audio: any format ffmpeg reads (wav, flac, mp3, ogg, ...); - for stdin.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output video file (.mp4 or .mkv); - for stdout.", show_default=False)],
    format: Annotated[Optional[str], typer.Option("--format", help="Container for -o -: mkv (default) or mp4 (fragmented).")] = None,
    avatar: Annotated[Optional[Path], typer.Option(help="Avatar directory (default: the embedded drawn avatar).")] = None,
    preset: Annotated[str, typer.Option(help="A bundled preset (low, default, high) or the path of your own .toml preset.")] = "default",
    size: Annotated[Optional[str], typer.Option(help="Output size: 360p, 720p, 1080p or WxH (overrides the preset).")] = None,
    fps: Annotated[Optional[int], typer.Option(parser=parse_fps, help="Frames per second, a whole number from 1 to 60 (24, 25, 30, 50, 60...; default from the preset).")] = None,
    device: Annotated[str, typer.Option(help="Inference and H.264 encoder device: auto (the GPU where it works), cpu or cuda.")] = "auto",
    model: Annotated[Optional[Path], typer.Option(help="Mouth model .onnx (default: the bundled model).")] = None,
    metrics: Annotated[str, typer.Option(help="Prometheus metrics on HOST:PORT (loopback; port 0 = any free port, served from the render's first second on), or off.")] = "127.0.0.1:0",
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Render speech to a lip-synced avatar video (H.264 + AAC, exact A/V sync)."""
    state: dict = {}

    def stopped() -> str:  # a stop that lands once the file has its name (interrupts held) says so
        io = state.get("io")
        if io is not None and io.complete:
            return f"interrupted: {'the video on stdout' if io.to_stdout else io.output_name} was already complete"
        return interrupted_line(output)

    with user_errors(stopped):
        result = _render(input, output, avatar, preset, size, fps, device, model, json_out, quiet, metrics, format,
                         state=state)
        if json_out:
            typer.echo(json.dumps(result))  # stdout full or gone: one error line (the video is complete)
    if not json_out:
        err_console.status(
            "wrote", "green",
            f"{'stdout' if result['output'] == '-' else result['output']}  {result['frames']} frame{'' if result['frames'] == 1 else 's'}, {result['duration_s']:.2f} s "
            f"at {result['width']}x{result['height']}@{result['fps']}  in {result['elapsed_s']:.1f} s "
            f"({result['realtime_factor']:.1f}x real time, peak {result['peak_rss_mb']:.0f} MB"
            f" + {result['peak_children_rss_mb']:.0f} MB in ffmpeg children)"
        )


render.__doc__ = (render.__doc__ or "") + "\n\n" + EXAMPLES


def _render(input, output, avatar, preset_name, size, fps, device, model, json_out, quiet, metrics=None,
            stream_format=None, state: dict | None = None) -> dict:
    """The render; state, when given, gets "io" (the RenderIO, whose `complete` says the output
    is whole where it belongs) as soon as there is one."""
    from dataclasses import replace

    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.engine import RenderSession, render_encoder
    from dhlive_cli.errors import InputError, InterruptedAfterOutput
    from dhlive_cli.hwenc import pick_video_codec
    from dhlive_cli.inference import InferenceOptions, InferencePool, check_device
    from dhlive_cli.interrupts import interrupts_held
    from dhlive_cli.outpaths import names_file_of
    from dhlive_cli.presets import load_preset, parse_size
    from dhlive_cli.render_io import RenderIO
    from dhlive_cli.timebase import Timebase

    to_stdout = str(output) == "-"
    if to_stdout and json_out:
        raise InputError("--json with -o -: stdout carries the video; drop one of them")
    if json_out and names_file_of(output, 1):
        raise InputError(f"--json with -o {output}: that is stdout, which would carry the video; drop one of them")
    if json_out and stdout_closed():
        raise InputError("--json: standard output is closed")
    if to_stdout and stdout_closed():
        raise InputError("-o -: standard output is closed")
    if stream_format is not None:
        want = stream_format.lower()
        if want not in ("mkv", "mp4"):
            raise InputError(f"--format {stream_format}: use mkv or mp4")
        if not to_stdout and output.suffix.lower() != f".{want}":
            raise InputError(f"--format {stream_format} does not match {output.name}; the file name's suffix "
                             "decides for files (--format is for -o -)")
    preset = load_preset(preset_name)
    if size:
        w, h = parse_size(size)
        preset = replace(preset, width=w, height=h)
    if fps is not None:
        try:
            Timebase(fps)
        except ValueError as e:
            raise InputError(f"--fps {fps}: {e}") from e
        preset = replace(preset, fps=fps)
    check_device(device)  # before the encoder's choice, which warns about a GPU it cannot use
    enc = render_encoder(preset, codec=pick_video_codec(device))

    # SIGTERM and SIGHUP (the terminal closed) behave like Ctrl+C: stop cleanly, remove the
    # partial file (a hang-up left it behind)
    def on_term(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGHUP)}
    metrics_server = io = session = None
    try:
        try:
            # the input and output are checked and both ffmpeg children started first: their
            # start-up (libraries, the decoder's first output) runs on the other core while this one
            # loads the model and the avatar (render_io)
            io = RenderIO(input, output, preset.width, preset.height, preset.fps, preset=preset, encoder=enc,
                          stream_format=(stream_format or "mkv").lower())
            if state is not None:
                state["io"] = io
            io.start()
            pool = InferencePool(model, InferenceOptions(device=device, sessions=preset.inference_sessions,
                                                          intra_threads=preset.inference_threads))
            av = load_avatar(avatar, preset.width, preset.height, preset.fps)
            session = RenderSession(input, output, avatar=av, pool=pool, preset=preset, io=io)
            metrics_server = start_metrics(metrics, session.stats.snapshot, "render", defer_s=1.0)
            if quiet or json_out or not err_console.is_terminal:
                result = session.run()
            else:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                with logs_through(err_console), Progress(
                    TextColumn("[bold]rendering"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                    TextColumn("{task.fields[fps]:>6.1f} fps"), TextColumn("{task.fields[mem]:>5.0f} MB"),
                    TimeRemainingColumn(), console=err_console.console, transient=True,
                ) as progress:
                    task = progress.add_task("render", total=session.stats.frames_total, fps=0.0, mem=0.0)

                    def tick(s):
                        progress.update(task, completed=s["frames_done"], total=s["frames_total"],
                                        fps=s["fps"], mem=s["rss_mb"])

                    result = session.run(on_tick=tick)
        finally:
            try:
                # a second Ctrl+C (or SIGTERM) while the children are being stopped left them running
                # and their partial file behind: it is raised once they are gone (interrupts)
                with interrupts_held():
                    if session is not None:
                        session.stop()
                    elif io is not None:
                        io.abort()
                    if metrics_server:
                        metrics_server.close()
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
    except KeyboardInterrupt as e:
        # a stop that landed once the output was complete (session.stop, the metrics server)
        if io is not None and io.complete and not isinstance(e, InterruptedAfterOutput):
            what = "the video on stdout" if io.to_stdout else io.output_name
            raise InterruptedAfterOutput(f"interrupted: {what} was already complete") from e
        raise
    return {
        "output": result.output, "frames": result.frames, "samples": result.samples,
        "duration_s": round(result.duration_s, 3), "elapsed_s": round(result.elapsed_s, 3),
        "io_elapsed_s": round(result.io_elapsed_s, 3),
        "cpu_s": round(result.cpu_s, 3),
        "realtime_factor": round(result.realtime_factor, 2), "peak_rss_mb": round(result.peak_rss_mb, 1),
        "peak_children_rss_mb": round(result.peak_children_rss_mb, 1),
        "width": result.width, "height": result.height, "fps": result.fps,
        "audio_rate": result.audio_rate, "audio_channels": result.audio_channels,
        "model": result.model, "provider": result.provider, "encoder": enc.codec,
    }
