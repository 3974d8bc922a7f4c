"""training.evaluate --track: the dev audio is rebuilt as training.label_real labelled it and
scored through the engine's own analysis path (what `dhlive lipsync` writes). numpy and
onnxruntime only, no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.label_real import PAD, padded

pytest.importorskip("onnxruntime")

MODEL = Path(__file__).resolve().parents[1] / "models" / "lipsync-v2.onnx"
SR = 16000


def _voice_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-rate bursts of a harmonic tone with silences between them."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * 140 * k * t + rng.uniform(0, 6)) / k for k in range(1, 20))
    env = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    return (0.1 * tone * env + 1e-3 * rng.standard_normal(t.size)).astype(np.float32)


def test_padded_is_whole_frames_with_silence_both_sides():
    x = _voice_like(1.234)
    a = padded(x)
    assert a.size % 640 == 0 and a.size - x.size - 2 * PAD < 640
    assert not a[:PAD].any() and not a[PAD + x.size :].any()
    assert np.array_equal(a[PAD : PAD + x.size], x)


def test_product_track_is_the_lipsync_path():
    """product_track = model output (batch windows) through MouthTrack with the frame rms, and
    it differs from the raw output (the gate and the smoothing are really applied)."""
    from dhlive_cli.features import logmel, model_windows
    from dhlive_cli.inference import InferencePool
    from dhlive_cli.mouth import MouthTrack, frame_rms
    from training.evaluate import product_track

    audio = [padded(_voice_like(2.1, 1)), padded(_voice_like(3.3, 2))]
    got = product_track(str(MODEL), audio)
    pool = InferencePool(MODEL)
    want = []
    for x in audio:
        n = x.size // 640
        raw = np.zeros((n, 4), np.float32)
        pool.infer(model_windows(logmel(x), n, pool.past, pool.ahead), raw)
        rms = np.zeros(n, np.float32)
        frame_rms(x, n, 640, rms)
        out = np.zeros((n, 4), np.float32)
        MouthTrack().apply(raw, rms, out)
        want.append((raw, out))
    assert got.shape == (sum(r.shape[0] for r, _ in want), 4)
    assert np.max(np.abs(got - np.concatenate([o for _, o in want]))) <= 1e-4
    assert np.max(np.abs(got - np.concatenate([r for r, _ in want]))) > 0.05
