"""The `dhlive` program's entry point: Ctrl+C while the command line is still loading.

Loading the CLI (Typer, rich and every subcommand's module) takes 0.2-0.3 s; a Ctrl+C in that
time was a Python traceback (and a death by SIGINT) instead of the one line and exit status 130
every command gives once it runs. Nothing has been started or written then, so there is
nothing to clean up. What runs before this module (the interpreter's own start-up) cannot be
covered from here.
"""

import sys


def main() -> None:
    """Load the CLI and run it (cli.main); exit 130 with one line when interrupted while loading."""
    try:
        from dhlive_cli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run()
