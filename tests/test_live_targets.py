"""dhlive live with several RTMP targets on real nginx-rtmp servers: each target on its own
(one dying leaves the others streaming), and a publish the server refuses (nginx-rtmp's
on_publish answered 403 by a small HTTP server of the test) named as such."""

from __future__ import annotations

import http.server
import threading
import urllib.request

import pytest

from tests import rtmp_server
from tests.conftest import FFPROBE
from tests.loadcheck import Starvation
from tests.rtmp_server import RtmpServer
from tests.test_live import SAMPLE, _wait_status, probe_stream, start_live, stop

pytestmark = pytest.mark.skipif(not rtmp_server.available() or FFPROBE is None,
                                reason="nginx with the rtmp module and ffprobe are needed (make setup installs them)")


class PublishHook:
    """An on_publish endpoint for nginx-rtmp that answers every publish with `status` and
    remembers the stream names it was asked about."""

    def __init__(self, status: int = 403):
        hook = self
        self.asked: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0)).decode()
                hook.asked.extend(v for k, _, v in (p.partition("=") for p in body.split("&")) if k == "name")
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/publish"
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-publish-hook", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _outs(st: dict) -> list[dict]:
    return st["outputs"]


def test_two_targets_both_receive_and_a_dead_one_leaves_the_other_streaming(tmp_path):
    a, b = RtmpServer(tmp_path / "a").start(), RtmpServer(tmp_path / "b")
    b.start()
    api = rtmp_server.free_port()
    p = start_live("--rtmp", a.url("keyAAAA1"), "--rtmp", b.url("keyBBBB2"), "--input", SAMPLE, "--loop",
                   "--listen", f"127.0.0.1:{api}")
    try:
        _wait_status(p, api, "both targets on air", lambda st: all(o["connected"] for o in _outs(st)))
        for url in (a.url("keyAAAA1"), b.url("keyBBBB2")):
            v = next(s for s in probe_stream(url, 1.5)["streams"] if s["codec_type"] == "video")
            assert v["codec_name"] == "h264"
        b.kill()
        st = _wait_status(p, api, "the loss of b", lambda st: not _outs(st)[1]["connected"])
        late0, a0 = st["late_frames"], dict(_outs(st)[0])
        with Starvation(pid=p.pid, children=True, poll_s=0.05) as starved:
            # while b is down and being retried, a is still received, from its own encoder
            info = probe_stream(a.url("keyAAAA1"), 2.0)
            st = _wait_status(p, api, "b retried", lambda st: _outs(st)[1]["reconnects"] >= 2)
        a1 = _outs(st)[0]
        assert any(s["codec_type"] == "video" for s in info["streams"])
        assert a1["connected"] and a1["reconnects"] == a0["reconnects"] and not a1["publish_refusals"], a1
        assert a1["frames_written"] > a0["frames_written"] + 25, (a0, a1)
        # b's outage cost the session no frame beyond what CPU starvation explains
        print(f"b down: a +{a1['frames_written'] - a0['frames_written']} frames written, a reconnects "
              f"{a1['reconnects']}, b reconnects {_outs(st)[1]['reconnects']}, late frames +{st['late_frames'] - late0} "
              f"(allowed {starved.allowed(0)} for {starved.seconds:.2f} s of CPU starvation)")
        assert st["late_frames"] - late0 <= starved.allowed(0), (st["late_frames"], late0, starved.seconds)
        b.start()  # and b comes back by itself, with its backoff
        _wait_status(p, api, "b back on air", lambda st: _outs(st)[1]["connected"])
        probe_stream(b.url("keyBBBB2"), 1.5)
    finally:
        _, err = stop(p)
        a.kill()
        b.kill()
    assert p.returncode == 0, err
    assert "keyAAAA1" not in err and "keyBBBB2" not in err, err


def test_refused_publish_is_named_in_log_status_and_metrics_and_a_timed_run_fails(tmp_path):
    api = rtmp_server.free_port()
    with PublishHook(403) as hook, RtmpServer(tmp_path / "ok") as ok, \
            RtmpServer(tmp_path / "no", on_publish=hook.url) as no:
        p = start_live("--rtmp", ok.url("goodKEY1"), "--rtmp", no.url("badKEY99"), "--input", SAMPLE, "--loop",
                       "--listen", f"127.0.0.1:{api}", "--duration", "30")
        try:
            st = _wait_status(p, api, "the refusal and the other target on air",
                              lambda st: _outs(st)[1]["refused"] and _outs(st)[0]["connected"])
            refused = _outs(st)[1]
            assert refused["target"] == f"rtmp://127.0.0.1:{no.port}/live/****"
            assert refused["publish_refusals"] >= 1 and not refused["connected"]
            assert "refused" in refused["error"] and "badKEY99" not in refused["error"]
            assert not _outs(st)[0]["refused"] and _outs(st)[0]["publish_refusals"] == 0
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=5).read().decode()
            line = next(ln for ln in metrics.splitlines() if ln.startswith('dhlive_output_publish_refused_total{output="1"}'))
            assert float(line.rsplit(" ", 1)[1]) >= 1
            # the accepted target streams on meanwhile
            assert any(s["codec_type"] == "video" for s in probe_stream(ok.url("goodKEY1"), 1.5)["streams"])
            err = p.communicate(timeout=180)[1].decode()
        finally:
            if p.poll() is None:
                stop(p)
    assert "badKEY99" in hook.asked  # nginx did ask the hook, which refused
    assert p.returncode == 1, err
    lines = err.strip().splitlines()
    # one warning when the refusals start (not one per retry), and the run's error line at the end
    warn = [ln for ln in lines if "publish refused:" in ln]
    assert len(warn) == 1 and f"rtmp://127.0.0.1:{no.port}/live/****" in warn[0], err
    assert lines[-1].startswith("error: ") and "publish refused" in lines[-1] and str(no.port) in lines[-1], err
    assert "badKEY99" not in err and "goodKEY1" not in err, err


