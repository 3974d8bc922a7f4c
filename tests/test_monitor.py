"""`dhlive monitor` and the metrics server: a real leaking child, a flat child, a fake engine.

The two long runs (a 45 s leaker and a 30 s flat process, each watched by a real monitor
subprocess) share one module fixture and run side by side, so the file stays around a minute.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import psutil
import pytest
import typer
from typer.testing import CliRunner

from dhlive_cli.commands import monitor as mon
from dhlive_cli.commands.common import logs_through
from dhlive_cli.metrics import MetricsServer, discovery_path, read_discovery
from dhlive_cli.monitoring import chart, leak, sampler, view

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

# 1 MiB per second in ten 1/10 s steps, paced from the start so a busy machine cannot slow the
# leak; every page is written so the memory is resident, and os._exit skips a teardown that
# would free it while the monitor still samples
LEAKER = r"""
import os, sys, time
step, dur, keep = (1 << 20) // 10, float(sys.argv[1]), []
print("ready", flush=True)
t0, k = time.monotonic(), 0
while (k + 1) / 10 <= dur:
    k += 1
    d = t0 + k / 10 - time.monotonic()
    if d > 0:
        time.sleep(d)
    b = bytearray(step)
    b[::4096] = b"\x01" * len(range(0, step, 4096))
    keep.append(b)
