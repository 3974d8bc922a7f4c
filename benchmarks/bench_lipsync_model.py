"""CPU inference cost of models/lipsync-v2.onnx (the default mouth model) per 40 ms frame, batched (onnxruntime).

    .venv/bin/python benchmarks/bench_lipsync_model.py [--model PATH] [--batch 256] [--threads 1]

Prints ms per frame for a few batch sizes (batch = frames per run() call, as the engine batches
in render mode and across sessions in live mode). Target: <= 0.2 ms per frame batched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "lipsync-v2.onnx"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.0, help="time per batch size")
    a = ap.parse_args()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    T = int(meta["dhlive.window_past"]) + int(meta["dhlive.window_ahead"])
    rng = np.random.default_rng(0)
    print(f"model {a.model}: {Path(a.model).stat().st_size / 2**20:.2f} MiB, window {T} x 40, "
          f"{a.threads} intra-op thread(s), providers {sess.get_providers()}")
    for batch in (1, 25, 100, 250, 1000):
        x = rng.uniform(-13.8, 5.0, size=(batch, T, 40)).astype(np.float32)
        for _ in range(3):
            sess.run(["mouth"], {"mel": x})
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds:
            sess.run(["mouth"], {"mel": x})
            n += 1
        dt = time.perf_counter() - t0
        print(f"batch {batch:5d}: {dt / n * 1e3:8.3f} ms per call, {dt / (n * batch) * 1e3:.4f} ms per frame")


if __name__ == "__main__":
    main()