def test_a_key_already_publishing_is_a_refusal_named_by_the_server(tmp_path):
    import subprocess

    from dhlive_cli.ffmpeg_bin import ffmpeg_path

    with RtmpServer(tmp_path / "srv") as srv:
        # someone else publishes to the key first, for longer than our run
        other = subprocess.Popen([ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                                  "-i", "testsrc=s=160x120:r=25", "-t", "300", "-c:v", "libx264", "-preset", "ultrafast",
                                  "-f", "flv", srv.url("takenKEY7")], stdin=subprocess.DEVNULL)
        try:
            probe_stream(srv.url("takenKEY7"), 0.5)  # it is on air
            p = start_live("--rtmp", srv.url("takenKEY7"), "-o", str(tmp_path / "rec.mkv"), "--input", SAMPLE,
                           "--duration", "3")
            err = p.communicate(timeout=180)[1].decode()
        finally:
            other.kill()
            other.wait()
    assert p.returncode == 1, err
    assert "Already publishing" in err.strip().splitlines()[-1] and "takenKEY7" not in err, err


def _video_kbps(path) -> float:
    import json
    import subprocess

    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v", "-show_entries", "packet=size,pts_time",
                          "-of", "json", str(path)], capture_output=True, check=True).stdout
    packets = json.loads(out)["packets"]
    t = [float(p["pts_time"]) for p in packets]
    return sum(int(p["size"]) for p in packets) * 8 / (max(t) - min(t) + 0.04) / 1000


def test_maxrate_caps_the_rtmp_stream_and_not_the_recording(tmp_path):
    import subprocess

    from dhlive_cli.ffmpeg_bin import ffmpeg_path
    from tests.test_live import wait_publishing

    with RtmpServer(tmp_path / "srv") as srv:
        p = start_live("--rtmp", srv.url(), "-o", str(tmp_path / "rec.mkv"), "--input", SAMPLE, "--loop",
                       "--size", "640x360", "--maxrate", "30k")
        try:
            wait_publishing(p, 1.0)
            subprocess.run([ffmpeg_path(), "-v", "error", "-rw_timeout", "10000000", "-i", srv.url(), "-t", "6",
                            "-c", "copy", str(tmp_path / "cap.flv")], check=True, timeout=120)
        finally:
            _, err = stop(p)
    assert p.returncode == 0, err
    stream, recording = _video_kbps(tmp_path / "cap.flv"), _video_kbps(tmp_path / "rec.mkv")
    print(f"--maxrate 30k: stream {stream:.1f} kbit/s, recording (not capped) {recording:.1f} kbit/s")
    assert stream <= 30 * 1.2, stream  # x264's VBV keeps to the cap over its one-second buffer
    assert recording >= 3 * 30, recording  # the same pictures at the preset's CRF: the cap did the work


def test_srt_target_receives_h264_and_aac(tmp_path):
    import json
    import subprocess

    from dhlive_cli.ffmpeg_bin import ffmpeg_path

    port = rtmp_server.free_port()
    got = tmp_path / "srt.ts"
    # ffmpeg as the SRT listener (what an SRT ingest server is to dhlive, the caller)
    listener = subprocess.Popen([ffmpeg_path(), "-v", "error", "-f", "mpegts", "-i",
                                 f"srt://127.0.0.1:{port}?mode=listener", "-t", "3", "-c", "copy", str(got)],
                                stdin=subprocess.DEVNULL)
    try:
        p = start_live("--srt", f"srt://127.0.0.1:{port}?streamid=srtSECRET5", "--input", SAMPLE, "--loop",
                       "--duration", "8")
        err = p.communicate(timeout=180)[1].decode()
        listener.wait(60)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert p.returncode == 0, err
    assert listener.returncode == 0
    info = json.loads(subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-of", "json", str(got)],
                                     capture_output=True, check=True).stdout)
    kinds = {s["codec_type"]: s for s in info["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["video"]["r_frame_rate"] == "25/1"
    assert kinds["audio"]["codec_name"] == "aac"
    assert "srtSECRET5" not in err, err  # the listener hung up after 3 s: the retries name it redacted


def test_a_server_that_names_the_key_in_its_refusal_does_not_get_it_into_log_status_or_metrics(tmp_path):
    """Found attacking issue 16: the refusal's text is the server's own ("Server error: ..."),
    and it went to the log line, the status `error` and the final error line unredacted, so a
    server echoing the stream key put it there. A small RTMP server (tests/echo_rtmp.py) that
    answers every publish "stream key KEY is not allowed here" checks it."""
    from tests.echo_rtmp import EchoKeyRtmpServer

    api = rtmp_server.free_port()
    with EchoKeyRtmpServer() as echo:
        # with arguments: the server names the key alone, which is a secret too
        p = start_live("--rtmp", echo.url("echoKEY77?auth=tok12345"), "--input", SAMPLE, "--loop",
                       "--listen", f"127.0.0.1:{api}", "--duration", "20")
        try:
            st = _wait_status(p, api, "the refusal", lambda st: _outs(st)[0]["refused"])
            out = _outs(st)[0]
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=5).read().decode()
            err = p.communicate(timeout=180)[1].decode()
        finally:
            if p.poll() is None:
                stop(p)
    assert "echoKEY77?auth=tok12345" in echo.keys  # the server was asked for the key and echoed its name back
    assert "not allowed here" in out["error"] and "echoKEY77" not in out["error"], out
    assert "echoKEY77" not in metrics
    assert "publish refused:" in err and "not allowed here" in err, err
    assert "echoKEY77" not in err and "tok12345" not in err, err
