import csv
import json

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from dhlive_cli.cli import app
from dhlive_cli.mouth_cues import LETTERS

runner = CliRunner()


def test_lipsync_json_tsv_csv_agree_and_silence_is_rest(tmp_path, speech_10s):
    path, audio = speech_10s
    res = {}
    for ext in ("json", "tsv", "csv"):
        out = tmp_path / f"t.{ext}"
        r = runner.invoke(app, ["lipsync", str(path), "-o", str(out)])
        assert r.exit_code == 0, r.output
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


def test_lipsync_bad_inputs(tmp_path):
    src = tmp_path / "a.wav"
    sf.write(src, np.zeros(1600, np.float32), 16000)
    r = runner.invoke(app, ["lipsync", str(src), "-o", str(tmp_path / "t.xml")])
    assert r.exit_code == 2 and "json" in r.output
    r = runner.invoke(app, ["lipsync", str(tmp_path / "none.wav"), "-o", str(tmp_path / "t.json")])
    assert r.exit_code == 2 and r.output.startswith("error:")
