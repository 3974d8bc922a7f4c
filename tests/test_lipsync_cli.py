"""`dhlive lipsync`: per-frame tracks and the cue formats other tools read.

The parsers below are written from the formats as Rhubarb Lip Sync's README documents them (TSV,
XML, JSON) and from the Moho switch-data layout (`MohoSwitch1`, then `FRAME NAME` lines, frames
from 1). They are strict: anything the documents do not allow fails the test.
"""

import csv
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from dhlive_cli.cli import app
from dhlive_cli.mouth_cues import LETTERS, PRESTON_BLAIR

runner = CliRunner()
TIME = re.compile(r"^\d+\.\d\d$")  # seconds with two decimals


def _times(cues, duration):
    """Shared checks of a cue list [(start, end, shape)]: from 0.00, contiguous, to the duration."""
    assert cues and cues[0][0] == 0.0
    for (s, e, v), nxt in zip(cues, cues[1:] + [None]):
        assert s < e and v in LETTERS
        if nxt:
            assert e == nxt[0]  # "the end of each mouth cue is identical with the start of the following one"
    assert cues[-1][1] == duration


def parse_rhubarb_tsv(text: str, duration: float):
    lines = text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])
    rows = []
    for ln in lines[:-1]:
        t, sep, shape = ln.partition("\t")
        assert sep and TIME.match(t) and shape in LETTERS, ln
        rows.append((float(t), shape))
    times = [t for t, _ in rows]
    assert times[0] == 0.0 and times == sorted(times) and len(set(times)) == len(times)
    # the last line: the end of the recording (truncated to 0.01 s) with a closed mouth
    assert rows[-1][0] == duration and rows[-1][1] in "XA"
    return [(t, nt, v) for (t, v), (nt, _) in zip(rows, rows[1:])]


def parse_rhubarb_xml(text: str):
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(text.encode())
    assert root.tag == "rhubarbResult" and [c.tag for c in root] == ["metadata", "mouthCues"]
    meta = root.find("metadata")
    sound, dur = meta.findtext("soundFile"), meta.findtext("duration")
    assert sound and TIME.match(dur)
    cues = []
    for el in root.find("mouthCues"):
        assert el.tag == "mouthCue" and set(el.attrib) == {"start", "end"}
        assert TIME.match(el.attrib["start"]) and TIME.match(el.attrib["end"])
        cues.append((float(el.attrib["start"]), float(el.attrib["end"]), el.text))
    _times(cues, float(dur))
    return sound, float(dur), cues


def parse_rhubarb_json(text: str):
    doc = json.loads(text)
    assert set(doc) == {"metadata", "mouthCues"}
    meta = doc["metadata"]
    assert isinstance(meta["soundFile"], str) and isinstance(meta["duration"], (int, float))
    assert re.search(r'"duration": \d+\.\d\d\b', text)  # written with its two decimals, as documented
    cues = []
    for c in doc["mouthCues"]:
        assert set(c) == {"start", "end", "value"}
        cues.append((c["start"], c["end"], c["value"]))
    _times(cues, meta["duration"])
    return meta["soundFile"], meta["duration"], cues


def parse_moho_dat(text: str, names=LETTERS):
    lines = text.split("\n")
    assert lines[0] == "MohoSwitch1" and lines[-1] == ""
    rows = []
    for ln in lines[1:-1]:
        m = re.fullmatch(r"(\d+) (\S+)", ln)
        assert m and m.group(2) in names, ln
        rows.append((int(m.group(1)), m.group(2)))
    frames = [f for f, _ in rows]
    assert frames[0] == 1 and all(b > a for a, b in zip(frames, frames[1:]))
    assert all(a[1] != b[1] for a, b in zip(rows, rows[1:]))  # a line only where the shape changes
    return rows


def _lipsync(*args):
    r = runner.invoke(app, ["lipsync", *map(str, args)])
    assert r.exit_code == 0, r.output
    return r


