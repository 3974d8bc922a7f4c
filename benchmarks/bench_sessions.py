"""Concurrency: how many 360p25 live sessions one process sustains, all sharing one inference pool.

    python benchmarks/bench_sessions.py [--counts 4,8,16,20,24,28] [--seconds 40] [--every 3]

For each count N: one Studio (the object behind `dhlive live --sessions`) runs N sessions, each
streaming to its own key on a local nginx-rtmp, each fed an utterance every few seconds
(staggered). After a warm-up, every session's delivered fps (frames its RTMP encoder took /
wall time) and late frames are measured over --seconds, with the clock's inference calls per
tick. A count passes when EVERY session delivers >= 24.9 fps with late frames <= 0.5 %. The
ramp stops after the first count that fails; the result is the largest count that passed.

Per count it also splits the CPU of the measured window between dhlive itself (clock,
inference, drawing, I420 conversion, pipes; its draw processes included) and its encoder children (x264 + aac + flv on
exactly the frames dhlive delivered): per session, and as encoder / (dhlive + encoders), the
share of the CPU that goes to the encoder it cannot avoid. Encoder memory per session is each
ffmpeg child's PSS (its private pages plus its share of the pages it shares with the other
encoders: ffmpeg's libraries, about 42 MB of RSS in every child but in memory once), median
and max over the sessions, criterion <= 40 MB; RSS, which counts the shared libraries in
every child again, is printed beside it. The load average is printed beside each row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_live import utterances  # noqa: E402
from dhlive_cli.inference import InferenceOptions, InferencePool  # noqa: E402
from dhlive_cli.memtune import pin_mmap_threshold  # noqa: E402
from dhlive_cli.presets import load_preset, parse_size  # noqa: E402
from dhlive_cli.session_spec import SessionSpec  # noqa: E402
from dhlive_cli.studio import Studio, live_encoder  # noqa: E402
from tests.rtmp_server import RtmpServer, available  # noqa: E402

MIN_FPS = 24.9
MAX_ENCODER_MB = 40.0


def _is_draw_process(c: psutil.Process) -> bool:
    """A draw process of the studio (live.draw_worker): dhlive's own work, not an encoder."""
    try:
        return "dhlive_cli.live.draw_worker" in " ".join(c.cmdline())
    except psutil.Error:
        return False


def _cpu_split(proc: psutil.Process) -> tuple[float, dict[int, float], dict[int, float]]:
    """CPU seconds (user + system) of this process, of each encoder child and of each draw
    process (by pid)."""
    t = proc.cpu_times()
    kids, draws = {}, {}
    for c in proc.children():
        try:
            ct = c.cpu_times()
            (draws if _is_draw_process(c) else kids)[c.pid] = ct.user + ct.system
        except psutil.Error:
            pass
    return t.user + t.system, kids, draws
MAX_LATE = 0.005


