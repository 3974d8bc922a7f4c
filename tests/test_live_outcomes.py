"""What a timed `dhlive live` run delivers and says: `-o -` streams to stdout (not to a file or
nowhere), and a target that was down the whole run makes the run fail with one `error:` line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import rtmp_server
from tests.conftest import FFPROBE
from tests.test_live import SAMPLE

pytestmark = pytest.mark.skipif(FFPROBE is None, reason="ffprobe is needed (make setup installs ffmpeg)")


def _live(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low", *args],
                          cwd=cwd, capture_output=True, timeout=300)  # a bound for a hang, not a speed figure


def _probe(path: Path) -> list[dict]:
    out = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,codec_name,r_frame_rate,sample_rate,channels,nb_read_frames",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"]


def test_output_dash_streams_matroska_to_stdout_at_the_asked_fps(tmp_path):
    p = _live(tmp_path, "--input", str(Path(SAMPLE).resolve()), "--fps", "50", "--duration", "2", "-o", "-")
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert not (tmp_path / "-").exists()  # not a file named "-"
    assert p.stdout[:4] == b"\x1a\x45\xdf\xa3", p.stdout[:16]  # the EBML magic of a Matroska file
    (tmp_path / "out.mkv").write_bytes(p.stdout)
    streams = _probe(tmp_path / "out.mkv")
    v = next(s for s in streams if s["codec_type"] == "video")
    a = next(s for s in streams if s["codec_type"] == "audio")
    assert (v["codec_name"], v["r_frame_rate"], int(v["nb_read_frames"])) == ("h264", "50/1", 100), v
    assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == ("aac", 48000, 2), a


def test_a_timed_run_whose_rtmp_target_never_went_on_air_fails_and_keeps_the_recording(tmp_path):
    port = rtmp_server.free_port()  # nothing listens there: every connect is refused
    rec = tmp_path / "rec.mkv"
    p = _live(tmp_path, "--input", str(Path(SAMPLE).resolve()), "--duration", "2",
              "--rtmp", f"rtmp://127.0.0.1:{port}/live/keyDEAD7", "-o", str(rec))
    err = p.stderr.decode()
    assert p.returncode == 1, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "never went on air" in errors[0] and f":{port}/live/****" in errors[0], err
    assert "keyDEAD7" not in err and "Traceback" not in err, err
    # the recording beside it is whole: 2 s at 25 fps
    v = next(s for s in _probe(rec) if s["codec_type"] == "video")
    assert int(v["nb_read_frames"]) == 50, v


def test_a_timed_recording_only_run_still_succeeds(tmp_path):
    rec = tmp_path / "rec.mp4"
    p = _live(tmp_path, "--input", str(Path(SAMPLE).resolve()), "--duration", "1", "-o", str(rec))
    assert p.returncode == 0, p.stderr.decode()
    assert "never went on air" not in p.stderr.decode()
