"""training.ensemble: two exported lip-sync models averaged into one ONNX graph that keeps the
engine contract (the shipped v1 and v2 serve as members: same window, same metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from training.ensemble import average, check  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "models"


def _run(model_or_path, x):
    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(["mouth"], {"mel": x})[0]


def test_the_ensemble_is_the_members_mean_and_keeps_the_contract(tmp_path):
    a, b = MODELS / "lipsync-v1.onnx", MODELS / "lipsync-v2.onnx"
    m = average([onnx.load(a), onnx.load(b)], "lipsync-test", ["one", "two"])
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["dhlive.model"] == "lipsync-test" and meta["dhlive.members"] == "one,two"
    assert meta["dhlive.window_past"] == "20" and meta["dhlive.window_ahead"] == "8"
    rng = np.random.default_rng(3)
    x = rng.uniform(-10, 6, size=(64, 28, 40)).astype(np.float32)
    got, ya, yb = _run(m, x), _run(a, x), _run(b, x)
    assert got.shape == (64, 4)
    assert np.abs(got - (ya + yb) / 2).max() <= 1e-6
    assert np.abs(ya - yb).max() > 0.01  # the members differ, so the mean is not either of them
    out = tmp_path / "ens.onnx"
    onnx.save(m, out)
    assert check(str(out), [str(a), str(b)], None) <= 1e-5
    # the engine loads it as any model: its name and window from the metadata
    from dhlive_cli.inference import InferencePool

    pool = InferencePool(out)
    assert pool.name == "lipsync-test" and pool.past == 20 and pool.ahead == 8


def test_members_with_another_window_or_too_few_are_refused():
    a = onnx.load(MODELS / "lipsync-v2.onnx")
    b = onnx.load(MODELS / "lipsync-v2.onnx")
    for p in b.metadata_props:
        if p.key == "dhlive.window_ahead":
            p.value = "4"
    with pytest.raises(ValueError, match="metadata"):
        average([a, b], "x")
    with pytest.raises(ValueError, match="at least two"):
        average([a], "x")
