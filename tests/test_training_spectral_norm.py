"""training.spectral_norm: the per-band mean normalisation behind the channel experiments
(models/README.md, "How this recipe was chosen"). numpy only, no torch."""

import numpy as np

from dhlive_cli.features import LOG_FLOOR, logmel
from training.spectral_norm import normalise, utterance_cmn


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    """Log-mel rows of a pulse train through moving resonances, with a pause in the middle."""
    rng = np.random.default_rng(seed)
    sr = 16000
    n = int(seconds * sr)
    t = np.arange(n) / sr
    src = (np.sin(2 * np.pi * 140 * t) > 0.95).astype(np.float64) + 0.05 * rng.standard_normal(n)
    f1 = 500 + 300 * np.sin(2 * np.pi * 3 * t)
    y = src * (1 + 0.8 * np.sin(2 * np.pi * np.cumsum(f1) / sr))
    y[n // 2 - 4000 : n // 2 + 4000] = 0.0  # half a second of digital silence
    return logmel((0.3 * y / np.abs(y).max()).astype(np.float32))


def test_utterance_cmn_removes_a_fixed_colouring_and_keeps_the_level():
    mel = _speech_like(3.0, 0)
    colour = np.linspace(-2.0, 1.5, mel.shape[1]).astype(np.float32)  # about -9..+7 dB tilt
    speech = mel[:, :33].mean(axis=1) > LOG_FLOOR + 1
    coloured = mel.copy()
    coloured[speech] += colour  # colour the rows with signal, as a microphone would
    a, b = utterance_cmn(mel), utterance_cmn(coloured)
    # on speech rows the shape of the colouring is gone: what is left is its mean over the read
    # bands, a plain gain, which the net's own level normalisation removes
    np.testing.assert_allclose(b[speech] - a[speech], colour[:33].mean(), atol=1e-3)
    # the offsets have zero mean over the 33 read bands: every row keeps its mean level
    np.testing.assert_allclose(b[:, :33].mean(axis=1), coloured[:, :33].mean(axis=1), atol=1e-4)


def test_utterance_cmn_leaves_digital_silence_alone():
    mel = np.full((40, 40), LOG_FLOOR, np.float32)
    np.testing.assert_array_equal(utterance_cmn(mel), mel)


def test_normalise_goes_utterance_by_utterance():
    a, b = _speech_like(2.0, 2), _speech_like(2.0, 3) + np.linspace(-1, 1, 40).astype(np.float32)
    n = np.array([a.shape[0] // 4, b.shape[0] // 4])
    mel = np.concatenate([a[: 4 * n[0]], b[: 4 * n[1]]])
    out = normalise(mel, n, "utt")
    np.testing.assert_allclose(out[: 4 * n[0]], utterance_cmn(a[: 4 * n[0]]), atol=1e-6)
    np.testing.assert_allclose(out[4 * n[0] :], utterance_cmn(b[: 4 * n[1]]), atol=1e-6)
    assert normalise(mel, n, "") is mel  # off: the features pass untouched
