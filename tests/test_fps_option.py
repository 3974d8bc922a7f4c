"""--fps as users type it: whole rates 1-60 work; NTSC's fractional rates (29.97, 23.976,
59.94, 30000/1001) are refused with one line naming the whole rate to use; nonsense likewise."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from dhlive_cli.commands.common import parse_fps


@pytest.mark.parametrize("text,fps", [("24", 24), ("25", 25), ("30", 30), (" 60", 60), ("30.0", 30), ("60/1", 60),
                                      ("1", 1)])
def test_whole_rates_are_taken(text, fps):
    assert parse_fps(text) == fps


@pytest.mark.parametrize("text,use", [("29.97", "30"), ("23.976", "24"), ("59.94", "60"), ("30000/1001", "30"),
                                      ("24000/1001", "24")])
def test_ntsc_rates_name_the_whole_rate_to_use(text, use):
    with pytest.raises(typer.BadParameter) as e:
        parse_fps(text)
    assert "NTSC rate" in str(e.value) and str(e.value).endswith(f"use {use}"), str(e.value)


@pytest.mark.parametrize("text", ["0", "61", "-1", "24.5", "abc", "", "1/0", "nan", "inf"])
def test_other_values_are_refused_with_the_range(text):
    with pytest.raises(typer.BadParameter) as e:
        parse_fps(text)
    assert "1 to 60" in str(e.value) and "NTSC" not in str(e.value)


@pytest.mark.parametrize("command", [["render", "x.wav", "-o", "x.mp4"], ["lipsync", "x.wav", "-o", "x.tsv"],
                                     ["live", "--input", "x.wav", "-o", "x.mp4"]])
def test_each_command_refuses_29_97_in_one_line(tmp_path, command):
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", *command, "--fps", "29.97"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "use 30" in lines[0], p.stderr
    assert not list(tmp_path.iterdir())  # nothing written