def test_all_four_cue_formats_parse_and_agree(tmp_path, speech_10s):
    path, audio = speech_10s
    duration = int(len(audio) / 160) / 100  # truncated to 0.01 s
    for ext in ("tsv", "xml", "json", "dat"):
        _lipsync(path, "-o", tmp_path / f"c.{ext}")
    tsv = parse_rhubarb_tsv((tmp_path / "c.tsv").read_text(), duration)
    sound, dur, xml_cues = parse_rhubarb_xml((tmp_path / "c.xml").read_text())
    sound_j, dur_j, json_cues = parse_rhubarb_json((tmp_path / "c.json").read_text())
    assert sound == sound_j == str(path) and dur == dur_j == duration
    assert tsv == xml_cues == json_cues
    assert all(a[2] != b[2] for a, b in zip(tsv, tsv[1:]))  # cues are runs: neighbours differ
    shapes = {v for _, _, v in tsv}
    assert {"X", "A", "B", "C", "H"} <= shapes, shapes  # speech with p/b/m, l/t/d/n and pauses

    # Moho: at 24 fps, each switch on the frame where its cue starts; the last closes the mouth
    dat = parse_moho_dat((tmp_path / "c.dat").read_text())
    by_frame = {}
    for s, _e, v in tsv:
        by_frame[int(round(s * 100)) * 24 // 100 + 1] = v
    expect = []
    for f in sorted(by_frame):
        if not expect or expect[-1][1] != by_frame[f]:
            expect.append((f, by_frame[f]))
    end_frame = int(duration * 100) * 24 // 100 + 1
    if expect[-1][1] != "X":  # the mouth closes on the frame after the audio ends
        expect.append((end_frame, "X"))
    assert dat == expect and dat[-1][0] <= end_frame

    # the per-frame track says the same shapes
    _lipsync(path, "-o", tmp_path / "f.json", "--format", "frames")
    frames = json.loads((tmp_path / "f.json").read_text())["frames"]
    for s, e, v in tsv:
        k = int(round(s * 25))
        assert frames[k]["cue"] == v


def test_rhubarb_alias_preston_blair_names_and_basic_shapes(tmp_path, speech_10s):
    path, audio = speech_10s
    duration = int(len(audio) / 160) / 100
    _lipsync(path, "-o", tmp_path / "a.txt", "--format", "rhubarb", "--extended-shapes", "")
    cues = parse_rhubarb_tsv((tmp_path / "a.txt").read_text(), duration)
    assert {v for _, _, v in cues} <= set("ABCDEF")  # only the basic six, closing on A
    _lipsync(path, "-o", tmp_path / "m.dat", "--dat-fps", "30", "--dat-preston-blair")
    rows = parse_moho_dat((tmp_path / "m.dat").read_text(), names=set(PRESTON_BLAIR.values()))
    assert rows[-1][1] == "rest" and rows[-1][0] <= int(duration * 100) * 30 // 100 + 1
    assert "L" in {n for _, n in rows} and "MBP" in {n for _, n in rows}
    # --format rhubarb picks Rhubarb's export for the suffix: .dat is Moho switch data (it wrote TSV)
    _lipsync(path, "-o", tmp_path / "r.dat", "--format", "rhubarb", "--dat-fps", "30", "--dat-preston-blair")
    assert (tmp_path / "r.dat").read_text() == (tmp_path / "m.dat").read_text()
    r = runner.invoke(app, ["lipsync", str(path), "-o", "-", "--format", "rhubarb-json"])
    assert r.exit_code == 0
    assert parse_rhubarb_json(r.stdout)[2] == parse_rhubarb_json(
        _read_after(path, tmp_path / "s.json"))[2]


def _read_after(path, out):
    _lipsync(path, "-o", out)
    return out.read_text()


def test_lipsync_frames_json_tsv_csv_agree_and_silence_is_rest(tmp_path, speech_10s):
    path, audio = speech_10s
    res = {}
    for ext in ("json", "tsv", "csv"):
        out = tmp_path / f"t.{ext}"
        _lipsync(path, "-o", out, "--format", "frames")
        res[ext] = out
    track = json.loads(res["json"].read_text())
    frames = track["frames"]
    assert track["fps"] == 25 and len(frames) == -(-len(audio) // 640)
    assert all(f["cue"] in LETTERS for f in frames)
    rows = list(csv.DictReader(res["csv"].open()))
    tsv = list(csv.DictReader(res["tsv"].open(), delimiter="\t"))
    assert len(rows) == len(tsv) == len(frames)
    assert abs(float(rows[10]["open"]) - frames[10]["open"]) < 1e-3
    # the 1 s pauses: mouth closed, cue X (rest); speech: open in many frames
    n = len(frames)
    rms = np.sqrt(np.mean(np.pad(audio, (0, n * 640 - len(audio))).reshape(n, 640) ** 2, axis=1))
    silent = [k for k in range(3, n) if rms[k - 3 : k + 1].max() == 0]
    assert silent and all(frames[k]["cue"] == "X" and frames[k]["open"] < 0.08 for k in silent)
    assert np.mean([frames[k]["open"] for k in range(n) if rms[k] > 0.01]) > 0.15


@pytest.mark.parametrize("args,says", [
    (["-o", "{d}/t.mp3"], ".tsv"),
    (["-o", "{d}/t.xml", "--format", "frames"], "--format frames"),
    (["-o", "{d}/t.tsv", "--format", "srt"], "--format srt"),
    (["-o", "{d}/t.tsv", "--extended-shapes", "GZ"], "'Z'"),
    (["-o", "{d}/t.dat", "--dat-fps", "0"], "--dat-fps"),
    # a reviewer's findings: Rhubarb's tab-separated cues went into a .csv, and the .dat options
    # were dropped without a word for any other output
    (["-o", "{d}/t.csv", "--format", "rhubarb"], "a .csv file gets per-frame parameters"),
    (["-o", "{d}/t.tsv", "--dat-fps", "30"], "--dat-fps applies to .dat (Moho) output only, not to rhubarb-tsv"),
    (["-o", "{d}/t.json", "--dat-preston-blair"], "--dat-preston-blair applies to .dat (Moho) output only"),
    (["-o", "{d}/t.csv", "--dat-fps", "24"], "not to frames"),
])
def test_lipsync_bad_options(tmp_path, args, says):
    src = tmp_path / "a.wav"
    sf.write(src, np.zeros(1600, np.float32), 16000)
    r = runner.invoke(app, ["lipsync", str(src), *[a.format(d=tmp_path) for a in args]])
    assert r.exit_code == 2 and r.output.startswith("error:") and says in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # nothing written


def test_lipsync_missing_input(tmp_path):
    r = runner.invoke(app, ["lipsync", str(tmp_path / "none.wav"), "-o", str(tmp_path / "t.json")])
    assert r.exit_code == 2 and r.output.startswith("error:")


def test_writers_close_the_mouth_after_speech_that_runs_to_the_end():
    import io

    from dhlive_cli import track_formats as tf
    from dhlive_cli.mouth_cues import cues

    track = cues(list("XBCCD"), 25, duration_s=0.205)  # the audio stops mid-word
    f = io.StringIO()
    tf.write_moho_dat(f, track, 0.205, 25, "X")
    assert parse_moho_dat(f.getvalue()) == [(1, "X"), (2, "B"), (3, "C"), (5, "D"), (6, "X")]
    f = io.StringIO()
    tf.write_moho_dat(f, track, 0.205, 24, "X")  # 0.04 s is on frame 1 at 24 fps: B wins it
    assert parse_moho_dat(f.getvalue()) == [(1, "B"), (2, "C"), (4, "D"), (5, "X")]
    f = io.StringIO()
    tf.write_rhubarb_tsv(f, track, 0.205, "X")
    assert parse_rhubarb_tsv(f.getvalue(), 0.20) == [(0.0, 0.04, "X"), (0.04, 0.08, "B"), (0.08, 0.16, "C"),
                                                      (0.16, 0.2, "D")]


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_a_terminal_unless_quiet(tmp_path, quiet):
    """A 2-hour file took about 50 s with nothing on the terminal (render shows a bar); lipsync
    shows its progress on a terminal now, and --quiet turns it off as render's does."""
    import os
    import pty
    import select
    import subprocess
    import sys

    import soundfile as sf

    wav = tmp_path / "long.wav"
    t = np.arange(16000 * 30) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    m, s = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "lipsync", str(wav), "-o", str(tmp_path / "c.tsv"),
                          *(["--quiet"] if quiet else [])], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=s)
    os.close(s)
    out = b""
    try:
        while select.select([m], [], [], 120)[0]:
            try:
                d = os.read(m, 65536)
            except OSError:  # the child closed its side
                break
            if not d:
                break
            out += d
    finally:
        os.close(m)
        p.wait(60)
    assert p.returncode == 0, out[-500:]
    assert (b"analysing" in out) is not quiet and b"wrote" in out, out[-500:]
