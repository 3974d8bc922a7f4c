"""`dhlive avatar prepare`: bring your own avatar, from a photo or a short video of a presenter."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import err_console, refuse_closed_stdout, user_errors

app = typer.Typer(
    no_args_is_help=True,
    help="Bring your own avatar: turn a photo or a short video of a presenter into an avatar directory.",
)

EXAMPLES = """
Examples:

  dhlive avatar prepare anna.jpg -o avatars/anna

  dhlive avatar prepare presenter.mp4 -o avatars/tom --max-seconds 8 \\
      --loop pingpong

  dhlive render speech.wav -o out.mp4 --avatar avatars/anna

"""
# one line in the help: rich keeps a paragraph's own line breaks, which broke it mid-sentence at 80 columns
EXAMPLES += ("The input needs exactly one face, at least 64 px across, facing the camera (a picture turned by "
             "a quarter or half turn is turned upright, with a note). In a video where the presenter talks, "
             "every frame is given the resting mouth of its most closed frame, so only the speech drives the "
             "lips. Its first --max-seconds become a seamless loop: best (cut where the picture comes back "
             "closest to the start, with a short cross-fade; the default) or ping-pong (forwards then "
             "backwards). DIR/preview.png shows the mouth shapes the avatar will make.\n")


def prepare(
    input: Annotated[Path, typer.Argument(help="A photo (PNG, JPEG, BMP, TIFF, WebP) or a video ffmpeg reads.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Avatar directory to write (created with any missing parent folders; an old avatar there is replaced).", show_default=False)],
    loop: Annotated[str, typer.Option(help="Video idle loop: best (cut where the clip comes back to its start, "
                                      "cross-faded; falls back to pingpong on clips under ~2 s) or pingpong.")] = "best",
    max_seconds: Annotated[float, typer.Option(help="Use at most this many seconds of a video.")] = 10.0,
    size: Annotated[str, typer.Option(help="Largest stored frame size (the box it must fit in, either orientation): 360p, 720p, 1080p or WxH.")] = "1080p",
    fps: Annotated[int, typer.Option(help="Frame rate of the stored loop (the render frame rate).")] = 25,
    name: Annotated[Optional[str], typer.Option(help="Avatar name (default: the input file name).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Prepare an avatar directory from a photo or video: landmarks, idle loop, palette, preview."""
    if json_out:
        refuse_closed_stdout("--json")

    def on_term(signum, frame):  # SIGTERM stops as Ctrl+C does (exit 130, the unfinished folder removed)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        state: dict = {}
        # prepare writes a temporary folder, removed when stopped; a stop that lands once the
        # avatar is in place (its commit holds interrupts) says so
        with user_errors(lambda: f"interrupted: the avatar was already written to {state['written']}" if "written" in state
                         else "interrupted: unfinished output removed"):
            res = _prepare(input, output, loop, max_seconds, size, fps, name, quiet or json_out, state)
    finally:
        signal.signal(signal.SIGTERM, old)
    from rich.markup import escape

    for w in res["warnings"]:
        err_console.print(f"[yellow]warning:[/] {escape(w)}", markup=True)  # names in it are text
    if json_out:
        typer.echo(json.dumps(res))
    else:
        what = "still photo" if res["kind"] == "photo" else f"{res['frames']}-frame {res['loop']} loop ({res['seconds']:.1f} s)"
        err_console.status("wrote", "green", f"{res['dir']}  {res['kind']} avatar '{res['name']}', {res['width']}x{res['height']}, "
                                             f"{what}; preview: {Path(res['dir']) / 'preview.png'}")


prepare.__doc__ = (prepare.__doc__ or "") + "\n\n" + EXAMPLES
app.command("prepare", no_args_is_help=True)(prepare)


def _prepare(input, output, loop, max_seconds, size, fps, name, quiet, state: dict | None = None) -> dict:
    from dataclasses import asdict

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dhlive_cli.avatar.prepare import PrepareOptions, prepare_avatar
    from dhlive_cli.errors import InputError
    from dhlive_cli.presets import parse_size
    from dhlive_cli.timebase import Timebase

    box = parse_size(size)
    try:
        Timebase(fps)
    except ValueError as e:
        raise InputError(f"--fps {fps}: {e}") from e
    opts = PrepareOptions(loop=loop, max_seconds=max_seconds, size=box, fps=fps, name=name)
    if quiet or not err_console.is_terminal:
        res = prepare_avatar(input, output, opts, state=state)
    else:
        with Progress(TextColumn("[bold]{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                      TimeRemainingColumn(), console=err_console.console, transient=True) as progress:
            task = progress.add_task("reading", total=None)

            def tick(done, total, what):
                progress.update(task, completed=done, total=total, description=what)

            res = prepare_avatar(input, output, opts, progress=tick, state=state)
    return asdict(res)
