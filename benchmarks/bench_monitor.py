"""Cost of watching: `dhlive monitor` at 1 Hz against a sleeping process, measured from outside.

    python benchmarks/bench_monitor.py [--seconds 30] [--interval 1] [--mode dashboard|plain|json]

dashboard (default) runs the monitor on a pseudo-terminal so the rich Live panel redraws at
~4 Hz as it would for a person; plain and json pipe stdout. Prints the monitor's peak and last
RSS (target <= 80 MB) and its CPU % (target <= 3 %) as one JSON object: cpu_pct_steady leaves out
the first 3 s (interpreter start and imports), cpu_pct_total does not.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ("import typer; from dhlive_cli.commands.monitor import monitor; "
           "app = typer.Typer(add_completion=False, pretty_exceptions_enable=False); "
           "app.command('monitor')(monitor); app.callback()(lambda: None); app()")
RSS_TARGET_MB, CPU_TARGET_PCT, WARMUP_S = 80.0, 3.0, 3.0


def monitor_argv() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from dhlive_cli import cli

    if any(c.name == "monitor" for c in cli.app.registered_commands):
        return [sys.executable, "-m", "dhlive_cli", "monitor"]
    return [sys.executable, "-c", WRAPPER, "monitor"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--mode", choices=("dashboard", "plain", "json"), default="dashboard")
    args = ap.parse_args()

    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1e6)"])
    argv = monitor_argv() + ["--pid", str(target.pid), "--interval", str(args.interval)]
    if args.mode == "json":
        argv.append("--json")
    drained = bytearray()
    if args.mode == "dashboard":
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
        mon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT, env=env)
        os.close(slave)

        def drain():  # a full pty would block the monitor's writes and fake a low CPU figure
            while True:
                try:
                    b = os.read(master, 65536)
                except OSError:
                    return
                if not b:
                    return
                drained.extend(b[-4096:])

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    else:
        mon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=ROOT)
        reader = threading.Thread(target=lambda: drained.extend(mon.stdout.read()), daemon=True)
        reader.start()

    p = psutil.Process(mon.pid)
    t_start = time.monotonic()
    rss_peak = rss_last = 0.0
    cpu_at_warm = None
    t_warm = None
    try:
        while time.monotonic() - t_start < args.seconds:
            time.sleep(0.2)
            with p.oneshot():
                rss_last = p.memory_info().rss / 2**20
                cpu = p.cpu_times()
            rss_peak = max(rss_peak, rss_last)
            if cpu_at_warm is None and time.monotonic() - t_start >= WARMUP_S:
                cpu_at_warm, t_warm = cpu.user + cpu.system, time.monotonic()
        cpu = p.cpu_times()
        t_end = time.monotonic()
        mon.send_signal(signal.SIGINT)  # the monitor ends its watch with a summary, exit 0
        rc = mon.wait(timeout=10)
    finally:
        for q in (mon, target):
            if q.poll() is None:
                q.kill()
                q.wait()
    used = cpu.user + cpu.system
    result = {
        "mode": args.mode, "interval_s": args.interval, "seconds": round(t_end - t_start, 1),
        "monitor_rss_mb_peak": round(rss_peak, 1), "monitor_rss_mb_last": round(rss_last, 1),
        "cpu_pct_total": round(100 * used / (t_end - t_start), 2),
        "cpu_pct_steady": round(100 * (used - cpu_at_warm) / (t_end - t_warm), 2) if t_warm else None,
        "monitor_exit": rc,
        "rss_ok": rss_peak <= RSS_TARGET_MB,
    }
    result["cpu_ok"] = result["cpu_pct_steady"] is not None and result["cpu_pct_steady"] <= CPU_TARGET_PCT
    print(json.dumps(result))
    return 0 if result["rss_ok"] and result["cpu_ok"] and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
