"""training.speed_perturb: speed-perturbed and formant-shifted copies of the real training voices
(models/README.md, "How this recipe was chosen"). numpy and ffmpeg only, no torch."""

import numpy as np

from training.label_real import PAD
from training.speed_perturb import FRAME, formant_shift, speed, stretch_labels

SR = 16000


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * SR / x.size)


def test_speed_scales_length_and_frequency():
    t = np.arange(2 * SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 400 * t)).astype(np.float32)
    for f in (0.9, 1.1):
        y = speed(x, f)
        assert y.dtype == np.float32
        assert y.size == round(x.size / f)
        # the tone moves to 400 * f Hz (bin width 0.5..0.6 Hz here)
        assert abs(_peak_hz(y[2000:-2000]) - 400 * f) < 2.0
        # band-limited resampling keeps the level of an in-band tone
        assert abs(np.sqrt(np.mean(y[2000:-2000] ** 2)) - np.sqrt(0.125)) < 0.01
    assert np.allclose(speed(x, 1.0), x, atol=1e-5)


def test_stretch_labels_identity_and_time_scaling():
    n = 50
    tgt = np.zeros((n, 4), np.float32)
    tgt[:, 3] = 0.8
    silent = np.ones(n, bool)
    # speech frames 10..29 open, a p/b/m closure at frames 20..22
    tgt[10:30, 0] = 0.6
    tgt[10:30, 3] = 0.0
    tgt[20:22, 0] = 0.0
    tgt[20:22, 3] = 1.0
    silent[10:30] = False
    same, sil, spans = stretch_labels(tgt, silent, [(20, 22)], n, 1.0)
    assert np.allclose(same, tgt) and (sil == silent).all() and spans == [(20, 22)]
    # twice as fast: speech time after the 200 ms pad halves
    fast, sil2, spans2 = stretch_labels(tgt, silent, [(20, 22)], 40, 2.0)
    pad_frames = PAD / FRAME  # 5 frames
    open_frames = np.nonzero(fast[:, 0] > 0.3)[0]
    assert abs(open_frames[0] - (pad_frames + (10 - pad_frames) / 2)) <= 1
    assert abs(open_frames[-1] + 1 - (pad_frames + (30 - pad_frames) / 2)) <= 1  # end, exclusive
    (s, e), = spans2
    assert fast[s:e, 3].max() == 1.0  # the closure keeps its full value (frame maximum)
    assert sil2[:7].all() and not sil2[8:17].any()


def test_formant_shift_keeps_length_pitch_and_timing():
    t = np.arange(SR) / SR
    # a 150 Hz pulse train (pitch) through one resonance around 1 kHz, switched on at 0.4 s
    src = (np.sin(2 * np.pi * 150 * t) > 0.97).astype(np.float64)
    k = np.arange(64) / SR
    res = np.exp(-k * 400) * np.sin(2 * np.pi * 1000 * k)
    x = np.convolve(src, res)[: t.size]
    x[: int(0.4 * SR)] = 0
    x = (0.5 * x / np.abs(x).max()).astype(np.float32)
    y = formant_shift(x, 1.15)
    assert y.shape == x.shape and y.dtype == np.float32
    # onset stays within 20 ms
    onset = lambda s: np.argmax(np.abs(s) > 0.05 * np.abs(s).max()) / SR
    assert abs(onset(y) - onset(x)) < 0.02
    # pitch kept: the harmonic spacing (autocorrelation peak) stays at 1/150 s
    seg = y[int(0.5 * SR) : int(0.9 * SR)].astype(np.float64)
    ac = np.correlate(seg, seg, "full")[seg.size - 1 :]
    lag = np.argmax(ac[60:200]) + 60
    assert abs(SR / lag - 150) < 8
    # the resonance moves up: spectral centroid of the voiced part rises by about the factor
    def centroid(s):
        p = np.abs(np.fft.rfft(s[int(0.5 * SR) : int(0.9 * SR)])) ** 2
        fr = np.fft.rfftfreq(int(0.4 * SR), 1 / SR)
        band = (fr > 300) & (fr < 4000)
        return (p[band] * fr[band]).sum() / p[band].sum()
    assert centroid(y) > 1.05 * centroid(x)
