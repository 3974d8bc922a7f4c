"""dhlive live at other frame rates and with frame-exact --duration: real ffmpeg recordings read
back with ffprobe. No timing bound: the counts are in frames of the session clock."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dhlive_cli.live.session import video_delay
from dhlive_cli.mouth_rate import last_model_frame
from dhlive_cli.timebase import MODEL_FRAME, SAMPLE_RATE
from tests.conftest import FFPROBE, needs_ffprobe
from tests.loadcheck import Starvation

SAMPLE = "presets/samples/hello.flac"


def live(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low",
                           "--size", "320x240", "--metrics", "off", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def live_counted(*args, fps: int = 25):
    """Run live; returns (process result, frames it dropped, drops the machine's load explains).

    A recording drops a frame only when its encoder falls half a second behind: on a quiet
    machine never, on a loaded one at most one per frame time dhlive's threads (ffmpeg's
    included) waited for a CPU (tests/loadcheck.py)."""
    cmd = [sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low", "--size", "320x240",
           "--metrics", "off", *map(str, args)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Starvation(pid=p.pid, children=True, poll_s=0.05) as starved:
        out, err = p.communicate(timeout=300)
    p = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    m = re.search(r"dropped (\d+)", err)
    assert m, err
    return p, int(m.group(1)), starved.allowed(0, fps)


def probe(path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json",
                          str(path)], capture_output=True, check=True)
    return json.loads(out.stdout)


def first_video_pts(path, n=3) -> list[float]:
    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    return sorted(float(x) for x in out.split())[:n]


@pytest.mark.parametrize("fps", [1, 24, 25, 30, 50, 60])
def test_video_delay_covers_every_frames_mouth(fps):
    """At tick f + D the model frames frame f needs (and their look-ahead) have been pulled."""
    lag = 2
    d = video_delay(fps, lag)
    if fps == 25:
        assert d == lag
    for f in range(5 * fps):
        pulled = ((f + d + 1) * SAMPLE_RATE // fps) // MODEL_FRAME
        assert pulled >= last_model_frame(f, fps) + 1 + lag


@needs_ffprobe
@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
def test_duration_10_gives_250_frames_and_10_seconds(tmp_path, suffix):
    rec = tmp_path / f"rec.{suffix}"
    p, dropped, allowed = live_counted("--input", SAMPLE, "--loop", "-o", rec, "--duration", 10)
    assert p.returncode == 0, p.stderr
    assert dropped <= allowed, (dropped, allowed, p.stderr)
    info = probe(rec)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert int(v["nb_read_frames"]) == 250 - dropped, p.stderr  # nothing lost at the end either
    want = (250 - dropped) / 25
    assert abs(float(info["format"]["duration"]) - want) <= 0.04, info["format"]["duration"]
    if "duration" in v:  # mp4 has stream durations, Matroska only the container's
        assert abs(float(v["duration"]) - want) <= 0.04 and abs(float(a["duration"]) - want) <= 0.04
    assert (int(a["sample_rate"]), int(a["channels"])) == (48000, 2)
    assert "stopped: 250 frames" in p.stderr, p.stderr
    pts = first_video_pts(rec)
    assert np.allclose(np.diff(pts), 0.04, atol=0.002), f"first frames at {pts}: the first lasts as long as the rest"


@needs_ffprobe
def test_duration_1_gives_25_frames(tmp_path):
    rec = tmp_path / "rec.mp4"
    p, dropped, allowed = live_counted("--input", SAMPLE, "-o", rec, "--duration", 1)
    assert p.returncode == 0, p.stderr
    assert dropped <= allowed and "stopped: 25 frames" in p.stderr, p.stderr
    v = next(s for s in probe(rec)["streams"] if s["codec_type"] == "video")
    assert int(v["nb_read_frames"]) == 25 - dropped


@needs_ffprobe
@pytest.mark.parametrize("fps", [30, 60])
def test_live_at_30_and_60_fps_records_that_rate_exactly(tmp_path, fps):
    rec = tmp_path / "rec.mp4"
    p, dropped, allowed = live_counted("--input", SAMPLE, "--loop", "-o", rec, "--duration", 3, "--fps", fps, fps=fps)
    assert p.returncode == 0, p.stderr
    assert dropped <= allowed and f"stopped: {3 * fps} frames" in p.stderr, (dropped, allowed, p.stderr)
    info = probe(rec)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert v["r_frame_rate"] == f"{fps}/1" and int(v["nb_read_frames"]) == 3 * fps - dropped, p.stderr
    assert abs(float(v["duration"]) - (3 * fps - dropped) / fps) < 1 / fps
    pts = first_video_pts(rec)
    assert np.allclose(np.diff(pts), 1 / fps, atol=0.002), pts


@pytest.mark.parametrize("fps", ["0", "61"])
def test_live_refuses_other_fps_with_one_line(tmp_path, fps):
    p = live("--input", SAMPLE, "-o", tmp_path / "r.mp4", "--fps", fps, timeout=60)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "1 to 60" in lines[0], lines
    assert not (tmp_path / "r.mp4").exists()


def test_live_refuses_a_second_output_with_one_line(tmp_path):
    """-o twice used to keep the last file only, silently; a session records to one file."""
    p = live("--input", SAMPLE, "-o", tmp_path / "a.mp4", "-o", tmp_path / "b.mkv", "--duration", "1", timeout=60)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "--output" in lines[0], lines
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mkv").exists()
