"""Speak latency of the live API while slow clients attack it (issue 12, must-hold 2).

    python benchmarks/bench_api_abuse.py [--seconds 60] [--json out.json]

Starts `dhlive live --listen` (320x180, recording to a temp mkv), opens 64 slow uploads (a byte
every 2 s: under the body idle limit, so only being the slowest gets them dropped) and 136
slow-header connections (a byte every 5 s), each reopened as soon as the server drops it, and
meanwhile POSTs 0.5 s of PCM to /v1/speak once a second. Prints the answers, the speak latency
(median, max), the main stream's skipped ticks and late frames over the run, and how many slow
clients the server dropped. The test suite checks the behaviour (every speak 202); the latency
is a figure of this machine, hence here.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.slow_clients import trickle  # noqa: E402  (the same slow client as the security suite)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, ctype: str | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


async def attack(port: int, seconds: float) -> tuple[list[int], list[float]]:
    t = np.arange(8000) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()
    body_head = (f"POST /v1/speak HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: audio/wav\r\n"
                 "Content-Length: 1000000\r\n\r\n").encode()
    header_head = f"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(trickle(port, stop, body_head, 2.0)) for _ in range(64)]
    tasks += [asyncio.create_task(trickle(port, stop, header_head, 5.0)) for _ in range(136)]
    await asyncio.sleep(3.0)
    codes, lat = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        code, _ = await asyncio.to_thread(request, port, "POST", "/v1/speak", pcm, "audio/pcm")
        lat.append(time.monotonic() - t0)
        codes.append(code)
        await asyncio.sleep(max(0.0, 1.0 - lat[-1]))
        await asyncio.to_thread(request, port, "POST", "/v1/interrupt")  # keep the buffer from filling
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return codes, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--listen", f"127.0.0.1:{port}",
                                 "-o", str(Path(d) / "main.mkv"), "--preset", "low", "--size", "320x180", "--quiet"],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(300):
                try:
                    if request(port, "GET", "/v1/status")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            st0 = json.loads(request(port, "GET", "/v1/status")[1])
            codes, lat = asyncio.run(attack(port, a.seconds))
            st1 = json.loads(request(port, "GET", "/v1/status")[1])
        finally:
            proc.terminate()
            proc.wait(30)
    result = {
        "seconds": a.seconds, "speaks": len(codes), "codes": sorted(set(codes)),
        "speak_latency_s_median": round(statistics.median(lat), 4), "speak_latency_s_max": round(max(lat), 4),
        "skipped_ticks": st1["skipped_ticks"] - st0["skipped_ticks"],
        "late_frames": st1["late_frames"] - st0["late_frames"],
        "slow_clients_dropped": st1["api"]["dropped_slow_clients"],
    }
    print(json.dumps(result, indent=2))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
