import subprocess
import sys

import numpy as np
import pytest

from dhlive_cli.errors import DependencyError, InputError
from dhlive_cli.features import LOG_FLOOR
from dhlive_cli.inference import MODELS_DIR, InferenceOptions, InferencePool

BASELINE = MODELS_DIR / "baseline.onnx"


def test_baseline_model_is_rebuilt_identically_from_code(tmp_path):
    out = tmp_path / "b.onnx"
    subprocess.run([sys.executable, str(MODELS_DIR / "build_baseline.py"), str(out)], check=True, capture_output=True)
    assert out.read_bytes() == BASELINE.read_bytes()


def test_pool_runs_batches_and_reads_window_from_metadata():
    pool = InferencePool(BASELINE, InferenceOptions(device="cpu", max_batch=7))
    assert pool.provider == "CPUExecutionProvider"
    assert (pool.past, pool.ahead, pool.kind) == (4, 0, "baseline")
    w = np.full((20, pool.window, 40), LOG_FLOOR, np.float32)
    w[10:] = 3.0  # loud speech band
    out = np.zeros((20, 4), np.float32)
    pool.infer(w, out)
    assert np.all(out[:10, 0] < 0.05) and np.all(out[10:, 0] > 0.9)
    assert np.all((out >= 0) & (out <= 1))


def test_cuda_request_without_cuda_is_a_clear_error():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this host has the CUDA provider")
    with pytest.raises(DependencyError, match="CUDA"):
        InferencePool(BASELINE, InferenceOptions(device="cuda"))


def test_render_on_cuda_without_cuda_says_one_thing(tmp_path):
    """`render --device cuda` on a CPU-only host first warned it would encode on the CPU (as if
    going on), then failed on the model: one error line now, before anything starts."""
    import onnxruntime as ort
    import soundfile as sf

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this host has the CUDA provider")
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(wav), "-o", str(tmp_path / "x.mp4"),
                        "--device", "cuda"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr == ("error: --device cuda: this onnxruntime has no CUDA provider "
                                              "(install dhlive[gpu])\n"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]


def test_bad_model_path_and_bad_device(tmp_path):
    with pytest.raises(InputError):
        InferencePool(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError):
        InferencePool(tmp_path / "junk.onnx")
    with pytest.raises(InputError):
        InferencePool(BASELINE, InferenceOptions(device="tpu"))
