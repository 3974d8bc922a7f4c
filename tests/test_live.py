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
from tests.loadcheck import Starvation
from tests.rtmp_server import RtmpServer

pytestmark = pytest.mark.skipif(not rtmp_server.available() or FFPROBE is None,
                                reason="nginx with the rtmp module and ffprobe are needed (make setup installs them)")
SAMPLE = "presets/samples/hello.flac"


def start_live(*args):
    return subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def probe_stream(url: str, seconds: float = 4.0, within: float = 120.0) -> dict:
    """ffprobe the live stream: codecs, rate, and keyframe times of the first seconds. Tries
    again until the stream is there (`within` seconds): on a busy machine dhlive may start
    publishing later than a fixed wait would guess."""
    deadline = time.monotonic() + within
    while True:
        out = subprocess.run(
            [FFPROBE, "-v", "error", "-rw_timeout", "10000000", "-read_intervals", f"%+{seconds}",
             "-show_streams", "-show_entries", "packet=pts_time,flags,stream_index", "-of", "json", url],
            capture_output=True, timeout=60)
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert out.returncode == 0, out.stderr.decode()[-300:]
    return json.loads(out.stdout)


def wait_publishing(p, secs=2.5):
    """Wait for dhlive's encoder child (so its signal handlers are in place), then `secs` more
    of streaming."""
    deadline = time.monotonic() + 60
    while not any("pipe:0" in " ".join(_cmdline(c)) for c in psutil.Process(p.pid).children()):
        assert p.poll() is None, p.stderr.read().decode()
        assert time.monotonic() < deadline, "no encoder started"
        time.sleep(0.05)
    time.sleep(secs)
    assert p.poll() is None, p.stderr.read().decode()


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def stop(p, sig=signal.SIGINT, limit=3.0):
    t0 = time.monotonic()
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)  # a bound for a hung stop, not a speed figure (busy machines)
    return time.monotonic() - t0, err.decode()


def test_stream_is_h264_aac_25fps_with_short_gop(tmp_path):
    with RtmpServer(tmp_path / "nginx") as srv:
        p = start_live("--rtmp", srv.url(), "--input", SAMPLE, "--loop")
        try:
            wait_publishing(p)
            info = probe_stream(srv.url())
        finally:
            with Starvation(pid=p.pid, children=True, poll_s=0.05) as starved:
                took, err = stop(p)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert v["codec_name"] == "h264" and a["codec_name"] == "aac"
    assert v["r_frame_rate"] == "25/1"
    keys = [float(pk["pts_time"]) for pk in info["packets"]
            if pk["stream_index"] == v["index"] and "K" in pk["flags"]]
    assert len(keys) >= 2 and max(b - a for a, b in zip(keys, keys[1:])) <= 2.0 + 1e-3
    assert p.returncode == 0 and took < 3.0 + starved.seconds, (took, starved.seconds, err)


