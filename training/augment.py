"""Channel augmentation so the model learns mouth shapes, not eSpeak's timbre or a clean channel.

Everything is a pure function of (audio, numpy Generator) so a seed reproduces the data set.
All filters are zero-phase or start with the direct path at lag 0, and codec round trips are
re-aligned by cross-correlation, so augmentation never shifts audio against its targets.
"""

from __future__ import annotations

import subprocess

import numpy as np

SR = 16000


def resample(x: np.ndarray, n_out: int) -> np.ndarray:
    """Band-limited resampling to n_out samples by FFT (pads to avoid wrap-around clicks)."""
    n = x.shape[0]
    if n == 0 or n_out == n:
        return x.astype(np.float32)
    pad = 1024
    xp = np.concatenate([x, np.zeros(pad, x.dtype)])
    n_out_p = int(round((n + pad) * n_out / n))
    X = np.fft.rfft(xp)
    k = n_out_p // 2 + 1
    Y = np.zeros(k, np.complex128)
    m = min(k, X.shape[0])
    Y[:m] = X[:m]
    if n_out_p < xp.shape[0]:
        # taper the top of the kept band: a brick wall rings
        taper = max(m // 40, 1)
        Y[m - taper : m] *= np.linspace(1, 0, taper)
    y = np.fft.irfft(Y, n_out_p) * (n_out_p / xp.shape[0])
    return y[:n_out].astype(np.float32)


def band_filter(x: np.ndarray, lo: float | None, hi: float | None, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth-magnitude band limit applied in the frequency domain."""
    n = x.shape[0]
    nfft = 1 << int(np.ceil(np.log2(n + 2048)))
    f = np.fft.rfftfreq(nfft, 1 / SR)
    g = np.ones_like(f)
    if hi:
        g /= np.sqrt(1 + (f / hi) ** (2 * order))
    if lo:
        with np.errstate(divide="ignore"):
            g /= np.sqrt(1 + (lo / np.maximum(f, 1e-3)) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x, nfft) * g, nfft)[:n].astype(np.float32)


def colored_noise(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(n).astype(np.float32)
    nfft = 1 << int(np.ceil(np.log2(n + 1)))
    f = np.fft.rfftfreq(nfft, 1 / SR)
    f[0] = f[1]
    if kind == "pink":
        g = 1 / np.sqrt(f)
    elif kind == "brown":
        g = 1 / f
    elif kind == "hum":
        t = np.arange(n) / SR
        base = rng.choice([50.0, 60.0])
        y = sum(rng.uniform(0.2, 1) * np.sin(2 * np.pi * base * h * t + rng.uniform(0, 6.28)) for h in range(1, 8))
        return (y + 0.1 * rng.standard_normal(n)).astype(np.float32)
    else:  # random smooth spectrum: fans, cars, rooms
        knots = rng.uniform(-20, 10, 12)
        g = 10 ** (np.interp(np.log(f), np.linspace(np.log(f[0]), np.log(f[-1]), 12), knots) / 20)
    spec = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * g
    return np.fft.irfft(spec, nfft)[:n].astype(np.float32)


def active_power(x: np.ndarray, active: np.ndarray | None) -> float:
    if active is not None and active.any():
        return float(np.mean(x[active] ** 2)) + 1e-12
    return float(np.mean(x**2)) + 1e-12


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float, active: np.ndarray | None) -> np.ndarray:
    ps = active_power(x, active)
    pn = float(np.mean(noise**2)) + 1e-12
    return (x + noise * np.sqrt(ps / pn / 10 ** (snr_db / 10))).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rt60 = rng.uniform(0.15, 0.9)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[: int(0.002 * SR)] = 0.0
    rir *= rng.uniform(0.2, 1.0) / np.sqrt(np.sum(rir**2) + 1e-12)
    rir[0] = 1.0  # direct path at lag 0 keeps the timing of the targets
    nfft = 1 << int(np.ceil(np.log2(x.shape[0] + n)))
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(rir, nfft), nfft)[: x.shape[0]]
    return y.astype(np.float32)


def _align(ref: np.ndarray, y: np.ndarray, max_lag: int = 2400) -> np.ndarray:
    """Shift y so it lines up with ref (codecs add encoder delay and padding)."""
    n = ref.shape[0]
    y = np.concatenate([y, np.zeros(max(0, n + max_lag - y.shape[0]), np.float32)])
    nfft = 1 << int(np.ceil(np.log2(n + y.shape[0])))
    c = np.fft.irfft(np.fft.rfft(y, nfft) * np.conj(np.fft.rfft(ref, nfft)), nfft)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([c[: max_lag + 1], c[-max_lag:]])
    lag = int(lags[np.argmax(vals)])
    if lag >= 0:
        out = y[lag : lag + n]
    else:
        out = np.concatenate([np.zeros(-lag, np.float32), y[: n + lag]])
    return np.pad(out, (0, n - out.shape[0])).astype(np.float32)


def ffmpeg_roundtrip(x: np.ndarray, codec: str | None, bitrate: str | None, pitch: float | None) -> np.ndarray:
    """Optional rubberband pitch shift (tempo kept) and a lossy encode/decode, through ffmpeg."""
    af = f"-af rubberband=pitch={pitch:.4f}" if pitch else ""
    raw = "-f f32le -ar 16000 -ac 1"
    if codec is None:
        cmd = f"ffmpeg -v error {raw} -i pipe:0 {af} {raw} pipe:1"
    else:
        fmt = {"libmp3lame": "mp3", "libopus": "ogg", "libgsm": "gsm", "libspeex": "ogg"}[codec]
        rate = "-ar 8000" if codec in ("libgsm",) else "-ar 16000" if codec != "libmp3lame" else "-ar 16000"
        enc = f"-c:a {codec} {('-b:a ' + bitrate) if bitrate else ''} {rate} -f {fmt}"
        cmd = f"ffmpeg -v error {raw} -i pipe:0 {af} {enc} pipe:1 | ffmpeg -v error -i pipe:0 {raw} pipe:1"
    res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], input=x.astype(np.float32).tobytes(),
                         capture_output=True, check=True)
    y = np.frombuffer(res.stdout, np.float32).copy()
    return _align(x, y)


def random_chain(x: np.ndarray, active: np.ndarray, rng: np.random.Generator,
                 babble: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """A random degradation chain; returns the audio and a short description."""
    desc = []
    if rng.random() < 0.35:
        x = reverb(x, rng)
        desc.append("reverb")
    codec_p = rng.random()
    pitch = float(rng.uniform(0.85, 1.2)) if rng.random() < 0.2 else None
    codec = bitrate = None
    if codec_p < 0.12:
        codec, bitrate = "libmp3lame", str(rng.choice(["16k", "24k", "32k", "48k"]))
    elif codec_p < 0.26:
        codec, bitrate = "libopus", str(rng.choice(["6k", "8k", "12k", "16k", "24k"]))
    elif codec_p < 0.30:
        codec, bitrate = "libgsm", None
    r = rng.random()
    if r < 0.25:
        x = band_filter(x, rng.uniform(200, 400), rng.uniform(3000, 3600))
        desc.append("phone")
    elif r < 0.45:
        x = band_filter(x, rng.uniform(40, 200) if rng.random() < 0.5 else None, rng.uniform(3500, 7000))
        desc.append("lowpass")
    if rng.random() < 0.7:
        kind = str(rng.choice(["white", "pink", "brown", "hum", "colored", "colored"]))
        if kind != "hum" and babble is not None and rng.random() < 0.15:
            noise, kind = babble, "babble"
            snr = rng.uniform(12, 30)
        else:
            noise = colored_noise(x.shape[0], rng, kind)
            snr = float(rng.choice([rng.uniform(0, 30), 5.0, 10.0, 15.0, 20.0]))
        x = add_noise(x, noise[: x.shape[0]], snr, active)
        desc.append(f"{kind}@{snr:.0f}dB")
    if codec or pitch:
        # normalise before the codec so float input does not clip inside the encoder
        peak = float(np.max(np.abs(x))) + 1e-9
        x = ffmpeg_roundtrip(x * (0.9 / peak), codec, bitrate, pitch) * (peak / 0.9)
        desc.append(f"{codec or ''}{bitrate or ''}{'/pitch%.2f' % pitch if pitch else ''}")
    if rng.random() < 0.05:
        x = np.clip(x / (np.max(np.abs(x)) + 1e-9) * rng.uniform(1.5, 4), -1, 1).astype(np.float32)
        desc.append("clip")
    return x.astype(np.float32), "+".join(desc) or "clean"


def telephone_noisy(x: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The fixed evaluation degradation: white or pink noise at 10 dB SNR, then 300-3400 Hz."""
    kind = "white" if rng.random() < 0.5 else "pink"
    y = add_noise(x, colored_noise(x.shape[0], rng, kind), 10.0, active)
    return band_filter(y, 300.0, 3400.0, order=6)


def _tone(f0: float, n: int, rng: np.random.Generator, n_harm: int, decay: float) -> np.ndarray:
    """A harmonic tone (additive synthesis, random phases), partial k at amplitude k**-decay."""
    t = np.arange(n) / SR
    y = np.zeros(n)
    for k in range(1, n_harm + 1):
        if f0 * k > SR / 2 - 200:
            break
        y += k ** (-decay) * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
    return y


def _env(n: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(1.0, t / max(attack, 1e-3)) * np.exp(-t / release)


def synth_music(n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of random instrumental music: chords, bass line, kick, snare and hi-hat.

    Training material for 'no voice' (its frames are labelled silence): harmonic sounds that are
    not speech, so the model learns that harmony alone is no reason to open the mouth.
    """
    y = np.zeros(n)
    bpm = rng.uniform(70, 160)
    beat = int(SR * 60 / bpm)
    root = 110.0 * 2 ** (rng.integers(-5, 7) / 12)
    progression = rng.choice([0, 2, 3, 5, 7, 8, 9, 10], size=4)
    chord_len = beat * int(rng.choice([2, 4]))
    n_harm, decay = int(rng.integers(3, 14)), float(rng.uniform(0.6, 2.0))
    for ci, start in enumerate(range(0, n, chord_len)):
        seg = min(chord_len, n - start)
        base = root * 2 ** (progression[ci % 4] / 12) * 2
        minor = rng.random() < 0.4
        for semis in (0, 3 if minor else 4, 7) + ((10,) if rng.random() < 0.3 else ()):
            f = base * 2 ** (semis / 12)
            y[start : start + seg] += 0.25 * _tone(f, seg, rng, n_harm, decay) * _env(seg, rng.uniform(0.005, 0.1), rng.uniform(0.4, 3.0))
        # bass: root note on every beat
        for b in range(start, start + seg, beat):
            m = min(beat, n - b)
            y[b : b + m] += 0.5 * _tone(base / 4, m, rng, 4, 1.5) * _env(m, 0.005, 0.25)
    kick = rng.random() < 0.8
    for b in range(0, n, beat):
        m = min(beat // 2, n - b)
        t = np.arange(m) / SR
        if kick:
            y[b : b + m] += 0.7 * np.sin(2 * np.pi * (50 + 80 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.12)
        h = b + beat // 2
        for pos in (b, h):
            mm = min(int(0.08 * SR), n - pos)
            if mm > 0:
                hat = np.diff(rng.standard_normal(mm + 1)) * np.exp(-np.arange(mm) / SR / 0.02)
                y[pos : pos + mm] += 0.15 * hat
        if (b // beat) % 2 == 1 and rng.random() < 0.7:
            mm = min(int(0.15 * SR), n - b)
            y[b : b + mm] += 0.3 * rng.standard_normal(mm) * np.exp(-np.arange(mm) / SR / 0.05)
    y = band_filter(y.astype(np.float32), None, rng.uniform(4000, 7900))
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.5).astype(np.float32)


def novoice_clip(n: int, rng: np.random.Generator, music: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """n samples with no voice in them: synthetic or recorded music, noise, hum, or a mix."""
    r = rng.random()
    if r < 0.35:
        y, desc = synth_music(n, rng), "synth-music"
    elif r < 0.6 and music:
        track = music[int(rng.integers(len(music)))]
        s = int(rng.integers(0, max(1, track.shape[0] - n)))
        y = np.resize(track[s : s + n], n)
        desc = "recorded-music"
    else:
        kind = str(rng.choice(["white", "pink", "brown", "hum", "colored", "colored", "colored"]))
        y, desc = colored_noise(n, rng, kind), f"noise-{kind}"
    if rng.random() < 0.3:
        y = y + colored_noise(n, rng, "colored") * rng.uniform(0.05, 0.5) * np.std(y) / 0.1
        desc += "+noise"
    if rng.random() < 0.3:
        y = reverb(y.astype(np.float32), rng)
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.5).astype(np.float32), desc
