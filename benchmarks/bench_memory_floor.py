"""Memory floor: what an idle `dhlive live` holds at 720p, and whether it moves.

    python benchmarks/bench_memory_floor.py [--seconds 60] [--warmup 10] [--size 720p] [--target rtmp|file]

Starts the real CLI with no speech input (the avatar idles: breathing, sway, blinks), streaming to a
local nginx-rtmp (or, with --target file or without nginx, recording to a temp .mkv). After
--warmup seconds it samples once a second for --seconds: RSS of the dhlive process and of its ffmpeg
encoder child. Prints their medians and the slope of the dhlive RSS (least squares, MB per hour,
and the change it makes over the sampled window), then stops the stream with SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import median  # noqa: E402
from tests.rtmp_server import RtmpServer, available  # noqa: E402

MB = 2**20


def sample(pid: int) -> tuple[float, float] | None:
    """(dhlive RSS, encoder child RSS) in MB, or None once the process is gone."""
    try:
        p = psutil.Process(pid)
        main = p.memory_info().rss
        kids = 0
        for c in p.children(recursive=True):
            try:
                kids += c.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        return None
    return main / MB, kids / MB


def measure(seconds: float, warmup: float, size: str, target: str, every: float = 1.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="dhlive-bench-") as d:
        srv = RtmpServer(Path(d) / "nginx").start() if target == "rtmp" else None
        try:
            out = ["--rtmp", srv.url("floor")] if srv else ["-o", str(Path(d) / "idle.mkv")]
            cmd = [sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "default", "--size", size, *out]
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                t_start = time.monotonic()
                while time.monotonic() - t_start < warmup:
                    if p.poll() is not None:
                        raise SystemExit(f"dhlive live exited during warm-up: {p.stderr.read().decode()[-500:]}")
                    time.sleep(0.2)
                t0 = time.monotonic()
                ts, main, kids = [], [], []
                k = 0
                while (now := time.monotonic()) - t0 < seconds:
                    s = sample(p.pid)
                    if s is None:
                        raise SystemExit(f"dhlive live exited: {p.stderr.read().decode()[-500:]}")
                    ts.append(now - t0)
                    main.append(s[0])
                    kids.append(s[1])
                    k += 1
                    time.sleep(max(0.0, t0 + k * every - time.monotonic()))  # paced from the start
                p.send_signal(signal.SIGINT)
                _, err = p.communicate(timeout=20)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        finally:
            if srv:
                srv.kill()
    t, m = np.array(ts), np.array(main)
    slope = float(np.polyfit(t, m, 1)[0]) if len(t) > 2 else float("nan")  # MB per second
    return {
        "size": size, "target": target, "warmup_s": warmup, "seconds": round(float(t[-1]), 1),
        "samples": len(t),
        "dhlive_rss_mb_median": round(median(main), 1),
        "dhlive_rss_mb_min": round(min(main), 1), "dhlive_rss_mb_max": round(max(main), 1),
        "ffmpeg_rss_mb_median": round(median(kids), 1),
        "dhlive_rss_slope_mb_per_hour": round(slope * 3600, 2),
        "dhlive_rss_change_over_window_mb": round(slope * float(t[-1]), 2),
        "exit_code": p.returncode,
        "summary": err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="sampled window after the warm-up")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--size", default="720p")
    ap.add_argument("--target", choices=("rtmp", "file"), default="rtmp" if available() else "file")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_memory_floor.json")
    a = ap.parse_args()
    if a.target == "rtmp" and not available():
        raise SystemExit("--target rtmp needs nginx with the rtmp module (make setup installs it)")
    res = measure(a.seconds, a.warmup, a.size, a.target)
    for k, v in res.items():
        print(f"{k:>34}: {v}")
    print(f"idle live {res['size']} -> {res['target']}: dhlive RSS median {res['dhlive_rss_mb_median']} MB, "
          f"ffmpeg {res['ffmpeg_rss_mb_median']} MB, slope {res['dhlive_rss_slope_mb_per_hour']:+.2f} MB/h "
          f"({res['dhlive_rss_change_over_window_mb']:+.2f} MB over {res['seconds']:.0f} s)")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
