"""Live soak: a 720p stream to a local nginx-rtmp, speech pushed every few seconds.

    python benchmarks/bench_live.py [--minutes 10] [--size 720p] [--every 4]

Prints delivered fps (frames the RTMP encoder took / wall time), late frames, RSS slope after
the first minute (least-squares fit over 1 s samples, MB over the run), and the median latency
from a push to the first frame showing it. The session is driven in-process through the same
LiveSession the CLI and the API use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks  # noqa: E402,F401 - before numpy: the CLI's process settings (benchmarks/__init__.py)
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks.common import SAMPLE  # noqa: E402
from dhlive_cli.compositor import load_avatar  # noqa: E402
from dhlive_cli.inference import InferencePool  # noqa: E402
from dhlive_cli.live import LiveSession  # noqa: E402
from dhlive_cli.presets import parse_size  # noqa: E402
from dhlive_cli.sinks import EncoderOptions  # noqa: E402
from dhlive_cli.timebase import Timebase  # noqa: E402
from tests.rtmp_server import RtmpServer, available  # noqa: E402


def utterances() -> list[np.ndarray]:
    """Sentences cut from the bundled sample at its pauses (2-4 s each)."""
    import soundfile as sf

    a, sr = sf.read(SAMPLE, dtype="float32")
    a = np.interp(np.linspace(0, len(a) - 1, int(len(a) * 16000 / sr)), np.arange(len(a)), a).astype(np.float32)
    frames = np.sqrt(np.mean(a[: len(a) // 640 * 640].reshape(-1, 640) ** 2, axis=1))
    quiet = frames < 0.005
    cuts, start = [], 0
    for k in range(1, len(quiet)):
        if quiet[k] and not quiet[k - 1] and (k - start) * 0.04 > 2.0:
            cuts.append(a[start * 640 : k * 640])
            start = k
    return cuts or [a]


def soak(minutes: float, size: str, every: float) -> dict:
    if not available():
        raise SystemExit("needs nginx with the rtmp module (make setup installs it)")
    w, h = parse_size(size)
    tb = Timebase(25)
    pool = InferencePool()
    av = load_avatar(None, w, h, 25)
    talk = utterances()
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as d, RtmpServer(Path(d) / "nginx") as srv:
        s = LiveSession(avatar=av, pool=pool, tb=tb, enc=EncoderOptions(preset="veryfast", crf=23),
                        outputs=[(srv.url("soak"), "flv")])
        s.start()
        t0 = time.monotonic()
        rss, times = [], []
        next_push, i = t0 + 1.0, 0
        end = t0 + minutes * 60
        while (now := time.monotonic()) < end:
            if now >= next_push:
                s.speech.push(talk[i % len(talk)])
                i += 1
                next_push = now + every + len(talk[(i - 1) % len(talk)]) / 16000
            times.append(now - t0)
            rss.append(proc.memory_info().rss / 2**20)
            time.sleep(1.0)
        snap = s.snapshot()
        wall = time.monotonic() - t0
        out = s.outputs[0]
        written = out.frames_written
        s.stop()
    t, r = np.array(times), np.array(rss)
    after = t >= 60
    slope = float(np.polyfit(t[after], r[after], 1)[0]) if after.sum() > 10 else float("nan")
    return {
        "minutes": minutes, "size": size, "pushes": i,
        "delivered_fps": round(written / wall, 3),
        "frames": snap["frames"], "late_frames": snap["late_frames"],
        "late_pct": round(100 * snap["late_frames"] / max(1, snap["frames"]), 3),
        "dropped_frames": out.frames_dropped, "reconnects": out.reconnects,
        "rss_start_mb": round(float(r[0]), 1), "rss_end_mb": round(float(r[-1]), 1),
        "rss_slope_mb_per_run_after_1min": round(slope * (t[-1] - 60), 2) if after.any() else None,
        "latency_ms_median": snap["latency_ms_median"], "latency_samples": snap["latency_samples"],
        "frame_ms_p50": round(snap["frame_ms_p50"], 2), "frame_ms_p99": round(snap["frame_ms_p99"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="720p")
    ap.add_argument("--every", type=float, default=4.0, help="seconds of silence between utterances")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    res = soak(a.minutes, a.size, a.every)
    for k, v in res.items():
        print(f"{k:>34}: {v}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
