"""Render-farm throughput: `dhlive batch` against the same jobs run one after another.

    python benchmarks/bench_batch.py [--jobs 40] [--seconds 5] [--json OUT]

The jobs: --jobs renders of about --seconds of speech each (8 different clips cut from the
bundled sample, none a whole number of frames long), 360p, preset low, alternating two avatars
(the embedded one and a recoloured copy). Measured, each from a fresh output folder:

- sequential: one `dhlive render` process per job, one after another (the baseline: what a
  shell loop does today; each process loads the model and the avatar again);
- local pool: `dhlive batch` with 1 and 2 worker processes;
- Ray on this machine: `dhlive batch --ray local` with 1 and 2 worker actors;
- Ray on a two-node cluster (a head and a second raylet on this machine, 1 CPU each, loopback):
  `dhlive batch --ray ADDRESS`, and every output is checked against the sequential render of
  the same job: ffprobe frame count = ceil(samples / 640) at 25 fps, the same frame count, and
  the same decoded audio samples.

jobs/min counts the jobs over the run's own time (`elapsed_s` of the summary: from the first job
handed out to the last result, i.e. with workers already started); `startup_s` is what came
before (Python, a Ray cluster, workers loading the model); `wall_ratio_to_sequential` compares
whole command times, startup included. `overhead_ms` is the median of
(round trip seen by the driver - render time on the worker) per job: what the pool adds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, speech_file  # noqa: E402
from dhlive_cli.compositor import DEFAULT_AVATAR  # noqa: E402
from dhlive_cli.ffmpeg_bin import ffmpeg_path  # noqa: E402


def make_jobs(tmp: Path, n: int, seconds: float) -> tuple[Path, list[dict]]:
    long = speech_file(tmp / "long.wav", 60.0)
    audio, sr = sf.read(long, dtype="float32")
    clips = []
    for i in range(8):
        k = int(seconds * sr) + 97 * i + 13
        start = int(i * 6.1 * sr) % (len(audio) - k)
        p = tmp / f"clip{i}.wav"
        sf.write(p, audio[start:start + k], sr, subtype="PCM_16")
        clips.append((p, k))
    av = tmp / "avatar-b"
    av.mkdir(exist_ok=True)
    spec = (DEFAULT_AVATAR / "avatar.toml").read_text()
    spec = spec.replace('hair_style = "bob"', 'hair_style = "long"').replace('clothing = "blazer"', 'clothing = "crew"')
    (av / "avatar.toml").write_text(spec.replace('"#34506f"', '"#7a2e3b"'))
    rows = []
    for j in range(n):
        clip, k = clips[j % len(clips)]
        rows.append({"audio": str(clip), "output": f"job{j:03d}.mp4", "size": "360p", "preset": "low",
                     "avatar": str(av) if j % 2 else None, "samples": k})
    jobs = tmp / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "samples"}) + "\n" for r in rows))
    return jobs, rows


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    # a loopback-only cluster: keep Ray's driver from rewriting 127.0.0.1 to the outward address
    e["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return e


def sequential(rows: list[dict], out: Path) -> dict:
    out.mkdir()
    t0 = time.monotonic()
    for r in rows:
        cmd = [sys.executable, "-m", "dhlive_cli", "render", r["audio"], "-o", str(out / r["output"]),
               "--size", r["size"], "--preset", r["preset"], "--metrics", "off", "--json"]
        if r["avatar"]:
            cmd += ["--avatar", r["avatar"]]
        subprocess.run(cmd, check=True, capture_output=True, env=env(), cwd=ROOT)
    wall = time.monotonic() - t0
    return {"wall_s": round(wall, 2), "jobs_per_min": round(len(rows) / wall * 60, 2)}


def batch(jobs: Path, out: Path, *extra: str) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", "batch", str(jobs), "--out-dir", str(out), "--json",
                        "--metrics", "off", *extra], capture_output=True, text=True, env=env(), cwd=ROOT)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"batch {' '.join(extra)} failed ({p.returncode}): {p.stderr[-800:]}")
    s = json.loads(p.stdout)
    return {"wall_s": round(wall, 2), "elapsed_s": s["elapsed_s"], "startup_s": round(wall - s["elapsed_s"], 2),
            "jobs_per_min": s["jobs_per_min"], "overhead_ms": s["overhead_ms"], "ok": s["ok"],
            "failed": s["failed"], "workers": s["workers"]}


def decoded_audio(path: Path) -> np.ndarray:
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-vn", "-f", "f32le", "-ac", "1", "pipe:1"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def frame_count(path: Path) -> int:
    import shutil

    probe = shutil.which("ffprobe")
    if probe is None:
        raise SystemExit("ffprobe not found (make setup installs ffmpeg)")
    out = subprocess.run([probe, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=nb_read_frames,r_frame_rate", "-of", "json", str(path)],
                         capture_output=True, check=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    assert s["r_frame_rate"] == "25/1", s
    return int(s["nb_read_frames"])


def verify(rows: list[dict], farm: Path, ref: Path) -> dict:
    """Every farm output against its sequential render: frames = ceil(samples/640), equal audio."""
    bad = []
    for r in rows:
        want = math.ceil(r["samples"] / 640)
        a, b = farm / r["output"], ref / r["output"]
        fa, fb = frame_count(a), frame_count(b)
        same_audio = np.array_equal(decoded_audio(a), decoded_audio(b))
        if not (fa == fb == want and same_audio):
            bad.append({"output": r["output"], "frames": fa, "single_frames": fb, "want": want, "audio_equal": same_audio})
    recs = [json.loads(x) for x in (farm / "results.jsonl").read_text().splitlines()]
    return {"jobs": len(rows), "identical": len(rows) - len(bad), "mismatches": bad[:5],
            "results_lines": len(recs), "nodes": sorted({r["node"] for r in recs})}


def two_node(jobs: Path, rows: list[dict], out: Path, ref: Path) -> dict:
    from ray.cluster_utils import Cluster

    store = 100 * 2**20
    t0 = time.monotonic()
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "object_store_memory": store, "include_dashboard": False, "node_ip_address": "127.0.0.1"})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=store, node_ip_address="127.0.0.1")
        started = time.monotonic() - t0
        r = batch(jobs, out, "--ray", cluster.address)
        r["cluster_start_s"] = round(started, 2)
    finally:
        cluster.shutdown()
    r["check"] = verify(rows, out, ref)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = ap.parse_args()
    try:
        import ray  # noqa: F401
        have_ray = True
    except ImportError:
        have_ray = False
        print("ray not installed (pip install 'dhlive[farm]'): Ray rows skipped", flush=True)
    res: dict = {"jobs": a.jobs, "seconds_per_job": a.seconds, "size": "360p", "preset": "low", "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="dhlive-bench-") as d:
        tmp = Path(d)
        jobs, rows = make_jobs(tmp, a.jobs, a.seconds)
        res["sequential"] = seq = sequential(rows, tmp / "seq")
        print(f"sequential dhlive render: {seq['jobs_per_min']} jobs/min ({seq['wall_s']} s)", flush=True)
        runs = [("local_1", ("--workers", "1")), ("local_2", ("--workers", "2"))]
        if have_ray:
            runs += [("ray_local_1", ("--ray", "local", "--workers", "1")),
                     ("ray_local_2", ("--ray", "local", "--workers", "2"))]
        for name, extra in runs:
            r = batch(jobs, tmp / name, *extra)
            r["ratio_to_sequential"] = round(r["jobs_per_min"] / seq["jobs_per_min"], 2)
            r["wall_ratio_to_sequential"] = round(seq["wall_s"] / r["wall_s"], 2)
            res[name] = r
            print(f"{name}: {r['jobs_per_min']} jobs/min (x{r['ratio_to_sequential']} sequential; "
                  f"x{r['wall_ratio_to_sequential']} end to end), "
                  f"startup {r['startup_s']} s, overhead {r['overhead_ms']} ms/job, {r['ok']} ok", flush=True)
        if have_ray:
            r = two_node(jobs, rows, tmp / "ray_two_nodes", tmp / "seq")
            r["ratio_to_sequential"] = round(r["jobs_per_min"] / seq["jobs_per_min"], 2)
            r["wall_ratio_to_sequential"] = round(seq["wall_s"] / r["wall_s"], 2)
            res["ray_two_nodes"] = r
            c = r["check"]
            print(f"ray_two_nodes: {r['jobs_per_min']} jobs/min (x{r['ratio_to_sequential']}), {r['ok']} ok, "
                  f"overhead {r['overhead_ms']} ms/job; {c['identical']}/{c['jobs']} identical to single renders "
                  f"(frames, audio), {c['results_lines']} result lines, nodes {len(c['nodes'])}", flush=True)
    print(json.dumps(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
