"""dhlive live against a real nginx-rtmp server, read back with ffmpeg/ffprobe."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests import rtmp_server
from tests.conftest import FFPROBE
from tests.rtmp_server import RtmpServer

pytestmark = pytest.mark.skipif(not rtmp_server.available() or FFPROBE is None,
                                reason="nginx with the rtmp module and ffprobe are needed (make setup installs them)")
SAMPLE = "presets/samples/hello.flac"


def start_live(*args):
    return subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def probe_stream(url: str, seconds: float = 4.0) -> dict:
    """ffprobe the live stream: codecs, rate, and keyframe times of the first seconds."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-rw_timeout", "10000000", "-read_intervals", f"%+{seconds}",
         "-show_streams", "-show_entries", "packet=pts_time,flags,stream_index", "-of", "json", url],
        capture_output=True, timeout=40)
    assert out.returncode == 0, out.stderr.decode()[-300:]
    return json.loads(out.stdout)


def wait_publishing(p, secs=2.5):
    time.sleep(secs)
    assert p.poll() is None, p.stderr.read().decode()


def stop(p, sig=signal.SIGINT, limit=3.0):
    t0 = time.monotonic()
    p.send_signal(sig)
    out, err = p.communicate(timeout=15)
    return time.monotonic() - t0, err.decode()


def test_stream_is_h264_aac_25fps_with_short_gop(tmp_path):
    with RtmpServer(tmp_path / "nginx") as srv:
        p = start_live("--rtmp", srv.url(), "--input", SAMPLE, "--loop")
        try:
            wait_publishing(p)
            info = probe_stream(srv.url())
        finally:
            took, err = stop(p)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert v["codec_name"] == "h264" and a["codec_name"] == "aac"
    assert v["r_frame_rate"] == "25/1"
    keys = [float(pk["pts_time"]) for pk in info["packets"]
            if pk["stream_index"] == v["index"] and "K" in pk["flags"]]
    assert len(keys) >= 2 and max(b - a for a, b in zip(keys, keys[1:])) <= 2.0 + 1e-3
    assert p.returncode == 0 and took < 3.0, err


def test_server_down_then_up_and_killed_midstream_reconnects(tmp_path):
    port = rtmp_server.free_port()
    srv = RtmpServer(tmp_path / "nginx", port)
    p = start_live("--rtmp", srv.url(), "--input", SAMPLE, "--loop", "-o", str(tmp_path / "rec.mp4"))
    try:
        time.sleep(2.0)  # server down at start: dhlive keeps running, retrying
        assert p.poll() is None
        srv.start()
        time.sleep(4.0)  # 1 s, 2 s backoff
        probe_stream(srv.url(), 1.5)  # it is publishing
        srv.kill()  # drop mid-stream
        time.sleep(1.5)
        assert p.poll() is None, "dhlive must not exit when the server goes away"
        srv.start()
        time.sleep(6.0)
        info = probe_stream(srv.url(), 1.5)
        assert any(s["codec_type"] == "video" for s in info["streams"])
        rss = psutil.Process(p.pid).memory_info().rss
    finally:
        took, err = stop(p)
        srv.kill()
    assert p.returncode == 0, err
    reconnects = int(err.strip().rsplit("reconnects ", 1)[1].split()[0])
    assert reconnects >= 2, err
    assert rss < 400 * 2**20
    # the record file kept going through the outage and is valid
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "json",
                          str(tmp_path / "rec.mp4")], capture_output=True, check=True)
    assert float(json.loads(out.stdout)["format"]["duration"]) > 15


def test_sigterm_exits_zero_fast_no_orphans(tmp_path):
    p = start_live("-o", str(tmp_path / "x.mp4"), "--input", SAMPLE)
    wait_publishing(p, 2.0)
    kids = [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
    took, err = stop(p, signal.SIGTERM)
    assert p.returncode == 0 and took < 3.0, (took, err)
    assert "Traceback" not in err
    assert not any(psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE for k in kids)
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "json",
                          str(tmp_path / "x.mp4")], capture_output=True, check=True)
    assert float(json.loads(out.stdout)["format"]["duration"]) > 1.0
