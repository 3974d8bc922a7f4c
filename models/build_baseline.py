"""Build models/baseline.onnx: a hand-set band-energy model, labelled as the baseline.

It is not trained. It maps the mean log energy of the speech band (about 300 Hz - 3.4 kHz)
over the current 40 ms frame to mouth opening through a sigmoid, so the whole engine path
(features -> onnxruntime -> mouth track -> avatar) is real before the trained model exists and
stays available as a fallback: `dhlive render --model models/baseline.onnx`.

    python models/build_baseline.py            # rewrites models/baseline.onnx deterministically
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dhlive_cli.features import F_MAX, F_MIN, FEATURE_SPEC, N_MELS, _hz_to_mel, _mel_to_hz  # noqa: E402

PAST, AHEAD = 4, 0  # the frame's own four 10 ms hops; no look-ahead
# Log-mel level (natural log of band power) where the mouth is half open; speech at about
# -25 dBFS sits near +1, room noise at -60 dBFS near -6, digital silence at -13.8.
HALF_OPEN_LEVEL = -2.0
SLOPE = 1.4


def build(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    centres = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2))[1:-1]
    band = ((centres >= 300) & (centres <= 3400)).astype(np.float32)
    band /= band.sum()
    w = np.zeros((N_MELS, 4), dtype=np.float32)
    b = np.zeros((4,), dtype=np.float32)
    w[:, 0] = SLOPE * band  # open rises with speech-band energy
    b[0] = -SLOPE * HALF_OPEN_LEVEL
    w[:, 3] = -SLOPE * band  # close is its mirror image
    b[3] = SLOPE * HALF_OPEN_LEVEL
    b[1] = -2.0  # spread and round: a constant, mostly neutral lip shape
    b[2] = -2.0

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["mel"], ["frame_mel"], axes=[1], keepdims=0),
            helper.make_node("MatMul", ["frame_mel", "W"], ["logits_nb"]),
            helper.make_node("Add", ["logits_nb", "b"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["mouth"]),
        ],
        "dhlive_baseline",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["N", PAST + AHEAD, N_MELS])],
        [helper.make_tensor_value_info("mouth", TensorProto.FLOAT, ["N", 4])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="dhlive")
    model.ir_version = 8
    meta = {
        "dhlive.features": FEATURE_SPEC,
        "dhlive.window_past": str(PAST),
        "dhlive.window_ahead": str(AHEAD),
        "dhlive.params": "open,spread,round,close",
        "dhlive.model": "baseline",
        "dhlive.kind": "baseline",
    }
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "models" / "baseline.onnx"
    build(out)
    print(out)
