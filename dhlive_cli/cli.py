"""The `dhlive` command line: one Typer app, one module per subcommand."""

from __future__ import annotations

import logging
import signal
import sys

import typer

from dhlive_cli import __version__
from dhlive_cli.commands import avatar as avatar_cmd
from dhlive_cli.commands import batch as batch_cmd
from dhlive_cli.commands import lipsync as lipsync_cmd
from dhlive_cli.commands import live as live_cmd
from dhlive_cli.commands import monitor as monitor_cmd
from dhlive_cli.commands import render as render_cmd
from dhlive_cli.commands.common import ClosedStdout, escape_line, os_error_line, print_error
from dhlive_cli.commands.helptext import hoist_global_options, tidy_help

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Speech to a lip-synced talking-avatar video: batch render, live stream, monitor.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("render", no_args_is_help=True)(render_cmd.render)
app.command("batch", no_args_is_help=True)(batch_cmd.batch)
app.command("lipsync", no_args_is_help=True)(lipsync_cmd.lipsync)
app.command("live", no_args_is_help=True)(live_cmd.live)
app.command("monitor", no_args_is_help=True)(monitor_cmd.monitor)
app.add_typer(avatar_cmd.app, name="avatar")
tidy_help(app)


def _version(value: bool):
    if value:
        typer.echo(f"dhlive {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log engine details to stderr."),
):
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="dhlive: %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# Typer's click (vendored in new Typer, a dependency in old) is reached through a public class
# so that both work: BadParameter -> UsageError -> ClickException.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main() -> None:
    """Run the app; a mistake on the command line is one `error:` line and exit 2, like every
    other input error, instead of Typer's usage box (help is still shown for a bare command)."""
    # Ctrl+C / `kill -INT` stops every command cleanly (exit 130, partial output removed), also
    # when dhlive was started with SIGINT ignored: a shell script's background job (`dhlive render
    # ... &`) inherits SIG_IGN, and Python then never raises KeyboardInterrupt. ffmpeg does the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.stdout is None:  # started with stdout closed: what is asked for there fails, not vanishes
        sys.stdout = ClosedStdout()
    try:
        code = app(args=hoist_global_options(sys.argv[1:]), prog_name="dhlive", standalone_mode=False)
    except _CLICK_ERROR as e:
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":
            # the help is the message (Typer's rich help is printed already, and the message empty)
            if e.format_message().strip():
                typer.echo(e.format_message())
            sys.exit(e.exit_code)
        hint = f" (see '{ctx.command_path} -h')" if isinstance(e, _USAGE_ERROR) and ctx is not None else ""
        message = " ".join(e.format_message().split()).rstrip(".")
        print_error(escape_line(f"{message[:1].lower()}{message[1:]}{hint}"))
        sys.exit(e.exit_code)
    except typer.Abort:
        print_error("aborted")
        sys.exit(1)
    # writing help or the version to a full disk or a closed stdout (commands catch their own); a
    # reader that went away (`dhlive --help | head -1`) is Click's: exit 1 without a word, as
    # tools whose reader quit early do
    except OSError as e:
        print_error(escape_line(os_error_line(e)))
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
