"""The `dhlive` command line: one Typer app, one module per subcommand."""

from __future__ import annotations

import logging
import sys

import typer

from dhlive_cli import __version__
from dhlive_cli.commands import avatar as avatar_cmd
from dhlive_cli.commands import lipsync as lipsync_cmd
from dhlive_cli.commands import live as live_cmd
from dhlive_cli.commands import monitor as monitor_cmd
from dhlive_cli.commands import render as render_cmd

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Speech to a lip-synced talking-avatar video: batch render, live stream, monitor.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("render", no_args_is_help=True)(render_cmd.render)
app.command("lipsync", no_args_is_help=True)(lipsync_cmd.lipsync)
app.command("live", no_args_is_help=True)(live_cmd.live)
app.command("monitor", no_args_is_help=True)(monitor_cmd.monitor)
app.add_typer(avatar_cmd.app, name="avatar")


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


def main() -> None:
    app()
