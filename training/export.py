"""Export the trained net to ONNX with the engine's metadata and check it against torch.

    python -m training.export --ckpt build/lipsync/model.pt --out models/lipsync-v2.onnx
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
import torch

from dhlive_cli.features import FEATURE_SPEC, LOG_FLOOR, N_MELS
from training.model import LipSyncNet

TOLERANCE = 1e-4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="build/lipsync/model.pt")
    ap.add_argument("--data", default="build/lipsync/data")
    ap.add_argument("--out", default="models/lipsync-v2.onnx")
    ap.add_argument("--name", default="lipsync-v2", help="dhlive.model metadata")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ck = torch.load(a.ckpt, map_location="cpu")
    past, ahead = ck["past"], ck["ahead"]
    model = LipSyncNet(past, ahead, **ck.get("config", {}))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    T = past + ahead
    dummy = torch.zeros(2, T, N_MELS)
    tmp = a.out + ".tmp"
    torch.onnx.export(model, (dummy,), tmp, input_names=["mel"], output_names=["mouth"],
                      dynamic_axes={"mel": {0: "N"}, "mouth": {0: "N"}}, opset_version=17, dynamo=False)
    m = onnx.load(tmp)
    meta = {
        "dhlive.features": FEATURE_SPEC,
        "dhlive.window_past": str(past),
        "dhlive.window_ahead": str(ahead),
        "dhlive.params": "open,spread,round,close",
        "dhlive.model": a.name,
        "dhlive.kind": "trained",
    }
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "dhlive-training"
    m.doc_string = f"dhlive {a.name}: log-mel window -> open, spread, round, close (see models/README.md)"
    onnx.checker.check_model(m)
    onnx.save(m, a.out)
    os.remove(tmp)

    import onnxruntime as ort

    sess = ort.InferenceSession(a.out, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    # real windows from the evaluation set, random ones, and digital silence
    d = np.load(f"{a.data}/eval_voices.npz")
    from dhlive_cli.features import model_windows

    n0 = int(d["n_frames"][0])
    real = model_windows(d["mel"][: 4 * n0], n0, past, ahead)
    rand = rng.uniform(LOG_FLOOR, 6.0, size=(256, T, N_MELS)).astype(np.float32)
    sil = np.full((4, T, N_MELS), LOG_FLOOR, np.float32)
    x = np.concatenate([real, rand, sil]).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = sess.run(["mouth"], {"mel": x})[0]
    diff = float(np.max(np.abs(ref - got)))
    size = os.path.getsize(a.out)
    print(f"exported {a.out}: {size} bytes ({size / 2**20:.2f} MiB), opset 17, window past={past} ahead={ahead}")
    print(f"ONNX vs torch max abs diff over {x.shape[0]} windows: {diff:.2e} (tolerance {TOLERANCE:.0e})")
    if diff > TOLERANCE:
        raise SystemExit("ONNX output does not match torch")
    if size > 2 * 2**20:
        raise SystemExit("model larger than 2 MB")


if __name__ == "__main__":
    main()
