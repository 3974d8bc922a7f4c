"""`make bench`: every benchmark, one JSON result (benchmarks/results/latest.json) and a table.

    python benchmarks/run_all.py [--quick]

--quick shortens inputs (speed: 10 s x 1, memory: 1 vs 10 min, soak: 1.5 min, monitor: 10 s) for
a smoke run; the figures in the README come from a full run (about 25 minutes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run(script: str, *args: str) -> dict:
    out = HERE / "results" / f"{Path(script).stem}-{args[0] if args else 'all'}.json"
    out.parent.mkdir(exist_ok=True)
    cmd = [sys.executable, str(HERE / script), "--json", str(out), *args]
    print(f"\n$ {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    import psutil

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip(),
    }
    if a.quick:
        result["render_speed"] = run("bench_render.py", "speed", "--seconds", "10", "--repeats", "1")
        result["render_memory"] = run("bench_render.py", "memory", "--short", "60", "--long", "600")
    else:
        result["render_speed"] = run("bench_render.py", "speed")
        result["render_memory"] = run("bench_render.py", "memory")
    result["live_soak"] = run("bench_live.py", "--minutes", "1.5" if a.quick else "10")
    print(f"\n$ bench_monitor.py", flush=True)
    p = subprocess.run([sys.executable, str(HERE / "bench_monitor.py"), "--seconds", "10" if a.quick else "30"],
                       capture_output=True, text=True, cwd=ROOT)
    mon_lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    result["monitor_cost"] = json.loads(mon_lines[-1]) if mon_lines else {"error": p.stderr[-300:]}
    print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr[-300:])
    if (ROOT / "models" / "lipsync-v1.onnx").is_file() and (HERE / "bench_lipsync_model.py").is_file():
        print("\n$ bench_lipsync_model.py", flush=True)
        p = subprocess.run([sys.executable, str(HERE / "bench_lipsync_model.py")], capture_output=True, text=True, cwd=ROOT)
        print(p.stdout)
        result["lipsync_model"] = p.stdout.strip().splitlines()

    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "latest.json").write_text(json.dumps(result, indent=2))
    sp, mem = result["render_speed"], result["render_memory"]
    print(f"\n## dhlive benchmarks  {result['date']}  ({result['machine']}, git {result['git']})\n")
    print(f"| render ({sp['seconds']:.0f} s speech, x264 {sp['x264_preset']}) | dhlive | encode-only floor | ratio |")
    print("| --- | --- | --- | --- |")
    for size, r in sp["sizes"].items():
        print(f"| {size} | {r['render_rtf']}x real time ({r['render_fps']} fps) | {r['floor_rtf']}x ({r['floor_fps']} fps) | {r['ratio']} |")
    print(f"\n| render memory | input | peak RSS dhlive | peak RSS ffmpeg child |")
    print("| --- | --- | --- | --- |")
    for k in ("short", "long"):
        m = mem[k]
        print(f"| {k} | {m['input_s'] / 60:.0f} min | {m['peak_rss_mb']} MB | {m['peak_ffmpeg_rss_mb']} MB |")
    print(f"\nlong/short peak RSS: {mem['long_over_short']}")
    so = result["live_soak"]
    print(f"\n| live soak ({so['minutes']} min, {so['size']}) | delivered fps | late frames | RSS slope after 1 min | push -> talking (median) |")
    print("| --- | --- | --- | --- | --- |")
    lat = so["latency_ms_median"]
    print(f"| local nginx-rtmp | {so['delivered_fps']} | {so['late_frames']} of {so['frames']} ({so['late_pct']} %) | "
          f"{so['rss_slope_mb_per_run_after_1min']} MB | {'-' if lat is None else f'{lat:.0f} ms'} |")
    mc = result["monitor_cost"]
    if "monitor_rss_mb_peak" in mc:
        print(f"\nmonitor at 1 Hz: RSS {mc['monitor_rss_mb_peak']} MB, CPU {mc['cpu_pct_steady']} % steady")
    print(f"\nwritten: {HERE / 'results' / 'latest.json'}")


if __name__ == "__main__":
    main()
