"""Live engine hardening (issue 12, engine side), each case through the real `dhlive live` CLI
(or, for the reconnect soak, the LiveSession the CLI runs), real ffmpeg and nginx-rtmp:

* the stream key of --rtmp is never shown: not in /metrics (metrics server, or the API's own
  exposition with --metrics off), /v1/status, the rich panel or any log line;
* a live .mkv / .mp4 recording whose encoder is SIGKILLed keeps all but its last second;
* the command line's session failing ends the process with one error line, even while sessions
  created through the API still run; SIGHUP ends it like SIGTERM; --duration is checked;
* RTMP server kill/restart cycles cost no memory, threads or files per cycle.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import secrets
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from tests import rtmp_server
from tests.conftest import FFPROBE
from tests.rtmp_server import RtmpServer
from tests.test_reliability import LIVE, MB, ROOT, SAMPLE, _file_encoder, _stop_live, cli, probe_duration  # noqa: F401

pytestmark = [pytest.mark.reliability,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux")]
needs_rtmp = pytest.mark.skipif(not rtmp_server.available() or FFPROBE is None,
                                reason="nginx with the rtmp module and ffprobe are needed (make setup installs them)")


def http(port: int, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text: str, name: str) -> float:
    m = re.search(rf'^{name}(?:\{{[^}}]*\}})? (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def up(port: int) -> bool:
    try:
        return http(port, "/metrics")[0] == 200
    except OSError:
        return False


# ============================================================================ secrets

class PtyProcess:
    """`python -m dhlive_cli ARGS` with stderr on a wide pseudo-terminal, so the rich panel is
    drawn as an operator sees it; everything written there is collected."""

    def __init__(self, args: list[str]):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 400, 0, 0))  # no URL is wrapped
        env = dict(os.environ, COLUMNS="400", LINES="60", TERM="xterm")
        self.proc = subprocess.Popen([sys.executable, "-m", "dhlive_cli", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self._master = master
        self.chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                b = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not b:
                break
            self.chunks.append(b)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def finish(self, sig=signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        self._reader.join(5)
        os.close(self._master)
        return self.proc.returncode, out.decode("utf-8", "replace")


@pytest.mark.security
@needs_rtmp
def test_stream_key_is_in_no_status_metrics_panel_or_log(tmp_path):
    """A live session with the panel, -v logging, metrics, the API and an RTMP outage (so that
    ffmpeg's own error lines, which repeat the URL, reach status and logs): the key is nowhere,
    while the redacted target (host, app, ****) is shown where a target is shown."""
    key = "sk_" + secrets.token_hex(12)
    with RtmpServer(tmp_path / "nginx") as srv:
        url = srv.url(key)
        shown = f"rtmp://127.0.0.1:{srv.port}/live/****"
        api, mport = rtmp_server.free_port(), rtmp_server.free_port()
        p = PtyProcess(["-v", "live", "--preset", "low", "--rtmp", url, "--input", str(SAMPLE), "--loop",
                        "--listen", f"127.0.0.1:{api}", "--metrics", f"127.0.0.1:{mport}"])
        seen: list[str] = []
        try:
            deadline = time.monotonic() + 30
            while not (up(mport) and metric(http(mport, "/metrics")[1], "dhlive_output_frames_written_total") > 25):
                assert p.proc.poll() is None and time.monotonic() < deadline, p.text[-2000:]
                time.sleep(0.2)
            srv.kill()  # the encoder fails; its error and the reconnect warnings name the target
            while json.loads(http(api, "/v1/status")[1])["outputs"][0]["reconnects"] < 2:
                assert p.proc.poll() is None and time.monotonic() < deadline + 30, p.text[-2000:]
                time.sleep(0.2)
            srv.start()
            for path in ("/v1/status", "/v1/sessions", "/v1/sessions/main/status", "/metrics"):
                seen.append(http(api, path)[1])
            seen.append(http(mport, "/metrics")[1])
            status = json.loads(seen[0])
            time.sleep(1.0)  # a few more panel refreshes (4 per second) with the error shown
        finally:
            rc, out = p.finish()
    panel = p.text
    assert rc == 0, panel[-2000:]
    assert status["outputs"][0]["target"] == shown, status
    assert status["outputs"][0]["error"] and key not in status["outputs"][0]["error"]
    assert shown in panel, "the panel shows the output (redacted)"
    assert "WARNING" in panel and "reconnecting" in panel, "the reconnect warnings were logged"
    for text in (*seen, panel, out):
        assert key not in text and url not in text
    # the key split by the terminal or by escape codes would still be visible: look for its tail too
    assert key[-12:] not in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\s", "", panel)


@pytest.mark.security
@needs_rtmp
def test_stream_key_is_not_in_the_api_metrics_with_metrics_off(tmp_path, cli):
    key = "sk_" + secrets.token_hex(12)
    with RtmpServer(tmp_path / "nginx") as srv:
        api = rtmp_server.free_port()
        c = cli([*LIVE, "--rtmp", srv.url(key), "--listen", f"127.0.0.1:{api}", "--metrics", "off"])
        c.wait_for(lambda: up(api) and "dhlive_output_connected" in http(api, "/metrics")[1], 30, "the API")
        text = http(api, "/metrics")[1]
        status = http(api, "/v1/status")[1]
        r = _stop_live(c, limit=10)
    assert r.rc == 0 and r.orphans == [], r
    assert f"rtmp://127.0.0.1:{srv.port}/live/****" in text
    for t in (text, status, r.err, r.out):
        assert key not in t


def test_redact_url_keeps_host_and_app_only():
    from dhlive_cli.redact import redact_text, redact_url, secrets_of

    assert redact_url("rtmp://a.example:1935/live/abc123") == "rtmp://a.example:1935/live/****"
    assert redact_url("rtmps://user:pw@a.example/app/k/more?x=1") == "rtmps://****@a.example/app/****"
    assert redact_url("rtmp://a.example/app?streamkey=abcd") == "rtmp://a.example/app/****"
    assert redact_url("rtmp://a.example/app") == "rtmp://a.example/app"
    assert redact_url("rtmp://a.example:port/app/key") == "rtmp://****"
    assert redact_url("/rec/main.mkv") == "/rec/main.mkv"
    url = "rtmp://127.0.0.1:1935/live/abcdef"
    line = f"Error closing file {url}: Broken pipe; key abcdef (abcdef)."
    assert redact_text(line, secrets_of(url)) == \
        "Error closing file rtmp://127.0.0.1:1935/live/****: Broken pipe; key **** (****)."


# ============================================================================ recordings

@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_recording_killed_after_10_s_keeps_9_s(tmp_path, cli, ext):
    """SIGKILL of a live recording's encoder once it has been given 10 s of frames: ffprobe
    reads at least 9 s of video and of audio from what is on disk (flushed every 0.5 s)."""
    rec = tmp_path / f"rec.{ext}"
    mport = rtmp_server.free_port()
    c = cli([*LIVE, "-o", rec, "--input", SAMPLE, "--loop", "--metrics", f"127.0.0.1:{mport}"])
    enc = c.wait_for(lambda: _file_encoder(c, str(rec)), 30, "the encoder")
    c.wait_for(lambda: up(mport) and metric(http(mport, "/metrics")[1], "dhlive_output_frames_written_total") >= 250,
               60, "10 s of frames written")
    enc.send_signal(signal.SIGKILL)
    r = c.finish(timeout=20)
    assert r.rc == 1 and "Traceback" not in r.err and r.orphans == [], r
    got = {}
    for stream in ("v", "a"):
        out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time",
                              "-of", "csv=p=0", str(rec)], capture_output=True, text=True)
        got[stream] = max((float(x) for x in out.stdout.split() if x not in ("", "N/A")), default=0.0)
    print(f"{ext}: killed after >= 10 s of frames; ffprobe reads video to {got['v']:.2f} s, audio to {got['a']:.2f} s")
    assert got["v"] >= 9.0 and got["a"] >= 9.0, got


# ============================================================================ process life

@needs_rtmp
def test_main_encoder_death_with_api_sessions_ends_the_process(tmp_path, cli):
    """The command line's recording dies while a session made through the API streams: the
    process ends (exit 1) with one error line, and nothing of the API session is left running."""
    rec = tmp_path / "main.mkv"
    api = rtmp_server.free_port()
    with RtmpServer(tmp_path / "nginx") as srv:
        c = cli([*LIVE, "-o", rec, "--input", SAMPLE, "--loop", "--listen", f"127.0.0.1:{api}",
                 "--allow-rtmp", f"127.0.0.1:{srv.port}"])
        enc = c.wait_for(lambda: _file_encoder(c, str(rec)), 30, "the encoder")
        c.wait_for(lambda: up(api), 30, "the API")
        code, body = http(api, "/v1/sessions", "POST", json.dumps({"name": "b", "rtmp": srv.url("b")}).encode())
        assert code == 201, body
        c.wait_for(lambda: [k for k in c.children("pipe:0") if srv.url("b") in " ".join(k.cmdline())], 20,
                   "the API session's encoder")
        enc.send_signal(signal.SIGKILL)
        r = c.finish(timeout=30)
    assert r.rc == 1 and "Traceback" not in r.err and r.orphans == [], r
    errors = [ln for ln in r.lines() if ln.startswith("error:")]
    assert len(errors) == 1 and "killed by signal 9" in errors[0], r.err


def test_sighup_fades_out_finishes_the_recording_and_exits_0(tmp_path, cli):
    rec = tmp_path / "rec.mp4"
    mport = rtmp_server.free_port()
    c = cli([*LIVE, "-o", rec, "--input", SAMPLE, "--loop", "--metrics", f"127.0.0.1:{mport}"])
    c.wait_for(lambda: up(mport) and metric(http(mport, "/metrics")[1], "dhlive_output_frames_written_total") >= 50,
               60, "2 s of frames written")
    r = _stop_live(c, signal.SIGHUP, limit=10)
    assert r.rc == 0 and "Traceback" not in r.err and r.orphans == [], r
    assert not [ln for ln in r.lines() if ln.startswith("error:")] and "stopped:" in r.err, r.err
    assert probe_duration(rec) >= 2.0


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0"])
def test_duration_must_be_finite_and_above_0(tmp_path, cli, value):
    rec = tmp_path / "rec.mp4"
    r = cli([*LIVE, "-o", rec, "--duration", value]).finish(timeout=60)
    assert r.rc == 2 and r.orphans == [], r
    assert len(r.lines()) == 1 and r.lines()[0].startswith("error:") and "--duration" in r.lines()[0], r.err
    assert not rec.exists()


@pytest.mark.parametrize("option, value", [("--crossfade-ms", "-5"), ("--hangover-ms", "5001")])
def test_crossfade_and_hangover_are_checked_like_a_sessions_files(tmp_path, cli, option, value):
    """--crossfade-ms -5 was taken without a word; a sessions file's crossfade_ms is 0..5000."""
    rec = tmp_path / "rec.mp4"
    r = cli([*LIVE, "-o", rec, option, value, "--duration", "1"]).finish(timeout=60)
    assert r.rc == 2 and r.orphans == [], r
    assert r.lines() == [f"error: {option} {value}: a number of milliseconds from 0 to 5000"], r.err
    assert not rec.exists()


# ============================================================================ reconnects

@needs_rtmp
def test_rtmp_server_restarts_cost_no_memory_per_cycle(tmp_path):
    """14 kill/restart cycles of the RTMP server under a live session (short backoff, in
    process): from the 4th cycle on, RSS grows by at most the issue's bound per cycle (5 MB over
    45 cycles) in at least one half of the run (a leak shows in both, an allocator step in one),
    and threads, files and child processes stay where they were. The 50-cycle run of
    the real CLI is benchmarks/bench_reconnect.py."""
    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.inference import InferencePool
    from dhlive_cli.live import LiveOptions, LiveSession
    from dhlive_cli.memtune import tune_allocator
    from dhlive_cli.sinks import EncoderOptions
    from dhlive_cli.timebase import Timebase

    tune_allocator()  # as `dhlive live` does
    me = psutil.Process()
    cycles, base_cycle = 14, 4

    def figures():
        kids = [k for k in me.children() if k.status() != psutil.STATUS_ZOMBIE]
        return me.memory_info().rss, me.num_fds(), threading.active_count(), len(kids)

    srv = RtmpServer(tmp_path / "nginx").start()
    s = LiveSession(avatar=load_avatar(None, 640, 360, 25), pool=InferencePool(), tb=Timebase(25),
                    enc=EncoderOptions(preset="ultrafast"), outputs=[(srv.url("soak"), "flv")],
                    opts=LiveOptions(reconnect_min_s=0.2, reconnect_max_s=0.4), name="soak")
    out = s.outputs[0]

    def stable(frames: int = 50, timeout: float = 60) -> None:
        """`frames` written without a new loss."""
        deadline = time.monotonic() + timeout
        while True:
            r, f = out.reconnects, out.frames_written
            while out.frames_written < f + frames and out.reconnects == r:
                assert time.monotonic() < deadline, "the stream did not come back"
                time.sleep(0.02)
            if out.reconnects == r:
                return

    rows = []
    s.start()
    try:
        stable()
        for _ in range(cycles):
            r0 = out.reconnects
            srv.kill()
            deadline = time.monotonic() + 30
            while out.reconnects == r0:
                assert time.monotonic() < deadline, "the loss was not noticed"
                time.sleep(0.02)
            time.sleep(0.5)  # down a while: retries fail too
            srv.start()
            stable()
            rows.append(figures())
    finally:
        s.stop()
        srv.kill()
    base, end = rows[base_cycle - 1], rows[-1]
    # A leak grows RSS every cycle, so it shows in both halves of the run; the allocator taking
    # one more arena chunk (about 1.3 MB, seen once in CI beside other tests' load) is a step in
    # one half only. The quieter half (5 cycles) is held to the rate (5 MB over 45 cycles);
    # a 0.2 MB-per-cycle leak put in by hand read +0.97 and +0.96 MB and failed.
    rss = [r[0] / MB for r in rows[base_cycle - 1:]]
    half = len(rss) // 2
    halves = (rss[half] - rss[0], rss[-1] - rss[half])
    bound = 5.0 / 45 * half
    print(f"RSS after cycle {base_cycle} -> {base_cycle + half} -> {cycles}: {halves[0]:+.2f}, {halves[1]:+.2f} MB "
          f"(bound {bound:.2f} in at least one); fds {base[1]} -> {end[1]}, threads {base[2]} -> {end[2]}, "
          f"children {base[3]} -> {end[3]}; reconnects {out.reconnects}")
    assert min(halves) <= bound, " ".join(f"{v:.2f}" for v in rss)
    assert end[1] <= base[1] and end[2] <= base[2] and end[3] <= base[3], (base, end)
