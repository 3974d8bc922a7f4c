"""`make bench`: every benchmark, one JSON result (benchmarks/results/latest.json) and a table.

    python benchmarks/run_all.py [--quick]

--quick shortens every input (render speed 10 s x 1, memory 1 vs 10 min, start-up 3 runs, soak 1.5 min, memory floor
20 s, avatar memory 0.5 vs 1.5 min, concurrency 4 and 8 sessions x 15 s, 8 RTMP server restarts
instead of 50, monitor 10 s) for a smoke run; the figures in the README come from a full run
(about an hour; the 50 server restarts take 12 minutes of it on an idle machine).
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
    result["startup"] = run("bench_startup.py", "--repeats", "3" if a.quick else "5")
    result["live_soak"] = run("bench_live.py", "--minutes", "1.5" if a.quick else "10")
    result["live_fps"] = run("bench_live_fps.py", "--fps", "30", "--seconds", "20" if a.quick else "60")
    result["memory_floor"] = run("bench_memory_floor.py", "--seconds", "20" if a.quick else "60")
    result["avatar_compose"] = run("bench_avatar.py", "compose", "--frames", "200" if a.quick else "600")
    result["avatar_memory"] = run("bench_avatar.py", "memory", *(["--short", "30", "--long", "90"] if a.quick else []))
    result["concurrency"] = run("bench_sessions.py", *(["--counts", "4,8", "--seconds", "15"] if a.quick
                                                      else ["--counts", "4,8,16,20,24,28", "--seconds", "40"]))
    result["batch"] = run("bench_batch.py", "--jobs", "12" if a.quick else "40")
    result["reconnects"] = run("bench_reconnect.py", "--quiet", "--cycles", "8" if a.quick else "50")
    result["webrtc_latency"] = run("bench_webrtc.py", "--trials", "3" if a.quick else "10")
    print("\n$ bench_monitor.py", flush=True)
    p = subprocess.run([sys.executable, str(HERE / "bench_monitor.py"), "--seconds", "10" if a.quick else "30"],
                       capture_output=True, text=True, cwd=ROOT)
    mon_lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    result["monitor_cost"] = json.loads(mon_lines[-1]) if mon_lines else {"error": p.stderr[-300:]}
    print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr[-300:])
    if (ROOT / "models" / "lipsync-v2.onnx").is_file() and (HERE / "bench_lipsync_model.py").is_file():
        print("\n$ bench_lipsync_model.py", flush=True)
        p = subprocess.run([sys.executable, str(HERE / "bench_lipsync_model.py")], capture_output=True, text=True, cwd=ROOT)
        print(p.stdout)
        result["lipsync_model"] = p.stdout.strip().splitlines()

    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "latest.json").write_text(json.dumps(result, indent=2))
    sp, mem = result["render_speed"], result["render_memory"]
    print(f"\n## dhlive benchmarks  {result['date']}  ({result['machine']}, git {result['git']})\n")
    print(f"| render ({sp['seconds']:.0f} s speech, x264 {sp['x264_preset']}) | dhlive | x264 alone, same frames | "
          f"render / floor | CPU floor / render | load avg |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, r in sp["sizes"].items():
        print(f"| {size} | {r['render_rtf']}x real time ({r['render_fps']} fps) | {r['floor_rtf']}x ({r['floor_fps']} fps) | "
              f"**{r['ratio']}** | {r['cpu_ratio']} | {r['load_avg_1min'][0]} -> {r['load_avg_1min'][1]} |")
    st = result["startup"]
    print(f"\nstart-up: `dhlive render` of a 1 s input {st['render_1s_wall_s']} s wall median ({st['render_1s_cpu_s']} s CPU), "
          f"`dhlive --help` {st['help_wall_s']} s ({st['help_cpu_s']} s CPU), load {st['load_avg_1min'][0]} -> {st['load_avg_1min'][1]}")
    print("\n| render memory | input | peak RSS dhlive | peak RSS ffmpeg child |")
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
    mf = result["memory_floor"]
    print(f"\nmemory floor: idle live {mf['size']} -> {mf['target']}: dhlive RSS median {mf['dhlive_rss_mb_median']} MB "
          f"(ffmpeg encoder {mf['ffmpeg_rss_mb_median']} MB), slope {mf['dhlive_rss_slope_mb_per_hour']:+.2f} MB/h over {mf['seconds']:.0f} s")
    ac, am = result["avatar_compose"], result["avatar_memory"]
    print("\n| photo/video avatar compose, 720p, one core | wall median / p99 | compose thread CPU median / p99 |")
    print("| --- | --- | --- |")
    for key, label in (("photo", "photo"), ("video_decoder_on_other_core", "video, decoder on another core"),
                       ("video_all_on_one_core", "video, decoder on the same core")):
        if key in ac:
            r = ac[key]
            print(f"| {label} | {r['wall_median_ms']} / {r['wall_p99_ms']} ms | {r['cpu_median_ms']} / {r['cpu_p99_ms']} ms |")
    print("\n| video avatar render | input | loop | peak RSS dhlive | peak RSS children |")
    print("| --- | --- | --- | --- | --- |")
    for label, r in am.items():
        if isinstance(r, dict):
            print(f"| {label} | {r['input_s'] / 60:g} min | {r['loop']} | {r['peak_rss_mb']} MB | {r['peak_children_rss_mb']} MB |")
    print(f"\nvideo avatar peak RSS long/short input: {am['long_over_short']}, long/short loop: {am['long_loop_over_short_loop']}")
    cc = result["concurrency"]
    print(f"\n| live sessions in one process ({cc['size']}, speech every few s) | min delivered fps | max late | "
          f"inference calls/tick | CPU per frame: dhlive / encoder (encoder share) | encoder PSS (RSS) median | load avg |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in cc["steps"]:
        print(f"| {r['sessions']} {'' if r['ok'] else '(fails)'} | {r['min_delivered_fps']} | {r['max_late_pct']} % | "
              f"{r['inference_calls_per_tick']} | {r['dhlive_cpu_ms_per_frame']} / {r['encoder_cpu_ms_per_frame']} ms "
              f"({r['encoder_cpu_share']}) | {r['encoder_pss_mb_median']} ({r['encoder_rss_mb_median']}) MB | {r['load_avg_1min']} |")
    print(f"\nmax sustained: {cc['max_sessions_sustained']} sessions ({cc['criteria']})")
    b = result["batch"]
    print(f"\n| batch: {b['jobs']} jobs x {b['seconds_per_job']:g} s, {b['size']} {b['preset']} | jobs/min | vs sequential (run / end to end) | start-up | overhead/job |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| sequential `dhlive render` | {b['sequential']['jobs_per_min']} | 1 | - | - |")
    for key, label in (("local_1", "local pool, 1 worker"), ("local_2", "local pool, 2 workers"),
                       ("ray_local_1", "Ray local, 1 actor"), ("ray_local_2", "Ray local, 2 actors"),
                       ("ray_two_nodes", "Ray, 2 nodes x 1 CPU")):
        if key in b:
            r = b[key]
            print(f"| {label} | {r['jobs_per_min']} | {r['ratio_to_sequential']} / {r['wall_ratio_to_sequential']} | "
                  f"{r['startup_s']} s | {r['overhead_ms']} ms |")
    if "ray_two_nodes" in b:
        c = b["ray_two_nodes"]["check"]
        print(f"\ntwo-node outputs identical to single renders: {c['identical']} of {c['jobs']}")
    rc = result["reconnects"]
    print(f"\nRTMP server killed and restarted {rc['cycles']} times under a live {rc['size']} stream: "
          f"RSS {rc['rss_growth_mb']:+.2f} MB from cycle 5 to the last ({rc['reconnects']} reconnects; "
          f"threads {rc['threads']}, files {rc['fds']}) -> {'pass' if rc['pass'] else 'FAIL'} ({rc['criterion']})")
    wr = result["webrtc_latency"]
    for key, label in (("pcm", "raw PCM"), ("wav", "a WAV file")):
        r = wr[key]
        print(f"\nbrowser preview ({wr['size']}, WebRTC, headless Chromium): /v1/speak of {label} -> mouth opening "
              f"seen in the page: median {r['median_ms']:.0f} ms of {r['trials']} (min {r['min_ms']:.0f}, "
              f"max {r['max_ms']:.0f}; target <= 400 ms)")
    mc = result["monitor_cost"]
    if "monitor_rss_mb_peak" in mc:
        print(f"\nmonitor at 1 Hz: RSS {mc['monitor_rss_mb_peak']} MB, CPU {mc['cpu_pct_steady']} % steady")
    print(f"\nwritten: {HERE / 'results' / 'latest.json'}")


if __name__ == "__main__":
    main()
