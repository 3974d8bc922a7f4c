"""The shipped lip-sync models (models/lipsync-v2.onnx, the default, and lipsync-v1.onnx, kept for
comparison) against the engine contract.

onnxruntime only: run time and tests never import torch.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from dhlive_cli.features import (
    FEATURE_SPEC,
    LOG_FLOOR,
    N_MELS,
    LogMelStream,
    WindowAssembler,
    logmel,
    model_windows,
)

ort = pytest.importorskip("onnxruntime")

MODELS = Path(__file__).resolve().parents[1] / "models"
SR, SPF = 16000, 640


@pytest.fixture(scope="module", params=["lipsync-v2", "lipsync-v1"])
def model_name(request):
    return request.param


@pytest.fixture(scope="module")
def session(model_name):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(MODELS / f"{model_name}.onnx"), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def window(session):
    meta = session.get_modelmeta().custom_metadata_map
    return int(meta["dhlive.window_past"]), int(meta["dhlive.window_ahead"])


def run(session, windows: np.ndarray) -> np.ndarray:
    return session.run(["mouth"], {"mel": windows.astype(np.float32)})[0]


def batch_track(session, audio, past, ahead):
    n = audio.shape[0] // SPF
    return run(session, model_windows(logmel(audio), n, past, ahead))


A_FORMANTS = ((730, 90), (1090, 110), (2440, 160), (3400, 250))
I_FORMANTS = ((270, 60), (2290, 100), (3010, 150), (3500, 250))
U_FORMANTS = ((300, 60), (870, 80), (2240, 120), (3400, 250))


def vowel(seconds: float, f0: float = 110.0, formants=A_FORMANTS, level: float = 0.3) -> np.ndarray:
    """A source-filter vowel: harmonics of f0 (source falling 6 dB/octave, 2 % vibrato) through a
    cascade of formant resonators, 20 ms fades."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / SR
    x = np.zeros_like(t)
    for h in range(1, int(7800 // f0)):
        f = h * f0
        g = 1.0
        for fc, bw in formants:
            g /= np.sqrt((1 - (f / fc) ** 2) ** 2 + (f * bw / fc**2) ** 2)
        x += g / h * np.sin(h * phase)
    x *= np.minimum(1, np.minimum(t, t[-1] - t) / 0.02)
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def test_metadata_and_size(session, model_name):
    import onnx

    path = MODELS / f"{model_name}.onnx"
    assert path.stat().st_size <= 2 * 1024 * 1024
    m = onnx.load(str(path))
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["dhlive.features"] == FEATURE_SPEC
    assert meta["dhlive.params"] == "open,spread,round,close"
    assert meta["dhlive.model"] == model_name
    assert meta["dhlive.kind"] == "trained"
    past, ahead = int(meta["dhlive.window_past"]), int(meta["dhlive.window_ahead"])
    assert past >= 4 and 0 <= ahead <= 8
    assert max(op.version for op in m.opset_import if op.domain in ("", "ai.onnx")) <= 17
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "mel" and inp.shape[1:] == [past + ahead, N_MELS]
    assert out.name == "mouth" and out.shape[1] == 4


def test_output_shape_and_range(session, window):
    past, ahead = window
    rng = np.random.default_rng(0)
    for n in (1, 7, 64):
        x = rng.uniform(LOG_FLOOR, 8.0, size=(n, past + ahead, N_MELS))
        y = run(session, x)
        assert y.shape == (n, 4) and y.dtype == np.float32
        assert np.all(y >= 0.0) and np.all(y <= 1.0)


def test_streaming_matches_batch(session, window):
    """The engine's path (640-sample pushes, WindowAssembler, one frame per run) equals batch."""
    past, ahead = window
    rng = np.random.default_rng(1)
    audio = np.concatenate([np.zeros(4000, np.float32), vowel(0.7), 0.01 * rng.standard_normal(9000).astype(np.float32),
                            vowel(0.4, f0=210, formants=I_FORMANTS), np.zeros(3000, np.float32)])
    audio = audio[: audio.shape[0] // SPF * SPF]
    ref = batch_track(session, audio, past, ahead)
    stream = LogMelStream(max_hops=SPF // 160)
    asm = WindowAssembler(past, ahead, max_frames=4)
    mel = np.empty((SPF // 160, N_MELS), np.float32)
    win = np.empty((1, past + ahead, N_MELS), np.float32)
    got = []
    for k in range(audio.shape[0] // SPF):
        stream.push(audio[k * SPF : (k + 1) * SPF], mel)
        asm.feed(mel)
        while asm.take(win):
            got.append(run(session, win)[0])
    asm.finish()
    while asm.take(win):
        got.append(run(session, win)[0])
    got = np.array(got)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-4


def test_closed_on_digital_silence(session, window):
    y = batch_track(session, np.zeros(SR, np.float32), *window)
    assert np.all(y[:, 0] < 0.1)
    assert np.all(y[:, 3] > 0.5)


def middle(session, window, v):
    audio = np.concatenate([np.zeros(8000, np.float32), v, np.zeros(8000, np.float32)])
    y = batch_track(session, audio[: audio.shape[0] // SPF * SPF], *window)
    n_v = v.shape[0] // SPF
    return y, np.median(y[8000 // SPF + 4 : 8000 // SPF + n_v - 4], axis=0)


def test_vowels_open_spread_round(session, window):
    y, a = middle(session, window, vowel(0.8))
    assert a[0] > 0.5, a  # 'a' opens wide
    assert np.all(y[:8, 0] < 0.1) and np.all(y[-6:, 0] < 0.1)  # closed in the silence around it
    _, i = middle(session, window, vowel(0.8, formants=I_FORMANTS))
    _, u = middle(session, window, vowel(0.8, formants=U_FORMANTS))
    assert i[0] < a[0] and u[0] < a[0]
    assert i[1] > u[1] and u[2] > i[2]  # 'ee' spreads, 'oo' rounds
    # no per-utterance normalisation exists, so a quiet 'a' must still open (-24 dB)
    _, quiet = middle(session, window, vowel(0.8, level=0.02))
    assert quiet[0] > 0.4, quiet


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="Debian espeak-ng not installed")
def test_espeak_clip_opens_and_closes(session, window, tmp_path):
    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), "Bob, bring me a map, please."], check=True)
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    n = int(x.shape[0] * SR / rate)
    x = np.interp(np.arange(n) * rate / SR, np.arange(x.shape[0]), x).astype(np.float32)
    audio = np.concatenate([np.zeros(6400, np.float32), x, np.zeros(6400, np.float32)])
    audio = audio[: audio.shape[0] // SPF * SPF]
    y = batch_track(session, audio, *window)
    speech = y[10:-10]
    assert speech[:, 0].max() > 0.4  # opens for the vowels
    assert (speech[:, 3] > 0.5).sum() >= 2  # closes for some of b, b, m, m, p
    assert np.all(y[:5, 0] < 0.1)
