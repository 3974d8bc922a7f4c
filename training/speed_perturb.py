"""Speed-perturbed copies of the real training voices: more voices from the same recordings.

    python -m training.speed_perturb --cache build/speech --real build/lipsync/real --factors 0.9,1.1

Speed perturbation (Ko, Peddinti, Povey & Khudanpur, "Audio augmentation for speech
recognition", Interspeech 2015): the waveform is resampled so that it plays `f` times as fast,
which scales duration by 1/f and pitch and every formant by f, as a shorter (f > 1) or longer
(f < 1) vocal tract and another larynx would. Each copy is stored beside the labelled speaker as
`<speaker>_sp<f>.npz` (e.g. `it_IT_f_Menardi_sp0.90.npz`) with the same fields as
training.label_real writes, so `training.train --speakers it_IT_f_Menardi_sp0.90,...` takes it
as one more real source.

Only prompts that training.label_real aligned are perturbed (the names stored in its .npz), and
their labels are not aligned again: the frame labels are time-stretched by the same factor. Each
recording keeps label_real's 200 ms of digital silence on both sides (not stretched), so speech
sample j of the copy is speech sample j * f of the original. A copy frame's target is the mean of
the original frame targets under its eight 5 ms points (close: their maximum, as
training.align takes the frame's maximum closure), `silent` holds where all eight points are silent,
and p/b/m spans are the copy frames whose points fall in an original p/b/m span.

`--mode formant` makes a formant-only copy instead (`<speaker>_fs<f>.npz`): the spectral
envelope is warped by f in the STFT domain (`formant_shift`), pitch and timing are kept, so the
labels stay as they are. (ffmpeg's rubberband filter was tried first: pitch f, then pitch 1/f with
`formant=preserved`; measured on Menardi's prompts the envelope came back unshifted, scale 1.00-1.01,
because its formant preservation left the envelope moving with the pitch.)

Resampling is band-limited (FFT: the spectrum is cut or zero-padded to the new length; the
recording gets 0.25 s of zeros on both sides first, so the circular wrap meets silence). For f > 1
everything above 8 kHz / f is dropped, as any resampler must.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dhlive_cli.features import logmel
from training import real_speech
from training.label_real import PAD

FRAME = 640  # samples per 40 ms video frame at 16 kHz
POINTS = 8  # 5 ms label points per frame


def speed(x: np.ndarray, f: float) -> np.ndarray:
    """Play `x` (float32, 16 kHz) `f` times as fast: length round(len / f), pitch and formants x f.

    Band-limited resampling through the FFT with 4000 zeros (0.25 s) on both sides, cut off again."""
    guard = 4000
    y = np.concatenate([np.zeros(guard, np.float32), x.astype(np.float32), np.zeros(guard, np.float32)])
    n = y.size
    m = int(round(n / f))
    spec = np.fft.rfft(y.astype(np.float64))
    keep = m // 2 + 1
    if keep <= spec.size:
        spec = spec[:keep].copy()
    else:
        spec = np.concatenate([spec, np.zeros(keep - spec.size, spec.dtype)])
    out = np.fft.irfft(spec, n=m) * (m / n)
    g = int(round(guard / f))
    length = int(round(x.size / f))
    return out[g : g + length].astype(np.float32)


def formant_shift(x: np.ndarray, f: float, n_fft: int = 512, hop: int = 128, lifter: int = 30,
                  max_gain_db: float = 12.0) -> np.ndarray:
    """Formants of `x` (float32, 16 kHz) x f; pitch, timing and length kept.

    Each STFT frame (Hann, n_fft 512 = 32 ms, hop 128) is split into a spectral envelope (the
    cepstrum's first `lifter` coefficients, 1.9 ms: below the pitch period of any voice) and the
    rest (harmonics, noise); the envelope is read at frequency / f, so every resonance moves to
    f times its frequency, and the frame is rebuilt with its own phase (weighted overlap-add).
    The gain per bin is held within +-max_gain_db so the empty band above an 8 kHz recording's
    4 kHz edge is not lifted into audible noise. Source: the cepstral envelope of
    Oppenheim & Schafer, as in classic vocoder formant shifting."""
    win = np.hanning(n_fft + 1)[:-1]
    pad = n_fft
    y = np.concatenate([np.zeros(pad), x.astype(np.float64), np.zeros(pad + hop)])
    n_frames = (y.size - n_fft) // hop + 1
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(y[idx] * win, axis=1)
    logmag = np.log(np.abs(spec) + 1e-9)
    cep = np.fft.irfft(logmag, axis=1)
    cep[:, lifter : n_fft - lifter + 1] = 0.0
    env = np.fft.rfft(cep, axis=1).real
    bins = np.arange(env.shape[1], dtype=np.float64)
    warped = np.stack([np.interp(bins / f, bins, e) for e in env])
    gain = np.clip(warped - env, -max_gain_db / 20 * np.log(10), max_gain_db / 20 * np.log(10))
    frames = np.fft.irfft(spec * np.exp(gain), n=n_fft, axis=1) * win
    out = np.zeros(y.size)
    norm = np.zeros(y.size)
    np.add.at(out, idx, frames)
    np.add.at(norm, idx, np.broadcast_to(win**2, frames.shape))
    out = out / np.maximum(norm, 1e-3)
    return out[pad : pad + x.size].astype(np.float32)


def stretch_labels(tgt: np.ndarray, silent: np.ndarray, bil_spans: list[tuple[int, int]], n_new: int,
                   f: float) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Map one utterance's frame labels onto its speed-perturbed copy of `n_new` frames.

    tgt (n, 4) float32, silent (n,) bool, bil_spans [(start, end)] frames (end exclusive) of the
    original; copy sample s maps to original sample PAD + (s - PAD) * f (the 200 ms pads are kept
    as they are). Returns the copy's (n_new, 4) targets, (n_new,) silent and p/b/m frame spans."""
    n = tgt.shape[0]
    s_new = FRAME * np.arange(n_new)[:, None] + FRAME / POINTS * (np.arange(POINTS)[None, :] + 0.5)
    s_old = PAD + (s_new - PAD) * f
    k = np.clip((s_old // FRAME).astype(np.int64), 0, n - 1)  # (n_new, POINTS) original frame index
    vals = tgt[k]  # (n_new, POINTS, 4)
    out = vals.mean(axis=1)
    out[:, 3] = vals[:, :, 3].max(axis=1)
    sil = silent[k].all(axis=1)
    spans = []
    for s, e in bil_spans:
        hit = np.nonzero(((k >= s) & (k < e)).any(axis=1))[0]
        if hit.size:
            spans.append((int(hit[0]), int(hit[-1]) + 1))
    return out.astype(np.float32), sil, spans


def perturb_speaker(cache: Path, real_dir: Path, speaker: str, factors: list[float], mode: str = "speed") -> None:
    """Write one perturbed copy of `speaker`'s labelled prompts per factor (see the module docstring)."""
    d = np.load(real_dir / f"{speaker}.npz")
    names = [str(n) for n in d["name"]]
    by_name = {p.name: p for p in real_speech.prompts(cache, [speaker])}
    audio = real_speech.load_many([by_name[n].path for n in names])
    starts = np.concatenate([[0], np.cumsum(d["n_frames"])])
    bil = d["bil"]
    for f in factors:
        t0 = time.time()
        mels, tgts, sils, nfs, bils = [], [], [], [], []
        for u, x in enumerate(audio):
            n_old = int(d["n_frames"][u])
            # the stored labels were made on this length: a decode that differs means other audio
            if -(-(x.size + 2 * PAD) // FRAME) != n_old:
                raise ValueError(f"{speaker}/{names[u]}: decoded length does not match the stored labels")
            y = speed(x, f) if mode == "speed" else formant_shift(x, f)
            n = -(-(y.size + 2 * PAD) // FRAME) * FRAME
            buf = np.zeros(n, np.float32)
            buf[PAD : PAD + y.size] = y
            a, b = starts[u], starts[u + 1]
            spans = [(int(s), int(e)) for uu, s, e in bil if uu == u]
            t, sil, sp = stretch_labels(d["tgt"][a:b], d["silent"][a:b], spans, n // FRAME,
                                        f if mode == "speed" else 1.0)
            mels.append(logmel(buf))
            tgts.append(t)
            sils.append(sil)
            nfs.append(t.shape[0])
            bils += [(u, s, e) for s, e in sp]
        name = f"{speaker}_{'sp' if mode == 'speed' else 'fs'}{f:.2f}"
        np.savez(real_dir / f"{name}.npz", mel=np.concatenate(mels), tgt=np.concatenate(tgts),
                 silent=np.concatenate(sils), bil=np.array(bils, np.int64).reshape(-1, 3),
                 n_frames=np.array(nfs), name=d["name"], lang=d["lang"], voice=np.array([name] * len(nfs)))
        print(f"{name}: {len(nfs)} prompts, {sum(nfs) / 25 / 60:.1f} min ({time.time() - t0:.0f}s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default="build/speech", help="unpacked Debian packages (training.real_speech)")
    ap.add_argument("--real", default="build/lipsync/real", help="labelled real speech (training.label_real)")
    ap.add_argument("--speakers", default=",".join(real_speech.TRAIN_SPEAKERS))
    ap.add_argument("--factors", default="0.9,1.1", help="comma-separated speed factors (1.1 = 10 %% faster)")
    ap.add_argument("--mode", default="speed", choices=["speed", "formant"],
                    help="speed: resample (duration, pitch, formants); formant: formants only (rubberband)")
    a = ap.parse_args()
    factors = [float(v) for v in a.factors.split(",")]
    for spk in a.speakers.split(","):
        if spk in real_speech.DEV_SPEAKERS:
            raise SystemExit(f"error: {spk} is a dev speaker and is never trained on")
        perturb_speaker(Path(a.cache), Path(a.real), spk, factors, a.mode)


if __name__ == "__main__":
    main()
