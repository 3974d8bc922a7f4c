"""lipsync-v2 + MouthTrack across input levels and on audio with no voice.

lipsync-v2 is the engine's default; these tests load it by path all the same, so a
DHLIVE_MODEL set in the environment cannot change what they check. They run the
engine's own analysis path (LogMelStream, WindowAssembler, InferencePool,
MouthTrack), as `dhlive lipsync` does, on audio made here: eSpeak NG speech, a synthetic
instrumental (chords, bass line, hi-hat) and room noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dhlive_cli.timebase import SAMPLE_RATE
from tests.conftest import needs_espeak, speak

pytest.importorskip("onnxruntime")

SR = SAMPLE_RATE
SPF = 640
MODEL = Path(__file__).resolve().parents[1] / "models" / "lipsync-v2.onnx"


@pytest.fixture(scope="module")
def pool():
    from dhlive_cli.inference import InferencePool

    return InferencePool(MODEL)


def mouth_track(pool, audio: np.ndarray, block: int = 25) -> np.ndarray:
    """(frames, 4) smoothed mouth of audio, pushed in blocks of `block` frames like lipsync does."""
    from dhlive_cli.analysis import whole_track

    return whole_track(pool, audio, block)


def test_model_is_v2(pool):
    assert pool.name == "lipsync-v2" and pool.past + pool.ahead == 28 and pool.ahead == 8


@needs_espeak
def test_streaming_equals_batch(pool, tmp_path):
    """One frame per push (live) and 50-frame blocks (render) give the same track within 1e-4."""
    x = speak("Bob met Pam at the bus stop.", tmp_path / "s.wav")
    a = mouth_track(pool, x, block=1)
    b = mouth_track(pool, x, block=50)
    assert a.shape == b.shape and np.max(np.abs(a - b)) <= 1e-4


@needs_espeak
def test_same_speech_at_any_level_moves_the_mouth_alike(pool, tmp_path):
    """0, -20, -30 and -40 dB copies of one utterance give opening tracks with r >= 0.95."""
    x = speak("Please bring me the blue paper map from the top shelf, and open it wide.", tmp_path / "s.wav")
    x = np.concatenate([np.zeros(8000, np.float32), x, np.zeros(8000, np.float32)])
    x = x / np.max(np.abs(x)) * 0.99  # 0 dB: peaks at full scale
    ref = mouth_track(pool, x)[:, 0]
    assert ref.max() > 0.4
    for db in (-20, -30, -40):
        y = mouth_track(pool, x * 10 ** (db / 20))[:, 0]
        r = float(np.corrcoef(ref, y)[0, 1])
        print(f"{db} dB: opening r {r:.3f} against 0 dB, mean open {y.mean():.3f} (0 dB {ref.mean():.3f})")
        assert r >= 0.95, (db, r)


def _tone(f0: float, t: np.ndarray, partials: int) -> np.ndarray:
    # a bright sawtooth-like tone: partial k at 1/k
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, partials + 1) if f0 * k < 7500)


def instrumental(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Chords (C, Am, F, G triads), a bass line on the roots and eighth-note hi-hats at 120 bpm."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    beat = SR // 2
    chords = [(261.63, 329.63, 392.0), (220.0, 261.63, 329.63), (174.61, 220.0, 261.63), (196.0, 246.94, 293.66)]
    for c, start in enumerate(range(0, n, 4 * beat)):
        sl = slice(start, min(n, start + 4 * beat))
        tt = t[sl] - t[start]
        env = np.minimum(1, tt / 0.01) * np.exp(-tt / 1.5)
        for f in chords[c % 4]:
            y[sl] += 0.2 * _tone(f, t[sl], 8) * env
        for b in range(4):
            bs = start + b * beat
            if bs >= n:
                break
            bl = slice(bs, min(n, bs + beat))
            bt = t[bl] - t[bs]
            y[bl] += 0.5 * _tone(chords[c % 4][0] / 4, t[bl], 3) * np.exp(-bt / 0.3)
    for h in range(0, n, beat // 2):
        m = min(n - h, int(0.05 * SR))
        y[h : h + m] += 0.2 * np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / (0.01 * SR))
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def room_noise(seconds: float, rng: np.random.Generator, dbfs: float) -> np.ndarray:
    """Pink-ish noise with a low rumble (ventilation) and a faint 50 Hz hum at `dbfs` RMS."""
    n = int(seconds * SR)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    spec *= 1 / np.sqrt(f) * (1 + 3 * np.exp(-f / 150))
    y = np.fft.irfft(spec, n)
    y += 0.05 * np.std(y) * np.sin(2 * np.pi * 50 * np.arange(n) / SR)
    return (y / np.sqrt(np.mean(y**2)) * 10 ** (dbfs / 20)).astype(np.float32)


@pytest.mark.parametrize("kind", ["music", "room-noise-quiet", "room-noise-loud"])
def test_no_voice_keeps_the_mouth_closed(pool, kind):
    rng = np.random.default_rng(3)
    if kind == "music":
        x = instrumental(4.0, rng)
    else:
        x = room_noise(4.0, rng, -50.0 if kind.endswith("quiet") else -25.0)
    y = mouth_track(pool, x)[:, 0]
    share = float(np.mean(y <= 0.10))
    print(f"{kind}: open <= 0.10 on {share:.1%} of {y.size} frames (max {y.max():.2f})")
    assert share >= 0.97
