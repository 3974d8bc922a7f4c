"""Help text as written: literal brackets, readable metavars, global options anywhere.

Typer renders help through rich markup, which takes `[[session]]` or `[default: x]` in our
own text for markup tags and drops them. Rather than asking every command module to escape its
strings, `tidy_help(app)` escapes the docstrings and option help of every registered command once
at start-up (the resolved annotations are stored back on the function, so every later `--help`
sees the escaped text),
and gives each option a metavar a person can read (FILE, DIR, URL, HOST:PORT, MS, SECONDS, ...)
unless its module set one. Flags get none: `--json` takes no value.

`hoist_global_options(argv)` lets `-v` follow the subcommand (`dhlive render x.wav -o y.mp4 -v`).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from pathlib import Path

import typer

# In rich markup (what Typer renders help through) "[" opens a tag when a lower-case letter,
# "#", "/" or "@" follows and a "]" comes before the next "["; a backslash in front makes it
# text, and backslashes right before such a "[" are doubled (each then stands for itself).
# Our help is escaped by that rule here rather than with rich.markup.escape, whose import
# (rich.text, rich.style: 15-20 ms) was on the start-up of every command, help or not;
# tests/test_cli_help.py checks both give the same on every help text and on edge cases.
_TAG_OPENING = re.compile(r"(\\*)(\[[a-z#/@][^[]*?\])")


def escape(text: str) -> str:
    """`text` with each "[" that rich would read as opening a markup tag made literal (a
    backslash put before it, backslashes already there doubled), and a lone backslash at the
    very end doubled, so the text shows as written (rich's markup escape rule)."""
    out = _TAG_OPENING.sub(lambda m: m.group(1) * 2 + "\\" + m.group(2), text)
    if out.endswith("\\") and not out.endswith("\\\\"):
        out += "\\"
    return out


# option/argument name -> metavar, for the names the commands use
NAMED_METAVARS = {
    "rtmp": "URL",
    "listen": "HOST:PORT",
    "metrics": "HOST:PORT",
    "size": "SIZE",
    "preset": "NAME|FILE",
    "device": "auto|cpu|cuda",
    "loop": "pingpong|best",
    "token": "TOKEN",
    "name": "NAME",
    "input": "FILE",
    "avatar": "DIR",
    "fps": "FPS",
    "pid": "PID",
}
TYPE_METAVARS = {int: "N", float: "NUMBER", str: "TEXT", Path: "FILE"}
GLOBAL_FLAGS = ("-v", "--verbose")


def _base_type(annotation):
    """Annotated[Optional[list[X]], ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else str
        elif origin in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def _metavar(name: str, annotation) -> str:
    base = _base_type(annotation)
    if base is bool:
        return ""
    if name.endswith("_ms"):
        return "MS"
    if name in ("duration", "interval", "window", "max_seconds"):
        return "SECONDS"
    if name in NAMED_METAVARS:
        return NAMED_METAVARS[name]
    if base is Path and "dir" in name:
        return "DIR"
    return TYPE_METAVARS.get(base, "VALUE")


def _tidy_callback(callback) -> None:
    if callback.__doc__:
        callback.__doc__ = escape(inspect.cleandoc(callback.__doc__))
    hints = typing.get_type_hints(callback, include_extras=True)
    for name, annotation in hints.items():
        if typing.get_origin(annotation) is not typing.Annotated:
            continue
        for info in typing.get_args(annotation)[1:]:
            if not isinstance(info, (typer.models.OptionInfo, typer.models.ArgumentInfo)):
                continue
            if getattr(info, "_dhlive_tidy", False):
                continue
            if info.help:
                info.help = escape(info.help)
            if info.metavar is None:
                metavar = _metavar(name, annotation)
                if metavar == "FILE" and (info.help or "").lower().startswith(("avatar directory", "a folder")):
                    metavar = "DIR"
                if isinstance(info, typer.models.ArgumentInfo):
                    metavar = metavar or name.upper()
                info.metavar = metavar
            info._dhlive_tidy = True
    # The command modules use postponed annotations, so every typing.get_type_hints call (Typer
    # makes one per --help) would evaluate typer.Option(...) afresh: keep the tidied objects.
    callback.__annotations__ = hints


def tidy_help(app: typer.Typer) -> None:
    """Escape and annotate the help of every command in `app` and its sub-apps, in place."""
    for command in app.registered_commands:
        if command.callback is not None:
            _tidy_callback(command.callback)
        if command.help:
            command.help = escape(command.help)
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is not None:
            if sub.info.help and isinstance(sub.info.help, str):
                sub.info.help = escape(sub.info.help)
            tidy_help(sub)


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move -v/--verbose written after the subcommand to the front, where the root app reads it.

    Tokens after a bare `--` are left alone (they are operands, not options).
    """
    head, tail = argv, []
    if "--" in argv:
        i = argv.index("--")
        head, tail = argv[:i], argv[i:]
    flags = [a for a in head if a in GLOBAL_FLAGS]
    if not flags:
        return argv
    return flags[:1] + [a for a in head if a not in GLOBAL_FLAGS] + tail
