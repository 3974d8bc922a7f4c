"""Help text: our escaping of rich markup (helptext.escape) gives rich's own on every text, and
a command's start-up no longer imports rich where nothing is shown through it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rich.markup import escape as rich_escape

from dhlive_cli.commands.helptext import escape

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "presets" / "samples" / "hello.flac"


def _help_texts() -> list[str]:
    """Every docstring and option help of every command, as written in the command modules."""
    import inspect
    import typing

    import typer

    from dhlive_cli.cli import app

    texts = []

    def walk(a):
        for c in a.registered_commands:
            if c.callback is not None:
                texts.append(inspect.cleandoc(c.callback.__doc__ or ""))
                for ann in typing.get_type_hints(c.callback, include_extras=True).values():
                    for info in typing.get_args(ann)[1:]:
                        if isinstance(info, (typer.models.OptionInfo, typer.models.ArgumentInfo)) and info.help:
                            texts.append(info.help)
        for g in a.registered_groups:
            if g.typer_instance is not None:
                walk(g.typer_instance)

    walk(app)
    return texts


def test_escape_matches_rich_on_every_help_text_and_edge_cases():
    texts = _help_texts()
    assert len(texts) > 50 and any("[" in t for t in texts)
    edge = ["a [[session]] b", "HOST[:PORT],...", "[default: x]", "x [bold]y[/] z", "[#fff] [@click] [/]",
            "[a [b]", "[A]", "[red", "x\\[bold]", "ends with \\", "\\\\[i]"]
    for t in texts + edge:
        assert escape(t) == rich_escape(t), t


@pytest.mark.parametrize("argv", [["render", str(SAMPLE), "-o", "{tmp}/o.mp4", "--size", "160x90", "--quiet"],
                                  ["lipsync", str(SAMPLE), "-o", "{tmp}/c.json"]])
def test_a_command_that_shows_nothing_rich_does_not_import_rich(tmp_path, argv):
    """stderr a pipe (a service, a script): the summary line is plain text and rich, 20-60 ms of
    imports, is never loaded; on a terminal it is coloured by rich as before."""
    code = ("import atexit, runpy, sys; sys.argv = ['dhlive'] + sys.argv[1:]\n"
            "atexit.register(lambda: print('RICH' if any(m.startswith('rich') for m in sys.modules) else 'NO-RICH',"
            " file=sys.stderr))\n"
            "runpy.run_module('dhlive_cli', run_name='__main__')\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == "NO-RICH", r.stderr
    if argv[0] == "render":
        assert r.stderr.startswith("wrote ") and "25 frames" not in r.stderr  # hello.flac is longer


@pytest.mark.parametrize("command", [["render"], ["live"], ["lipsync"], ["batch"], ["monitor"], ["avatar", "prepare"]])
def test_prose_in_the_help_is_not_broken_mid_sentence(command):
    """rich keeps a paragraph's own line breaks: `avatar prepare --help` at 80 columns read
    "(a / picture turned by / a quarter or half turn ...", a short line before every source line
    break. A prose line (not an example) is never followed by a continuation after it stopped
    well short of the width."""
    import os

    r = subprocess.run([sys.executable, "-m", "dhlive_cli", *command, "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "COLUMNS": "80", "TERM": "dumb"})
    assert r.returncode == 0, r.stderr
    head = r.stdout.split("╭", 1)[0].splitlines()  # the text above the option panels
    prev = ""
    for line in (ln.rstrip() for ln in head):
        example = prev.lstrip().startswith(("dhlive ", "curl ", "my_tts", "DHLIVE_", "-d "))
        if prev and not example and len(prev) < 60 and line[:2].strip() and line.lstrip()[:1].islower():
            raise AssertionError(f"broken line: {prev!r} / {line!r}")
        prev = line


@pytest.mark.parametrize("command", [["render"], ["live"], ["lipsync"], ["batch"], ["monitor"], ["avatar", "prepare"]])
def test_examples_can_be_pasted_from_an_80_column_terminal(command):
    """`live --help` ran two examples together ("--preset low       --output-dir ...": a
    backslash-newline in the docstring is Python's line continuation) and wrapped long
    example lines and their comments at 80 columns, so a pasted line ran the rest as a
    command. Every example line fits, and one ending in a backslash continues on the next."""
    import os

    r = subprocess.run([sys.executable, "-m", "dhlive_cli", *command, "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "COLUMNS": "80", "TERM": "dumb"})
    assert r.returncode == 0, r.stderr
    head = [ln.rstrip() for ln in r.stdout.split("╭", 1)[0].splitlines()]
    examples = head[next(i for i, ln in enumerate(head) if ln.strip() == "Examples:") + 1 :]
    assert any(ln.startswith("   dhlive ") for ln in examples), examples
    for i, line in enumerate(examples):
        nxt = examples[i + 1] if i + 1 < len(examples) else ""
        if line.startswith("   "):  # an example line (prose paragraphs start at the margin)
            # rich wraps at the margin: the rest of a long example shows up there
            assert not (nxt[:1] == " " and nxt[1:2].strip()), f"wraps at 80 columns: {line!r} / {nxt!r}"
            assert "   " not in line.strip().split("'")[0], f"two lines run together: {line!r}"
        if line.endswith(" \\"):
            assert nxt.startswith("       "), f"no continuation after {line!r}"