def run_count(n: int, size: str, seconds: float, warmup: float, every: float, talk,
              draw_processes: int | None = None) -> dict:
    preset = load_preset("low")
    w, h = parse_size(size)
    preset = replace(preset, width=w, height=h)
    pool = InferencePool(None, InferenceOptions(sessions=preset.inference_sessions, intra_threads=preset.inference_threads))
    studio = Studio(pool, preset, live_encoder(preset, sessions=n), max_sessions=n, draw_processes=draw_processes)
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as d, RtmpServer(Path(d) / "nginx") as srv:
        try:
            for i in range(n):
                studio.create(SessionSpec(name=f"s{i}", rtmp=(srv.url(f"s{i}"),)))
            sessions = list(studio.sessions().values())
            t0 = time.monotonic()
            # staggered: session i first speaks i * every / n seconds in
            next_push = [t0 + 0.5 + i * every / n for i in range(n)]
            k = [0] * n
            marks = {}
            end = t0 + warmup + seconds
            proc.cpu_percent(None)
            while (now := time.monotonic()) < end:
                if "start" not in marks and now >= t0 + warmup:
                    marks["start"] = (now, [s.snapshot() for s in sessions], studio.conductor.snapshot())
                    proc.cpu_percent(None)
                    marks["cpu"] = _cpu_split(proc)
                for i, s in enumerate(sessions):
                    if now >= next_push[i]:
                        u = talk[k[i] % len(talk)]
                        s.speech.push(u)
                        k[i] += 1
                        next_push[i] = now + every + len(u) / 16000
                time.sleep(0.05)
            t_end = time.monotonic()
            snaps = [s.snapshot() for s in sessions]
            clock = studio.conductor.snapshot()
            cpu = proc.cpu_percent(None)
            cpu_end = _cpu_split(proc)
            rss = proc.memory_info().rss / 2**20
            kids, pss = [], []
            draw_rss = 0.0
            for c in proc.children():
                try:
                    if _is_draw_process(c):
                        draw_rss += c.memory_info().rss / 2**20
                        continue
                    kids.append(c.memory_info().rss / 2**20)
                    pss.append(c.memory_full_info().pss / 2**20)
                except psutil.Error:
                    pass
            enc_rss = sum(kids)
            load = os.getloadavg()[0]
        finally:
            studio.close()
    t_start, snaps0, clock0 = marks["start"]
    wall = t_end - t_start
    per = []
    for a, b in zip(snaps0, snaps):
        frames = b["frames"] - a["frames"]
        late = b["late_frames"] - a["late_frames"]
        written = b["outputs"][0]["frames_written"] - a["outputs"][0]["frames_written"]
        per.append({"session": b["session"], "delivered_fps": round(written / wall, 3),
                    "late_pct": round(100 * late / max(1, frames), 3), "reconnects": b["outputs"][0]["reconnects"],
                    "latency_ms_median": b["latency_ms_median"]})
    # dhlive's own CPU: this process and its draw processes
    own = cpu_end[0] - marks["cpu"][0] + sum(v - marks["cpu"][2].get(pid, 0.0) for pid, v in cpu_end[2].items())
    enc = sum(v - marks["cpu"][1].get(pid, 0.0) for pid, v in cpu_end[1].items())
    ticks = clock["ticks"] - clock0["ticks"]
    calls = clock["inference_calls"] - clock0["inference_calls"]
    ok = all(p["delivered_fps"] >= MIN_FPS and p["late_pct"] <= 100 * MAX_LATE for p in per)
    mem_ok = bool(pss) and max(pss) <= MAX_ENCODER_MB
    return {
        "sessions": n, "ok": ok, "encoder_memory_ok": mem_ok, "seconds": round(wall, 1),
        "min_delivered_fps": min(p["delivered_fps"] for p in per),
        "max_late_pct": max(p["late_pct"] for p in per),
        "inference_calls_per_tick": round(calls / max(1, ticks), 4),
        "late_ticks": clock["late_ticks"] - clock0["late_ticks"],
        "process_cpu_pct": round(cpu, 1), "rss_mb": round(rss, 1), "draw_processes_rss_mb": round(draw_rss, 1),
        "encoders_rss_mb": round(enc_rss, 1),
        "encoder_rss_mb_median": round(statistics.median(kids), 1) if kids else None,
        "encoder_rss_mb_max": round(max(kids), 1) if kids else None,
        "encoder_pss_mb_median": round(statistics.median(pss), 1) if pss else None,
        "encoder_pss_mb_max": round(max(pss), 1) if pss else None,
        "dhlive_cpu_ms_per_frame": round(1000 * own / max(1, n * wall * 25), 3),
        "encoder_cpu_ms_per_frame": round(1000 * enc / max(1, n * wall * 25), 3),
        "encoder_cpu_share": round(enc / max(1e-9, own + enc), 3), "load_avg_1min": round(load, 2),
        "per_session": per,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="4,8,16,20,24,28")
    ap.add_argument("--size", default="360p")
    ap.add_argument("--seconds", type=float, default=40.0, help="measured seconds per count")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--every", type=float, default=3.0, help="seconds of silence between a session's utterances")
    ap.add_argument("--draw-processes", type=int, default=None,
                    help="the Studio's draw processes (default: its own, two per core; 0: none)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if not available():
        raise SystemExit("needs nginx with the rtmp module (make setup installs it)")
    pin_mmap_threshold()
    talk = utterances()
    steps = []
    for n in (int(x) for x in a.counts.split(",")):
        r = run_count(n, a.size, a.seconds, a.warmup, a.every, talk, a.draw_processes)
        steps.append(r)
        print(f"{n:3d} sessions: {'ok  ' if r['ok'] else 'FAIL'} min fps {r['min_delivered_fps']:.3f}, "
              f"max late {r['max_late_pct']:.2f} %, inference calls/tick {r['inference_calls_per_tick']:.3f}, "
              f"CPU {r['process_cpu_pct']:.0f} %, RSS {r['rss_mb']:.0f} MB (+ draw processes "
              f"{r['draw_processes_rss_mb']:.0f} MB, + encoders {r['encoders_rss_mb']:.0f} MB, "
              f"each RSS median {r['encoder_rss_mb_median']} / max {r['encoder_rss_mb_max']} MB, PSS median "
              f"{r['encoder_pss_mb_median']} / max {r['encoder_pss_mb_max']} MB "
              f"{'ok' if r['encoder_memory_ok'] else 'OVER'} <= {MAX_ENCODER_MB:.0f}); per frame dhlive "
              f"{r['dhlive_cpu_ms_per_frame']} ms CPU, encoder {r['encoder_cpu_ms_per_frame']} ms "
              f"(encoder share {r['encoder_cpu_share']:.2f})  [load {r['load_avg_1min']}]",
              flush=True)
        if not r["ok"]:
            break
    passed = [r["sessions"] for r in steps if r["ok"]]
    res = {"size": a.size, "cores": os.cpu_count(), "criteria": f"every session >= {MIN_FPS} fps, late <= {100 * MAX_LATE} %",
           "encoder_memory_criterion_mb": MAX_ENCODER_MB,
           "max_sessions_sustained": max(passed) if passed else 0, "steps": steps}
    print(f"max sustained: {res['max_sessions_sustained']} sessions at {a.size} in one process "
          f"({res['criteria']})")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