os._exit(0)
"""

FLAT = r"""
import os, sys, time
b = bytearray(50 << 20)
b[::4096] = b"\x01" * len(range(0, len(b), 4096))
print("ready", flush=True)
time.sleep(float(sys.argv[1]))
os._exit(0)
"""

# until cli.py registers the command, a two-line app stands in for `dhlive monitor`
WRAPPER = ("import typer; from dhlive_cli.commands.monitor import monitor; "
           "app = typer.Typer(add_completion=False, pretty_exceptions_enable=False); "
           "app.command('monitor')(monitor); app.callback()(lambda: None); app()")


def _registered() -> bool:
    from dhlive_cli import cli

    return any(c.name == "monitor" for c in cli.app.registered_commands)


def monitor_argv() -> list[str]:
    if _registered():
        return [sys.executable, "-m", "dhlive_cli", "monitor"]
    return [sys.executable, "-c", WRAPPER, "monitor"]


def cli_app() -> typer.Typer:
    if _registered():
        from dhlive_cli import cli

        return cli.app
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("monitor")(mon.monitor)
    app.callback()(lambda: None)
    return app


def _start_child(code: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", code, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """Monitor a leaking and a flat child side by side until each exits on its own."""
    d = tmp_path_factory.mktemp("monitor")
    leak = _start_child(LEAKER, 45)  # flagged by 30 s; the rest is slack for a busy machine
    flat = _start_child(FLAT, 30)
    cmd = monitor_argv()
    runs = {
        # default window and warm-up: the must-hold is "a 1 MB/s leak flagged within 30 s"
        "leak": subprocess.Popen(cmd + ["--pid", str(leak.pid), "--interval", "0.5", "--json",
                                        "--csv", str(d / "leak.csv"), "--plot", str(d / "leak.png")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT),
        "flat": subprocess.Popen(cmd + ["--pid", str(flat.pid), "--interval", "0.5", "--window", "10", "--json",
                                        "--csv", str(d / "flat.csv")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT),
    }
    out = {}
    try:
        for name, child in (("flat", flat), ("leak", leak)):
            child.wait(timeout=45)  # reaped here, so the monitor sees the pid vanish
            so, se = runs[name].communicate(timeout=15)
            out[name] = {"rc": runs[name].returncode, "lines": _json_lines(so), "stderr": se,
                         "csv": d / f"{name}.csv", "png": d / f"{name}.png"}
    finally:
        for p in (leak, flat, *runs.values()):
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


# ----------------------------------------------------------------------------- 1. the leak fit


def test_leaking_child_is_flagged_with_the_right_slope(watched):
    r = watched["leak"]
    assert r["rc"] == 0, r["stderr"]
    summary = r["lines"][-1]
    print(f"leak: slope {summary['slope_mb_per_h']:.1f} MB/h (expected 3600), flagged at {summary['leak_suspected_at_s']} s")
    assert summary["type"] == "summary" and summary["ended"] == "target exited"
    # 1 MiB/s = 3600 MB/h in the monitor's units (MB = 2**20 bytes, like the engine's rss_mb)
    assert 0.8 * 3600 <= summary["slope_mb_per_h"] <= 1.2 * 3600, summary
    assert summary["leak_suspected"] is True and summary["leak_suspected_at_s"] <= 30
    assert summary["fit_span_s"] >= 20
    samples = [s for s in r["lines"] if s["type"] == "sample"]
    assert samples[-1]["leak_suspected"] is True
    assert samples[-1]["engine"] is None  # any process works; this one serves no metrics


def test_flat_process_is_not_flagged(watched):
    r = watched["flat"]
    assert r["rc"] == 0, r["stderr"]
    summary = r["lines"][-1]
    print(f"flat: slope {summary['slope_mb_per_h']:.1f} MB/h, flagged {summary['leak_suspected']}")
    assert summary["ended"] == "target exited"
    assert summary["leak_suspected"] is False
    assert abs(summary["slope_mb_per_h"]) < 100
    assert summary["rss_mb_min"] > 45  # the 50 MB block is resident


def test_theil_sen_is_exact_on_a_line_and_ignores_outliers():
    ts = [i * 0.5 for i in range(60)]
    ys = [100 + 2.0 * t for t in ts]
    slope, tau = leak.theil_sen(ts, ys)
    assert slope == pytest.approx(2.0) and tau == pytest.approx(1.0)
    spiked = list(ys)
    for i in range(0, 60, 5):  # 20 % wild samples (a GC pause reading, a transient buffer)
        spiked[i] += 500
    assert leak.theil_sen(ts, spiked)[0] == pytest.approx(2.0, rel=0.05)
    # many samples: the subsampled pairs still find the slope
    ts = [i * 0.1 for i in range(1200)]
    slope, _ = leak.theil_sen(ts, [7 - 0.25 * t + (0.3 if i % 2 else -0.3) for i, t in enumerate(ts)])
    assert slope == pytest.approx(-0.25, rel=0.05)
    assert leak.theil_sen([1.0], [2.0]) == (0.0, 0.0)


def test_leak_rule_ignores_a_step_and_a_sawtooth_but_flags_a_ramp():
    def run(f, seconds=600, dt=2.0):
        tr = leak.LeakTracker(leak.LeakRule())  # the defaults: a 600 s window
        for i in range(int(seconds / dt)):
            tr.add(i * dt, f(i * dt))
        return tr

    step = run(lambda t: 500.0 if t < 60 else 600.0)  # a cache filled once
    assert not step.suspected and step.first_suspected_s is None
    saw = run(lambda t: 500.0 + (t % 20) * 2)  # GC: grows 40 MB, drops back, forever
    assert saw.first_suspected_s is None
    slow = run(lambda t: 2000.0 + t / 3600 * 20)  # 20 MB/h on a 2 GB process: under 5 %/h
    assert slow.first_suspected_s is None
    ramp = run(lambda t: 500.0 + t / 3600 * 200)  # 200 MB/h on 500 MB: over 5 %/h (25 MB/h)
    assert ramp.suspected
    # ... once the fitted rise reaches max(6 MB, 1 % of RSS) = 6 MB: 108 s at 200 MB/h, then the hold
    assert ramp.first_suspected_s == pytest.approx(108 + ramp.rule.hold_s, abs=2.01)
    assert ramp.slope_mb_per_h == pytest.approx(200, rel=0.01)
    creep = run(lambda t: 140.0 + t / 3600 * 40)  # 40 MB/h on a small process: 6 MB after 9 min
    assert creep.first_suspected_s == pytest.approx(540 + creep.rule.hold_s, abs=2.01)
    fast = run(lambda t: 100.0 + t, seconds=60, dt=1.0)  # 1 MB/s: the fit's first 15 s and the hold of 10 s
    r = fast.rule
    assert fast.first_suspected_s == pytest.approx(max(r.warmup_s, r.min_span_s + r.hold_s), abs=1.01)  # 25 s
    assert fast.first_suspected_s <= 30


def test_start_up_of_a_live_session_watched_from_its_first_second_is_not_flagged():
    """RSS of a 720p live session as measured from its start: +52 MB in 7 s while it loads,
    +1.4 MB over the next 10 s, then flat. Over the first 20 s that is a steep, consistent rise
    far past the minimum growth; it is told from a leak by slowing down."""
    import random

    rnd = random.Random(1)

    def rss(t):
        if t < 7:
            return 92 + 52 * t / 7
        if t < 17:
            return 144 + 1.4 * (t - 7) / 10
        return 145.4 + 0.15 * (t - 17) / 60 + rnd.choice((0.0, 0.004, 0.008))

    tr = leak.LeakTracker(leak.LeakRule())
    for i in range(300):
        tr.add(float(i), rss(float(i)))
        assert not tr.suspected, i
    assert tr.first_suspected_s is None


def test_warm_up_growth_of_a_healthy_process_is_never_flagged():
    """What a live session does after start (measured: +0.5 MB over its first ~100 s, then flat,
    with page-level noise): the slope over a short span looks like 16-20 MB/h, far over 5 %/h of
    140 MB, but the rise never reaches the minimum growth."""
    import random

    rnd = random.Random(3)
    tr = leak.LeakTracker(leak.LeakRule())
    for i in range(600):
        t = float(i)
        rise = 0.5 * min(t, 100.0) / 100.0
        tr.add(t, 140.0 + rise + rnd.choice((0.0, 0.004, 0.008)))
        if 30 < t < 100:
            assert tr.slope_mb_per_h > leak.LeakRule().threshold_mb_per_h(140.5)  # the old rule's false alarm
    assert tr.first_suspected_s is None and not tr.warming_up


def test_fps_is_per_interval_not_since_start():
    m = sampler.FpsMeter()
    assert m.add(0.0, 0) is None
    assert m.add(1.0, 66) == pytest.approx(66.0)
    assert m.add(2.0, 98) == pytest.approx(32.0)  # the average since start would say 49
    assert m.add(3.0, 10) is None  # counter went back: a new process
    assert m.add(4.0, None) is None and m.add(5.0, 25) is None


def _panel_lines(sample_overrides: dict, tracker) -> list[str]:
    from rich.console import Console

    s = {"type": "sample", "pid": 4242, "name": "dhlive", "time": 0.0, "elapsed_s": 1.0, "rss_mb": 1.5,
         "uss_mb": None, "cpu_pct": 0.0, "threads": 1, "fds": 3, "children": [], "children_rss_mb": 0.0,
         "slope_mb_per_h": 0.0, "leak_suspected": False, "engine": None}
    s.update(sample_overrides)
    con = Console(width=200, record=True, file=open(os.devnull, "w"), color_system=None)
    con.print(view.panel(s, name=s["name"], tracker=tracker, elapsed=s["elapsed_s"], n=3, scraper_error=None,
                         alert_rss=None))
    return con.export_text().splitlines()


def test_names_and_engine_fields_are_shown_as_text_not_markup():
    """The watched process's name, its children's names and the command/state its metrics report
    are the target's own text: '[/]' was a MarkupError traceback, '[b]' and ':smile:' changed the
    panel."""
    tr = leak.LeakTracker(leak.LeakRule())
    tr.add(0.0, 1.5)
    kids = [{"pid": 7, "name": "k[/]id:smile:", "rss_mb": 1.0, "cpu_pct": 0.0}]
    engine = {"command": "x[/]y", "state": "[b]s:+1:", "fps": 25.0, "fps_now": 25.0}
    lines = _panel_lines({"name": "a[/]b:smile:[b]", "children": kids, "children_rss_mb": 1.0, "engine": engine}, tr)
    text = "\n".join(lines)
    for literal in ("a[/]b:smile:[b]", "k[/]id:smile:", "x[/]y", "[b]s:+1:"):
        assert literal in text, literal


def test_panel_keeps_its_width_as_numbers_grow():
    tr = leak.LeakTracker(leak.LeakRule())
    tr.add(0.0, 1.5)
    small = _panel_lines({}, tr)
    for i in range(1, 200):
        tr.add(float(i), 1.5 + i * 50.0)
    engine = {"command": "live", "state": "talking", "fps": 24.987, "fps_now": 25.0, "frames": 12345678,
              "late_frames": 123456, "frame_ms_p50": 12.5, "frame_ms_p99": 1234.5, "reconnects": 12,
              "queues": {"output0": 2.0}, "queue_capacity": {"output0": 8.0}}
    kids = [{"pid": 1234567, "name": "ffmpeg-with-a-very-long-process-name", "rss_mb": 12345.6, "cpu_pct": 190.5}]
    big = _panel_lines({"rss_mb": 99999.9, "uss_mb": 88888.8, "cpu_pct": 1999.9, "threads": 12345, "fds": 99999,
                        "children": kids, "children_rss_mb": 12345.6, "elapsed_s": 400000.0,
                        "engine": engine}, tr)
    widths = {len(ln) for ln in small + big}
    assert widths == {view.PANEL_WIDTH}, widths


def test_log_lines_go_through_the_console_while_a_panel_is_up(tmp_path):
    import io
    import logging

    from rich.console import Console
    from rich.live import Live

    root = logging.getLogger()
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)  # what the CLI's logging.basicConfig sets up
    plain.setFormatter(logging.Formatter("dhlive: %(levelname)s %(name)s: %(message)s"))
    others = list(root.handlers)  # pytest's own capture handlers, put back afterwards
    for h in others:
        root.removeHandler(h)
    root.addHandler(plain)
    try:
        out = io.StringIO()
        con = Console(file=out, width=80, force_terminal=True, color_system=None)
        with Live("panel", console=con, auto_refresh=False) as ui, logs_through(ui.console):
            logging.getLogger("dhlive_cli.test").warning("encoder restarted")
            ui.refresh()
        assert "dhlive: WARNING dhlive_cli.test: encoder restarted" in out.getvalue()
        assert stream.getvalue() == ""  # not written across the panel by the plain handler
        logging.getLogger("dhlive_cli.test").warning("after")
        assert "after" in stream.getvalue()  # the old handler is back
    finally:
        root.removeHandler(plain)
        for h in others:
            root.addHandler(h)


# ----------------------------------------------------------------------------- 2. the fake engine


LIVE_SNAPSHOT = {
    "session": "s1", "state": "talking", "frames": 1234, "late_frames": 7, "fps": 24.5,
    "frame_ms_p50": 12.5, "frame_ms_p99": 38.0, "queued_speech_s": 2.25, "latency_ms_median": 180.0,
    "outputs": [
        {"target": "rtmp://127.0.0.1/live/SECRETKEY", "connected": True, "reconnects": 2,
         "frames_written": 1200, "frames_dropped": 3, "queue_fill": 2},
        {"target": "/tmp/rec.mp4", "connected": True, "reconnects": 1, "frames_written": 1230,
         "frames_dropped": 0, "queue_fill": 5},
    ],
}


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    rt = tmp_path / "run"
    rt.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    return rt


def _get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return r.read().decode()


def test_monitor_json_once_shows_engine_figures_that_match_metrics(runtime):
    server = MetricsServer(lambda: LIVE_SNAPSHOT, command="live")
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/metrics")
        assert discovery_path(os.getpid()) == runtime / "dhlive" / f"{os.getpid()}.json"
        rec = read_discovery(os.getpid())
        assert rec["metrics_url"] == server.url and rec["command"] == "live" and rec["pid"] == os.getpid()

        result = runner.invoke(cli_app(), ["monitor", "--pid", str(os.getpid()), "--json", "--once",
                                           "--interval", "0.2"])
        assert result.exit_code == 0, result.output
        objs = _json_lines(result.stdout)
        assert len(objs) == 1  # one snapshot, no summary
        snap = objs[0]
        e = snap["engine"]
        assert snap["engine_url"] == server.url
        direct_text = _get(server.url)
        direct = sampler.parse_metrics(direct_text)
        # the snapshot has no rss_mb, so the server reads its own RSS live at each scrape
        assert e.pop("rss_mb") == pytest.approx(direct.pop("rss_mb"), rel=0.05)
        # --once reads the counter at the start too: a rate over the interval (the snapshot's
        # frame count does not move here); it showed "fps -" (a reviewer's finding)
        assert e.pop("fps_now") == 0.0
        assert e.pop("snapshot_t") < direct.pop("snapshot_t")  # when each scrape read the figures
        assert e == direct
        assert e["fps"] == 24.5 and e["frames"] == 1234 and e["late_frames"] == 7
        assert e["frame_ms_p50"] == pytest.approx(12.5) and e["frame_ms_p99"] == pytest.approx(38.0)
        assert e["state"] == "talking" and e["reconnects"] == 3
        assert e["queues"] == {"output0": 2.0, "output1": 5.0}
        assert e["latency_ms"] == pytest.approx(180.0) and e["queued_speech_s"] == 2.25
        assert snap["rss_mb"] > 0 and snap["threads"] >= 2  # the server thread at least
        # Prometheus conventions, and the stream key never leaves the process
        for name in ("dhlive_frames_total 1234.0", "dhlive_late_frames_total 7.0", 'dhlive_state{state="idle"} 0.0',
                     'dhlive_frame_seconds{quantile="0.99"} 0.038', "dhlive_resident_memory_bytes"):
            assert name in direct_text
        assert "SECRETKEY" not in direct_text
    finally:
        server.close()
    assert not (runtime / "dhlive" / f"{os.getpid()}.json").exists()
    assert read_discovery(os.getpid()) is None
    server.close()  # idempotent
    assert not [t for t in threading.enumerate() if t.name.startswith("dhlive-")]


def test_servers_are_independent_and_survive_odd_snapshots(runtime):
    def broken():
        raise RuntimeError("engine stopped")

    render = MetricsServer(lambda: {"frames_done": 5, "frames_total": 10, "fps": 3.0, "rss_mb": 100.0,
                                    "queue_fill": {"blocks": (1, 3), "frames": (3, 3)}}, command="render")
    empty = MetricsServer(dict, command="live")
    bad = MetricsServer(broken)
    try:
        assert len({render.port, empty.port, bad.port}) == 3
        r = sampler.parse_metrics(_get(render.url))
        assert r["frames"] == 5 and r["frames_planned"] == 10 and r["command"] == "render"
        assert r["queues"] == {"blocks": 1.0, "frames": 3.0} and r["queue_capacity"]["frames"] == 3.0
        assert r["rss_mb"] == pytest.approx(100.0) and "state" not in r
        e = sampler.parse_metrics(_get(empty.url))
        assert "fps" not in e and e["rss_mb"] > 0  # missing keys: nothing invented
        assert "dhlive_snapshot_ok 0.0" in _get(bad.url)
        # the file names the newest server; closing an older one leaves it alone
        assert read_discovery(os.getpid())["metrics_url"] == bad.url
        render.close()
        assert read_discovery(os.getpid())["metrics_url"] == bad.url
    finally:
        for s in (render, empty, bad):
            s.close()
    assert read_discovery(os.getpid()) is None


def test_stale_discovery_file_of_a_reused_pid_is_ignored(runtime):
    d = runtime / "dhlive"
    d.mkdir(mode=0o700)
    created = psutil.Process().create_time()
    (d / f"{os.getpid()}.json").write_text(json.dumps(
        {"pid": os.getpid(), "metrics_url": "http://127.0.0.1:9/metrics", "command": "live", "started": created - 3600}))
    assert read_discovery(os.getpid()) is None
    (d / f"{os.getpid()}.json").write_text(json.dumps(
        {"pid": os.getpid(), "metrics_url": "http://evil.example:80/metrics", "command": "live", "started": created + 1}))
    assert read_discovery(os.getpid()) is None


# ----------------------------------------------------------------------------- 3. errors and outputs


def _dead_pid() -> int:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    return pid_max + 1  # above pid_max: no process can ever have it


def test_bad_pid_is_one_line_exit_2():
    r = subprocess.run(monitor_argv() + ["--pid", str(_dead_pid())], capture_output=True, text=True, cwd=ROOT,
                       timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no such process" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    for bad in (["--pid", "0"], ["--pid", "1", "--interval", "0"], ["--pid", "1", "--plot", "x.jpg"]):
        res = runner.invoke(cli_app(), ["monitor", *bad])
        assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "error:" in res.stderr
    # each line names what is wrong: --interval 1e9 was blamed on --window, and a CSV in a
    # missing folder read "error: /nonexist/a.csv No such file or directory"
    for bad, says in ((["--interval", "1e9"], "error: --interval 1e+09: at most 3600 seconds between samples"),
                      (["--interval", "400"], "error: --window 600: must cover at least two samples of --interval 400"),
                      (["--csv", "/nonexistent-dir/a.csv", "--once"],
                       "error: /nonexistent-dir/a.csv: No such file or directory"),
                      # it wrote a file named '-' in the current folder (a reviewer's finding)
                      (["--csv", "-", "--once"], "error: --csv -: give a file name")):
        r = subprocess.run(monitor_argv() + ["--pid", str(os.getpid()), *bad], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and \
            r.stderr.startswith(says), (bad, r.stderr)


def test_permission_denied_is_one_line_exit_2(monkeypatch):
    def denied(self):
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "num_threads", denied)  # memory_info is memoized by oneshot()
    res = runner.invoke(cli_app(), ["monitor", "--pid", "1", "--once"])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error:") and "permission denied" in res.stderr
    assert res.stderr.count("\n") == 1


def test_csv_rows_and_plot_from_the_leak_run(watched):
    import cv2

    r = watched["leak"]
    summary = r["lines"][-1]
    with open(r["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["samples"] == len([s for s in r["lines"] if s["type"] == "sample"])
    assert set(view.CSV_FIELDS) == set(rows[0])
    assert float(rows[-1]["rss_mb"]) > float(rows[0]["rss_mb"]) + 10
    assert rows[-1]["engine_fps"] == ""  # no engine: empty, not a made-up 0
    img = cv2.imread(str(r["png"]))
    assert img is not None and img.shape == (540, 1000, 3)
    assert (img < 128).any() and len({tuple(p) for p in img.reshape(-1, 3)[::97]}) > 5  # drawn, not blank


def test_plain_lines_when_not_a_terminal_and_summary_on_exit(tmp_path):
    target = subprocess.Popen(["sleep", "600"])
    try:
        r = subprocess.Popen(monitor_argv() + ["--pid", str(target.pid), "--interval", "0.25", "--csv",
                                               str(tmp_path / "s.csv")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        first = [r.stdout.readline() for _ in range(4)]  # four samples, then the target goes
        target.kill()
        target.wait(timeout=10)
        rest, err = r.communicate(timeout=15)
    finally:
        target.kill()
    assert r.returncode == 0, err
    lines = first + rest.splitlines()
    per_sample = [ln for ln in lines if f" pid {target.pid} rss " in ln]
    assert len(per_sample) >= 4 and all(" slope " in ln for ln in per_sample)
    assert any(ln.startswith("summary:") and "target exited" in ln for ln in lines)
    assert "no leak suspected" in rest and "rss min" in rest
    with open(tmp_path / "s.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(per_sample)


def test_alert_rss_prints_a_line_and_exits_3():
    res = runner.invoke(cli_app(), ["monitor", "--pid", str(os.getpid()), "--once", "--json", "--interval", "0.1",
                                    "--alert-rss", "1"])
    assert res.exit_code == 3
    assert res.stderr.count("alert:") == 1 and "exceeds --alert-rss 1 MB" in res.stderr
    assert len(_json_lines(res.stdout)) == 1


def test_history_for_the_plot_stays_bounded():
    h = chart.History(max_points=100)
    for i in range(10_000):
        h.add(float(i), 1.0, None, None)
    assert len(h.t) < 100 and h.t[0] == 0.0 and h.t[-1] > 9_000


def test_a_healthy_live_session_is_never_flagged(tmp_path):
    """A real `dhlive live` watched by a real monitor with the default rule for a minute (the
    10-minute run is benchmarks/bench_monitor_healthy.py): no sample says "leak suspected"."""
    from benchmarks.bench_monitor_healthy import watch_healthy_live

    r = watch_healthy_live(60, tmp_path)  # 720p, watched from the session's first seconds: its start-up
    print(r)  # shown with pytest -s
    assert r["samples"] >= 60 and r["watched_s"] >= 59
    assert r["flagged_samples"] == 0 and r["summary_leak_suspected"] is False, r
    assert r["children_rss_mb_max"] > 10  # the encoder ffmpeg is counted
    assert r["engine_fps_now_median"] is not None  # the per-interval rate, from the frame counter


def test_a_plot_that_cannot_be_written_is_refused_at_once_or_after_the_summary(tmp_path):
    # --plot /proc/x.png passed os.access() as root and failed only at the end of the watch,
    # taking the summary with it (a reviewer's finding)
    r = subprocess.run(monitor_argv() + ["--pid", str(os.getpid()), "--once", "--plot", "/proc/x.png"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["error: --plot /proc/x.png: cannot write in /proc: No such file or "
                                             "directory"], r.stderr
    # a disk that fills up: the summary first, then one error line, and an older plot of that
    # name left whole (it was cut off to 12 KB: a second reviewer's finding)
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        old = full / "mem.png"
        old.write_bytes(b"an older plot")
        target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
        try:
            r = subprocess.run(monitor_argv() + ["--pid", str(target.pid), "--interval", "0.2", "--plot", str(old),
                                                 "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        finally:
            target.kill()
            target.wait()
        assert r.returncode == 2, (r.stdout, r.stderr)
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert summary["type"] == "summary" and summary["samples"] >= 1 and summary["plot"] is None
        assert r.stderr.strip().splitlines() == [f"error: --plot {old}: No space left on device"], r.stderr
        assert old.read_bytes() == b"an older plot" and sorted(p.name for p in full.iterdir()) == ["mem.png"]
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)


def test_write_png_replaces_a_fifo_instead_of_blocking_on_it(tmp_path):
    # --plot x.png where x.png was a FIFO hung for ever at the end of the watch (a reviewer's finding)
    import numpy as np

    from dhlive_cli.outpaths import write_png

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    write_png(fifo, np.zeros((8, 8, 3), np.uint8))
    assert fifo.is_file() and fifo.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_a_batch_drivers_jobs_reach_the_dashboard():
    # `monitor --pid` of a batch driver showed only "fps 0.00": the driver's job figures, which
    # its /metrics has, were not read (a reviewer's finding). The exposition is made by the same
    # collector the driver serves.
    from prometheus_client import CollectorRegistry, generate_latest

    from dhlive_cli.metrics_families import SnapshotCollector

    snap = {"frames": 250, "jobs": {"total": 40, "skipped": 0, "ok": 5, "failed": 1, "running": 2, "pending": 32},
            "jobs_per_min": 8.34, "eta_s": 252.0, "workers": 2}
    reg = CollectorRegistry()
    reg.register(SnapshotCollector(lambda: snap, "batch"))
    e = sampler.parse_metrics(generate_latest(reg).decode())
    assert e["batch"] == {"total": 40, "skipped": 0, "ok": 5, "failed": 1, "running": 2, "pending": 32,
                          "jobs_per_min": 8.34, "eta_s": 252.0, "workers": 2.0}
    line = view.batch_text(e["batch"])
    assert line == "jobs 6/40 done: 5 ok, 1 failed, 0 skipped; 2 running, 32 pending; 8.3 per min, eta 00:04:12, 2 workers"
    s = {"time": 0.0, "pid": 1, "rss_mb": 1.0, "uss_mb": None, "cpu_pct": 0.0, "threads": 1, "fds": 3,
         "children": [], "children_rss_mb": 0.0, "slope_mb_per_h": 0.0, "leak_suspected": False, "engine": e}
    assert line in view.plain_line(s)


def test_the_engine_says_when_its_figures_were_read():
    # monitor's "fps now" divided by when each scrape's answer arrived: a busy live session
    # delays its answers by tenths of a second, and a steady 25.000 fps read 35.9, 23.0, 26.8,
    # 22.0 (a reviewer's finding). The snapshot's own monotonic time is what it divides by now.
    import time as _time

    from prometheus_client import CollectorRegistry, generate_latest

    from dhlive_cli.metrics_families import SnapshotCollector

    frames = iter([100, 125])
    reg = CollectorRegistry()
    reg.register(SnapshotCollector(lambda: {"frames": next(frames)}, "live"))
    t0 = _time.monotonic()
    first = sampler.parse_metrics(generate_latest(reg).decode())
    t1 = _time.monotonic()
    second = sampler.parse_metrics(generate_latest(reg).decode())
    t2 = _time.monotonic()
    assert t0 <= first["snapshot_t"] <= t1 <= second["snapshot_t"] <= t2
    meter = sampler.FpsMeter()
    assert meter.add(first["snapshot_t"], first["frames"]) is None
    rate = meter.add(second["snapshot_t"], second["frames"])
    assert rate == pytest.approx(25 / (second["snapshot_t"] - first["snapshot_t"]))


def test_a_kernel_thread_is_refused_as_such():
    # kthreadd read "process exited before it could be sampled" (a reviewer's finding)
    kernel = next((p for p in psutil.process_iter(["name", "cmdline", "memory_info"])
                   if not p.info["cmdline"] and p.info["memory_info"] is not None
                   and p.info["memory_info"].vms == 0), None)
    if kernel is None:
        pytest.skip("no kernel thread visible here (a container's own pid namespace)")
    r = subprocess.run(monitor_argv() + ["--pid", str(kernel.pid), "--once"], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == (f"error: --pid {kernel.pid}: {kernel.info['name']} is a "
                                                      "kernel thread: it has no memory of its own to watch"), r.stderr
