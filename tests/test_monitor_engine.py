"""dhlive monitor against a real running `dhlive live`: engine figures agree with /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def test_monitor_reads_engine_figures_that_agree_with_metrics(tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "-o", str(tmp_path / "o.mkv"), "--input",
                          "presets/samples/hello.flac", "--preset", "low", "--duration", "20", "--quiet"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        disc = None
        deadline = time.monotonic() + 20
        while disc is None:
            assert time.monotonic() < deadline and p.poll() is None, "no discovery file"
            time.sleep(0.3)
            files = list((tmp_path / "dhlive").glob(f"{p.pid}.json")) if (tmp_path / "dhlive").exists() else []
            disc = json.loads(files[0].read_text()) if files else None
        time.sleep(2.0)
        out = subprocess.run([sys.executable, "-m", "dhlive_cli", "monitor", "--pid", str(p.pid), "--json", "--once"],
                             env=env, capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr.decode()
        snap = json.loads(out.stdout)
        direct = {}
        for fam in text_string_to_metric_families(urllib.request.urlopen(disc["metrics_url"], timeout=5).read().decode()):
            for s in fam.samples:
                direct[(s.name, tuple(sorted(s.labels.items())))] = s.value
    finally:
        p.terminate()
        p.communicate(timeout=15)
    eng = snap["engine"]
    assert snap["engine_url"] == disc["metrics_url"] and eng["command"] == "live"
    # read a moment apart: the frame counter advanced by at most the frames of that moment
    assert 0 <= direct[("dhlive_frames_total", ())] - eng["frames"] <= 50
    assert abs(direct[("dhlive_fps", ())] - eng["fps"]) < 0.5 and 23.5 < eng["fps"] < 26
    # late frames, too, only grow between the two reads (on a busy machine they do)
    assert 0 <= direct[("dhlive_late_frames_total", ())] - eng["late_frames"] <= 50
    talking = direct[(("dhlive_state"), (("state", "talking"),))]
    assert (eng["state"] == "talking") == (talking == 1.0)
    assert p.returncode == 0
    assert not (tmp_path / "dhlive" / f"{p.pid}.json").exists(), "discovery file removed on exit"
