"""Reconnects cost nothing: `dhlive live --rtmp` while its RTMP server is killed and restarted.

    python benchmarks/bench_reconnect.py [--cycles 50] [--down 1.5] [--up 11] [--size 720p]

The real CLI streams the bundled sample (looped) to a local nginx-rtmp. Each cycle SIGKILLs the
server, keeps it down for --down seconds (dhlive's encoder fails, and retries fail too while
the server is away), starts it again and waits until the stream has run --up seconds without a
new loss (11 s: dhlive's backoff returns to 1 s after 10 s up, so every cycle is alike). After
each cycle it records the dhlive process's RSS, threads, open files and encoder children. Pass:
RSS after the last cycle within +5 MB of RSS after the 5th, threads and files flat, one encoder.
Figures come from the process (psutil) and its own /metrics (reconnects, frames written).

    python benchmarks/bench_reconnect.py --cycles 8 -- -o rec.mkv --listen 127.0.0.1:8765
        (more `dhlive live` options after --: a recording and the API alongside)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, SAMPLE  # noqa: E402
from tests.rtmp_server import RtmpServer, available, free_port  # noqa: E402

BASE_CYCLE = 5
MAX_GROWTH_MB = 5.0


def scrape(port: int) -> dict[str, float]:
    """The output's reconnects and frames written, from the process's Prometheus endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for name in ("dhlive_reconnects_total", "dhlive_output_frames_written_total"):
        m = re.search(rf'^{name}\{{output="0"\}} (\S+)$', text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dhlive exited ({proc.returncode}) while waiting for {what}: "
                             f"{proc.stderr.read().decode()[-800:]}")
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def figures(p: psutil.Process) -> dict:
    """RSS, threads, open files and live encoder children of the dhlive process. (The looped
    input's decoder child and its reader thread come and go with each replay of the file.)"""
    encoders = 0
    for k in p.children():
        try:
            encoders += k.status() != psutil.STATUS_ZOMBIE and "rtmp://" in " ".join(k.cmdline())
        except psutil.Error:
            pass
    return {"rss_mb": p.memory_info().rss / 2**20, "threads": p.num_threads(), "fds": p.num_fds(),
            "encoders": encoders}


def run(cycles: int, down: float, up: float, size: str, verbose: bool, extra: list[str]) -> dict:
    if not available():
        raise SystemExit("needs nginx with the rtmp module (make setup installs it)")
    mport = free_port()
    with tempfile.TemporaryDirectory() as d:
        srv = RtmpServer(Path(d) / "nginx").start()
        cmd = [sys.executable, "-m", "dhlive_cli", "live", "--rtmp", srv.url("bench"), "--input", str(SAMPLE),
               "--loop", "--quiet", "--size", size, "--metrics", f"127.0.0.1:{mport}", *extra]
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rows = []
        try:
            ps = psutil.Process(p.pid)

            def metrics():
                try:
                    return scrape(mport)
                except OSError:
                    return None

            def stable(seconds: float):
                """The stream has run `seconds` (frames written) without a new loss."""
                m0 = wait_for(metrics, 30, "metrics", p)
                while True:
                    m = wait_for(metrics, 30, "metrics", p)
                    if m["dhlive_reconnects_total"] != m0["dhlive_reconnects_total"]:
                        m0 = m
                    elif m["dhlive_output_frames_written_total"] - m0["dhlive_output_frames_written_total"] >= seconds * 25:
                        return m
                    time.sleep(0.25)

            m = stable(up)
            t0 = time.monotonic()
            rows.append(dict(figures(ps), cycle=0, reconnects=int(m["dhlive_reconnects_total"]), t_s=0.0))
            for i in range(cycles):
                r0 = wait_for(metrics, 30, "metrics", p)["dhlive_reconnects_total"]
                srv.kill()
                wait_for(lambda: (m := metrics()) and m["dhlive_reconnects_total"] > r0, 60, "the loss", p)
                time.sleep(down)
                srv.start()
                m = stable(up)
                f = figures(ps)
                f.update(cycle=i + 1, reconnects=int(m["dhlive_reconnects_total"]), t_s=round(time.monotonic() - t0, 1))
                rows.append(f)
                if verbose:
                    print(f"cycle {i + 1:3d}: RSS {f['rss_mb']:7.1f} MB, threads {f['threads']}, fds {f['fds']}, "
                          f"encoders {f['encoders']}, reconnects {f['reconnects']}", flush=True)
        finally:
            p.terminate()
            try:
                _, err = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            srv.kill()
    base = rows[min(BASE_CYCLE, len(rows) - 1)]
    last = rows[-1]
    growth = last["rss_mb"] - base["rss_mb"]
    per = growth / max(1, last["cycle"] - base["cycle"])
    return {
        "cycles": len(rows) - 1, "size": size, "down_s": down, "up_s": up,
        "reconnects": last["reconnects"],
        "rss_before_first_cycle_mb": round(rows[0]["rss_mb"], 1),
        f"rss_after_cycle_{base['cycle']}_mb": round(base["rss_mb"], 1),
        f"rss_after_cycle_{last['cycle']}_mb": round(last["rss_mb"], 1),
        "rss_growth_mb": round(growth, 2), "rss_growth_mb_per_cycle": round(per, 3),
        "threads": f"{base['threads']} -> {last['threads']}", "fds": f"{base['fds']} -> {last['fds']}",
        "encoders": f"{base['encoders']} -> {last['encoders']}",
        "pass": bool(growth <= MAX_GROWTH_MB and last["threads"] <= base["threads"] + 1
                     and last["fds"] <= base["fds"] + 1 and last["encoders"] <= 1),
        "criterion": f"RSS after the last cycle <= RSS after cycle {BASE_CYCLE} + {MAX_GROWTH_MB:g} MB; "
                     "threads and files at most 1 more (the looped input's decoder comes and goes); one encoder",
        "exit_code": p.returncode, "stderr_tail": err.decode()[-300:],
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--down", type=float, default=1.5, help="seconds the server stays down per cycle")
    ap.add_argument("--up", type=float, default=11.0, help="seconds streamed without a loss before the next kill")
    ap.add_argument("--size", default="720p")
    ap.add_argument("--json", type=Path)
    ap.add_argument("-q", "--quiet", action="store_true", help="no line per cycle")
    ap.add_argument("extra", nargs="*", help="more `dhlive live` options (after --), e.g. -- -o rec.mkv")
    a = ap.parse_args()
    res = run(a.cycles, a.down, a.up, a.size, not a.quiet, a.extra)
    for k, v in res.items():
        if k != "rows":
            print(f"{k:>28}: {v}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