def _status(api: int) -> dict | None:
    """The live process's /v1/status, or None while its API is not answering (yet)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/v1/status", timeout=5) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def _wait_status(p, api: int, what: str, ok, timeout: float = 60.0) -> dict:
    """Poll the status until ok(status) holds: the event itself, not a guess of how long it takes."""
    deadline = time.monotonic() + timeout
    while True:
        st = _status(api)
        if st is not None and ok(st):
            return st
        assert p.poll() is None, f"dhlive exited while waiting for {what}: {p.stderr.read().decode()[-600:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s: {st}"
        time.sleep(0.1)


def _rtmp(st: dict) -> dict:
    return next(o for o in st["outputs"] if o["target"].startswith("rtmp"))


@pytest.mark.reliability
def test_server_down_then_up_and_killed_midstream_reconnects(tmp_path):
    port = rtmp_server.free_port()
    srv = RtmpServer(tmp_path / "nginx", port)
    api = rtmp_server.free_port()
    p = start_live("--rtmp", srv.url(), "--input", SAMPLE, "--loop", "-o", str(tmp_path / "rec.mp4"),
                   "--listen", f"127.0.0.1:{api}")
    try:
        # server down at start: dhlive keeps running, retrying (a failed attempt is a reconnect)
        _wait_status(p, api, "a failed first connection", lambda st: _rtmp(st)["reconnects"] >= 1)
        srv.start()
        _wait_status(p, api, "a connection once the server is up", lambda st: _rtmp(st)["connected"])
        probe_stream(srv.url(), 1.5)  # it is publishing
        st = _status(api)
        before = _rtmp(st)["reconnects"]
        recorded_at_kill = next(o for o in st["outputs"] if not o["target"].startswith("rtmp"))["frames_written"]
        srv.kill()  # drop mid-stream
        _wait_status(p, api, "the drop to be noticed", lambda st: not _rtmp(st)["connected"])
        assert p.poll() is None, "dhlive must not exit when the server goes away"
        srv.start()
        _wait_status(p, api, "a reconnection", lambda st: _rtmp(st)["connected"] and _rtmp(st)["reconnects"] > before)
        info = probe_stream(srv.url(), 1.5)
        assert any(s["codec_type"] == "video" for s in info["streams"])
        rss = psutil.Process(p.pid).memory_info().rss
        import urllib.request

        status = _status(api)
        rtmp_out = _rtmp(status)
        assert rtmp_out["reconnects"] >= 2 and rtmp_out["connected"]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=5).read().decode()
        # outputs are labelled by position (a URL would leak the stream key): the RTMP one is first
        idx = [o["target"] for o in status["outputs"]].index(rtmp_out["target"])
        line = next(ln for ln in metrics.splitlines()
                    if ln.startswith("dhlive_reconnects_total{") and f'"{idx}"' in ln)
        assert float(line.rsplit(" ", 1)[1]) == rtmp_out["reconnects"]
        recorded = next(o for o in status["outputs"] if not o["target"].startswith("rtmp"))["frames_written"]
    finally:
        took, err = stop(p)
        srv.kill()
    assert p.returncode == 0, err
    reconnects = int(err.strip().rsplit("reconnects ", 1)[1].split()[0])
    assert reconnects >= 2, err
    assert rss < 400 * 2**20
    # the record file kept going through the outage: it is valid and holds what its encoder was
    # given, which went on growing after the server was killed
    assert recorded > recorded_at_kill + 25, (recorded_at_kill, recorded)
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "json",
                          str(tmp_path / "rec.mp4")], capture_output=True, check=True)
    assert float(json.loads(out.stdout)["format"]["duration"]) >= recorded / 25 - 0.5, recorded


@pytest.mark.reliability
def test_sigterm_exits_zero_fast_no_orphans(tmp_path):
    api = rtmp_server.free_port()
    p = start_live("-o", str(tmp_path / "x.mp4"), "--input", SAMPLE, "--listen", f"127.0.0.1:{api}")
    _wait_status(p, api, "1.5 s written to the recording", lambda st: st["outputs"][0]["frames_written"] >= 38)
    kids = [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
    with Starvation(pid=p.pid, children=True, poll_s=0.05) as starved:
        took, err = stop(p, signal.SIGTERM)
    # 3 s, plus whatever CPU time other work on the machine kept dhlive and its encoder waiting
    assert p.returncode == 0 and took < 3.0 + starved.seconds, (took, starved.seconds, err)
    assert "Traceback" not in err
    assert not any(psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE for k in kids)
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "json",
                          str(tmp_path / "x.mp4")], capture_output=True, check=True)
    assert float(json.loads(out.stdout)["format"]["duration"]) > 1.0


def _decode(path, W, H):
    """(audio 16 kHz mono, mouth opening per frame) of a recorded video."""
    import numpy as np

    from dhlive_cli.avatar.drawn import MouthShape
    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.ffmpeg_bin import ffmpeg_path
    from dhlive_cli.mouth import REST_CLOSE

    # Both streams decoded onto the file's clock from t = 0: a reader that joined a live stream
    # mid-GOP has audio from its first packet but video only from the next keyframe.
    pcm = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-af", "aresample=async=1:first_pts=0",
                          "-f", "f32le", "-ac", "1", "-ar", "16000", "pipe:1"], capture_output=True, check=True).stdout
    av = load_avatar(None, W, H, 25)
    x0, y0, x1, y1 = av.mouth_box()
    x0, y0 = x0 & ~1, y0 & ~1
    w, h = (x1 - x0 + 1) & ~1, (y1 - y0 + 1) & ~1
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-vf", f"crop={w}:{h}:{x0}:{y0}",
                          "-fps_mode", "cfr", "-r", "25", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    ref = np.zeros((H, W, 3), np.uint8)
    opening = np.zeros(len(frames))
    for k in range(len(frames)):
        av.render(ref, k, MouthShape(close=REST_CLOSE))
        opening[k] = max(0, int((frames[k].max(axis=2) < 70).sum()) - int((ref[y0:y1, x0:x1].max(axis=2) < 70).sum()))
    return np.frombuffer(pcm, np.float32), opening


def _best_lag(ref, sig, max_lag):
    """L in [0, max_lag] maximising the correlation of sig[L : L + len(ref)] with all of ref."""
    import numpy as np

    best, arg = -2.0, 0
    for L in range(0, min(max_lag, len(sig) - len(ref)) + 1):
        b = sig[L : L + len(ref)]
        if b.std() == 0:
            continue
        c = np.corrcoef(ref, b)[0, 1]
        if c > best:
            best, arg = c, L
    return arg, best


def test_talking_frames_line_up_with_their_audio(tmp_path, speech_10s):
    """Live recording vs the frame-exact render of the same speech: the picture is shifted by
    exactly as many frames as the sound (within 1 frame)."""
    import numpy as np

    src, _ = speech_10s
    W, H = 640, 360
    ref_path = tmp_path / "ref.mkv"
    subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(src), "-o", str(ref_path), "--size", f"{W}x{H}",
                    "-q"], check=True, capture_output=True)
    rec = tmp_path / "rec.mkv"
    p = start_live("-o", str(rec), "--input", str(src), "--size", f"{W}x{H}", "--duration", "7")
    p.communicate(timeout=40)
    assert p.returncode == 0
    ref_audio, ref_open = _decode(ref_path, W, H)
    live_audio, live_open = _decode(rec, W, H)
    # where the speech sits in the live recording, to the sample, from the audio envelopes (1 ms)
    env = lambda a: np.sqrt(np.mean(a[: len(a) // 16 * 16].reshape(-1, 16) ** 2, axis=1))  # noqa: E731
    shift_ms, c_audio = _best_lag(env(ref_audio)[:5000], env(live_audio)[:7000], 1500)
    assert c_audio > 0.9, "the live recording carries the speech"
    shift_frames, c_video = _best_lag(ref_open[:150], live_open[:175], 40)
    print(f"audio shift {shift_ms} ms = {shift_ms / 40:.2f} frames (r={c_audio:.2f}); "
          f"picture shift {shift_frames} frames (r={c_video:.2f})")
    assert c_video > 0.6, "the live mouth moves like the rendered one"
    assert abs(shift_frames - shift_ms / 40) <= 1.0


def test_listen_api_speak_reaches_the_stream(tmp_path):
    import urllib.request

    port = rtmp_server.free_port()
    p = start_live("--listen", f"127.0.0.1:{port}", "-o", str(tmp_path / "api.mkv"))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/v1/status", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "API did not come up"
                time.sleep(0.2)
        with open(SAMPLE, "rb") as f:
            req = urllib.request.Request(base + "/v1/speak", data=f.read(), headers={"Content-Type": "audio/flac"})
        assert urllib.request.urlopen(req, timeout=10).status == 202
        time.sleep(1.0)
        status = json.loads(urllib.request.urlopen(base + "/v1/status", timeout=2).read())
        assert status["state"] == "talking" and status["queued_speech_s"] > 5
    finally:
        took, err = stop(p)
    assert p.returncode == 0, err


def test_api_speech_appears_in_the_rtmp_stream_in_sync(tmp_path):
    """Speech POSTed to the API is in the RTMP stream's audio (cross-correlation with what was
    pushed), and in the same run's recording -- the same clock feeds every output the same
    (frame, audio) pairs -- the mouth is shifted by the same number of frames as the sound."""
    import urllib.request

    import numpy as np

    W, H = 640, 360
    ref = tmp_path / "ref.mkv"
    subprocess.run([sys.executable, "-m", "dhlive_cli", "render", SAMPLE, "-o", str(ref), "--size", f"{W}x{H}", "-q"],
                   check=True, capture_output=True)
    api = rtmp_server.free_port()
    rec = tmp_path / "rec.mkv"
    cap = tmp_path / "cap.flv"
    with RtmpServer(tmp_path / "nginx") as srv:
        p = start_live("--rtmp", srv.url(), "-o", str(rec), "--listen", f"127.0.0.1:{api}", "--size", f"{W}x{H}")
        try:
            wait_publishing(p, 3.0)
            reader = subprocess.Popen([FFPROBE.replace("ffprobe", "ffmpeg"), "-v", "error", "-i", srv.url(), "-t", "16",
                                       "-vn", "-c:a", "copy", "-flush_packets", "1", str(cap)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # push only once the reader is receiving the stream (its file grows packet by packet), so
            # the speech falls inside its 16 s however slowly a busy machine let it connect
            deadline = time.monotonic() + 60
            while not (cap.exists() and cap.stat().st_size > 4096):
                assert reader.poll() is None, reader.stderr.read().decode()[-300:]
                assert time.monotonic() < deadline, "the RTMP reader never received the stream"
                time.sleep(0.05)
            with open(SAMPLE, "rb") as f:
                req = urllib.request.Request(f"http://127.0.0.1:{api}/v1/speak", data=f.read(),
                                             headers={"Content-Type": "audio/flac"})
            assert urllib.request.urlopen(req, timeout=10).status == 202
            reader.wait(120)
        finally:
            took, err = stop(p)
    assert reader.returncode == 0, reader.stderr.read().decode()[-300:]
    assert p.returncode == 0, err
    env = lambda a: np.sqrt(np.mean(a[: len(a) // 16 * 16].reshape(-1, 16) ** 2, axis=1))  # noqa: E731
    ref_audio, ref_open = _decode(ref, W, H)
    pcm = subprocess.run([FFPROBE.replace("ffprobe", "ffmpeg"), "-v", "error", "-i", str(cap), "-f", "f32le", "-ac", "1",
                          "-ar", "16000", "pipe:1"], capture_output=True, check=True).stdout
    _, c_stream = _best_lag(env(ref_audio)[:4000], env(np.frombuffer(pcm, np.float32))[:16000], 12000)
    assert c_stream > 0.9, f"the pushed speech is in the RTMP stream's audio (r={c_stream:.2f})"
    rec_audio, rec_open = _decode(rec, W, H)
    # the push comes when the reader is in, which a busy machine may delay: search the first 40 s
    shift_ms, c_audio = _best_lag(env(ref_audio)[:4000], env(rec_audio)[:40000], 36000)
    shift_frames, c_video = _best_lag(ref_open[:100], rec_open[:1000], 900)
    print(f"stream r={c_stream:.2f}; recording: audio at +{shift_ms} ms = {shift_ms / 40:.2f} frames (r={c_audio:.2f}), "
          f"picture at +{shift_frames} (r={c_video:.2f})")
    assert c_audio > 0.9 and c_video > 0.6
    assert abs(shift_frames - shift_ms / 40) <= 1.0
