"""How soon `utterance_finished` reaches a WebSocket client after the utterance's last sample is
played (issue 16, must-hold 5), and whether 24 kHz PCM plays at the right speed.

    python benchmarks/bench_ws_events.py [--utterances 20] [--rate 24000] [--json out.json]

One live session (320x240, ultrafast, recording to a temp mp4) and its API server run in this
process; a WebSocket client (aiohttp, on this thread's event loop) sends utterances of 0.3-1.5 s
of a tone as s16le PCM at --rate in 20 ms chunks, faster than real time, then
`{"type": "end"}`, and waits for `utterance_finished` before the next one.

"Played" is the moment the session hands the frame that carries the utterance's last sample to
its outputs: LiveSession's PlaybackWatch records it (played_ns) when its position passes the
utterance's end, and as nothing else feeds the session, that is still its latest advance when
the event arrives (both times on one clock, time.monotonic_ns). Printed per run: latency
event-received minus played (median, p95, max, ms), how many arrived within 200 ms, the frames
the session repeated (late) meanwhile, and the process CPU time -- the machine may be shared, so
read the latency beside the CPU figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def client(url: str, session, rate: int, n: int) -> list[dict]:
    import aiohttp

    rng = np.random.default_rng(7)
    rows = []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{url}/v1/stream?rate={rate}") as ws:
            for i in range(n):
                seconds = float(rng.uniform(0.3, 1.5))
                t = np.arange(int(seconds * rate)) / rate
                pcm = (0.4 * np.sin(2 * np.pi * 330 * t) * 32767).astype("<i2").tobytes()
                step = rate // 50 * 2  # 20 ms chunks
                for a in range(0, len(pcm), step):
                    await ws.send_bytes(pcm[a : a + step])
                await ws.send_str(json.dumps({"type": "end", "id": str(i)}))
                while True:
                    msg = await ws.receive_json(timeout=30)
                    if msg["type"] == "utterance_finished":
                        got_ns = time.monotonic_ns()
                        break
                # only this client feeds the session, and it sends nothing until this event: the
                # last advance of the played position was the frame with the utterance's end
                pb = session.playback
                assert pb.position == session.speech.pushed_samples, (pb.position, session.speech.pushed_samples)
                rows.append({"seconds": round(seconds, 3), "duration_s": msg["duration_s"],
                             "latency_ms": (got_ns - pb.played_ns) / 1e6})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utterances", type=int, default=20)
    ap.add_argument("--rate", type=int, default=24000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    from dhlive_cli.api import ApiServer
    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.inference import InferencePool
    from dhlive_cli.live import LiveOptions, LiveSession
    from dhlive_cli.sinks import EncoderOptions
    from dhlive_cli.timebase import Timebase

    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        pool = InferencePool()
        s = LiveSession(avatar=load_avatar(None, 320, 240, 25), pool=pool, tb=Timebase(25),
                        enc=EncoderOptions(preset="ultrafast"), outputs=[(f"{tmp}/rec.mp4", "mp4")],
                        opts=LiveOptions(), name="main")
        s.start()
        srv = ApiServer(s).start()
        try:
            cpu0, late0 = proc.cpu_times(), s.snapshot()["late_frames"]
            t0 = time.monotonic()
            rows = asyncio.run(client(srv.url, s, a.rate, a.utterances))
            wall = time.monotonic() - t0
            cpu1, late1 = proc.cpu_times(), s.snapshot()["late_frames"]
        finally:
            srv.stop()
            s.stop()
    lat = sorted(r["latency_ms"] for r in rows)
    speed = [r["duration_s"] / r["seconds"] for r in rows]
    result = {
        "rate": a.rate, "utterances": len(rows),
        "latency_ms_median": round(statistics.median(lat), 1),
        "latency_ms_p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1),
        "latency_ms_max": round(lat[-1], 1),
        "within_200ms": sum(v <= 200 for v in lat),
        "duration_ratio_min_max": [round(min(speed), 4), round(max(speed), 4)],
        "late_frames": late1 - late0,
        "wall_s": round(wall, 1),
        "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 1),
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=1))
    if a.json:
        a.json.write_text(json.dumps({"summary": result, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
