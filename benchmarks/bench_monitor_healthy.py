"""False alarms of the leak detector: a healthy `dhlive live` watched by `dhlive monitor`.

    python benchmarks/bench_monitor_healthy.py [--seconds 600]

Starts a live session (--preset, default 720p; the bundled sample looped, recorded to a temporary
.mkv) and
a real `dhlive monitor --json` on it with the default leak rule, takes --seconds samples at 1 Hz,
stops both and prints one JSON object: whether any sample or the summary said "leak suspected",
the largest fitted slope and rise, the RSS at the start and end, the children's peak RSS, and the
engine's per-interval fps. tests/test_monitor.py runs the same watch for a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "presets" / "samples" / "hello.flac"


def _wait_for_discovery(runtime: Path, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    path = runtime / "dhlive" / f"{proc.pid}.json"
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"live exited early: {proc.stderr.read().decode()[-500:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("live did not start serving metrics")
        time.sleep(0.2)


def watch_healthy_live(samples: int, workdir: Path, preset: str = "default") -> dict:
    """Watch a healthy live session (720p with the default preset) for `samples` monitor samples
    (1 s apart), the monitor started as soon as the session serves metrics; see the module doc."""
    env = dict(os.environ, XDG_RUNTIME_DIR=str(workdir))
    live = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "-o", str(workdir / "rec.mkv"), "--input",
                             str(SAMPLE), "--loop", "--preset", preset, "--quiet"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    mon = None
    try:
        _wait_for_discovery(workdir, live)
        mon = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "monitor", "--pid", str(live.pid), "--json",
                                "--interval", "1"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        lines = []
        for line in mon.stdout:  # one JSON object per sample: the watch ends after `samples` of them
            lines.append(json.loads(line))
            if len(lines) >= samples:
                break
        mon.send_signal(signal.SIGINT)
        rest, err = mon.communicate(timeout=30)
        lines += [json.loads(x) for x in rest.splitlines() if x.startswith("{")]
        if mon.returncode != 0:
            raise RuntimeError(f"monitor failed ({mon.returncode}): {err[-500:]}")
    finally:
        for p in (mon, live):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
    got = [s for s in lines if s["type"] == "sample"]
    summary = next(s for s in lines if s["type"] == "summary")
    fps = sorted(s["engine"]["fps_now"] for s in got if s.get("engine") and s["engine"].get("fps_now") is not None)
    return {
        "samples": len(got), "watched_s": got[-1]["elapsed_s"] if got else 0.0,
        "flagged_samples": sum(s["leak_suspected"] for s in got), "summary_leak_suspected": summary["leak_suspected"],
        "max_slope_mb_per_h": max(s["slope_mb_per_h"] for s in got),
        "max_fit_growth_mb": max(s["fit_growth_mb"] for s in got),
        "rss_mb_first": got[0]["rss_mb"], "rss_mb_last": got[-1]["rss_mb"],
        "children_rss_mb_max": summary["children_rss_mb_max"],
        "engine_fps_now_min": fps[0] if fps else None, "engine_fps_now_median": fps[len(fps) // 2] if fps else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--preset", default="default", help="live preset (default: 720p)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dhlive-bench-") as d:
        res = watch_healthy_live(a.seconds, Path(d), a.preset)
        res["preset"] = a.preset
    print(json.dumps(res))


if __name__ == "__main__":
    main()
