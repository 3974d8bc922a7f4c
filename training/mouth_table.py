"""Phoneme-to-mouth table and coarticulation: eSpeak IPA phoneme events -> 4 targets per frame.

Parameters, each in [0, 1] (documented in models/README.md):
  open    jaw/lip opening (0 = lips together, 1 = widest 'a')
  spread  lip spread / corner retraction (1 = 'ee' smile)
  round   lip rounding / protrusion (1 = 'oo')
  close   lip closure (1 = lips pressed: p b m; 0.45 = lower lip on teeth: f v; rest 0.8)

Coarticulation follows the Cohen-Massaro dominance model: every phoneme has a target and a
dominance per parameter; outside its own segment the dominance decays exponentially with the
distance (faster after the segment than before it, so anticipation such as lip rounding before
an 'oo' reaches further than carry-over). The mouth at time t is the dominance-weighted mean of
the targets. A frame's target is the mean over its 40 ms (640 samples at 16 kHz) except `close`,
which is the frame's maximum: a 30 ms bilabial closure must show in the frame that holds it.
"""

from __future__ import annotations

import unicodedata

import numpy as np

PARAMS = ("open", "spread", "round", "close")

#            open spread round close   (vowels: dominance 1 on open/spread/round)
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (0.20, 0.85, 0.00), "y": (0.20, 0.10, 0.85), "ɨ": (0.22, 0.45, 0.10), "ʉ": (0.22, 0.10, 0.75),
    "ɯ": (0.22, 0.55, 0.00), "u": (0.20, 0.00, 0.95), "ɪ": (0.30, 0.65, 0.00), "ʏ": (0.30, 0.10, 0.70),
    "ʊ": (0.30, 0.05, 0.70), "e": (0.40, 0.70, 0.00), "ø": (0.38, 0.10, 0.75), "ɘ": (0.40, 0.40, 0.10),
    "ɵ": (0.38, 0.10, 0.60), "ɤ": (0.40, 0.40, 0.05), "o": (0.42, 0.00, 0.85), "ə": (0.40, 0.35, 0.10),
    "ɛ": (0.55, 0.55, 0.00), "œ": (0.52, 0.10, 0.60), "ɜ": (0.50, 0.40, 0.05), "ɞ": (0.50, 0.10, 0.50),
    "ʌ": (0.60, 0.30, 0.00), "ɔ": (0.62, 0.00, 0.65), "æ": (0.78, 0.55, 0.00), "ɐ": (0.62, 0.30, 0.00),
    "a": (0.88, 0.35, 0.00), "ɶ": (0.80, 0.10, 0.40), "ɑ": (0.92, 0.15, 0.05), "ɒ": (0.80, 0.00, 0.40),
    "ɚ": (0.40, 0.20, 0.35), "ɝ": (0.50, 0.20, 0.35), "ᵻ": (0.30, 0.50, 0.00),
}

# consonant classes: (open, spread, round, close), dominance (open, spread, round, close)
CLASSES: dict[str, tuple[tuple[float, float, float, float], tuple[float, float, float, float]]] = {
    "bilabial":   ((0.00, 0.25, 0.15, 1.00), (8.0, 0.6, 0.6, 10.0)),
    "bilab_fric": ((0.08, 0.20, 0.30, 0.60), (3.0, 0.5, 0.5, 3.0)),
    "labiodent":  ((0.10, 0.35, 0.05, 0.45), (3.0, 0.8, 0.8, 3.0)),
    "dental":     ((0.22, 0.40, 0.00, 0.00), (1.0, 0.4, 0.3, 1.0)),
    "alveolar":   ((0.20, 0.45, 0.05, 0.00), (0.7, 0.3, 0.2, 1.0)),
    "lateral":    ((0.30, 0.40, 0.05, 0.00), (0.6, 0.3, 0.2, 1.0)),
    "rhotic":     ((0.25, 0.35, 0.10, 0.00), (0.5, 0.3, 0.2, 1.0)),
    "approx_r":   ((0.22, 0.10, 0.45, 0.00), (0.7, 0.8, 0.8, 1.0)),
    "postalv":    ((0.18, 0.05, 0.60, 0.00), (1.0, 1.0, 1.2, 1.0)),
    "alvpal":     ((0.18, 0.45, 0.20, 0.00), (1.0, 0.8, 0.6, 1.0)),
    "retroflex":  ((0.20, 0.20, 0.35, 0.00), (0.8, 0.6, 0.8, 1.0)),
    "palatal":    ((0.20, 0.60, 0.00, 0.00), (0.7, 0.8, 0.5, 1.0)),
    "velar":      ((0.28, 0.30, 0.10, 0.00), (0.3, 0.2, 0.2, 1.0)),
    "uvular":     ((0.30, 0.25, 0.15, 0.00), (0.3, 0.2, 0.2, 1.0)),
    "glottal":    ((0.32, 0.30, 0.10, 0.00), (0.1, 0.1, 0.1, 0.5)),
    "labvelar":   ((0.12, 0.00, 0.95, 0.00), (2.0, 2.0, 3.0, 1.0)),
    "silence":    ((0.00, 0.10, 0.10, 0.80), (5.0, 1.0, 1.0, 1.0)),
}

CONSONANTS: dict[str, str] = {}
for cls, chars in {
    "bilabial": "pbmɓʙ", "bilab_fric": "ɸβ", "labiodent": "fvɱʋ", "dental": "θð",
    "alveolar": "tdnszɬɮʦʣ", "lateral": "lɫʟ", "rhotic": "ɾrɺʀ", "approx_r": "ɹ", "postalv": "ʃʒ",
    "alvpal": "ɕʑ", "retroflex": "ʂʐɻʈɖɳɭ", "palatal": "cɟçʝjɲʎ", "velar": "kgɡxɣŋɰ",
    "uvular": "qɢχʁɴ", "glottal": "hɦʔħʕ", "labvelar": "wʍɥ",
}.items():
    for ch in chars:
        CONSONANTS[ch] = cls

VOWEL_DOM = (1.0, 1.0, 1.0, 1.0)
# Classes that dominate strongly inside their segment let go fast outside it: lips part for the
# vowel after a p/b/m, and the mouth opens for speech after a pause, within ~30 ms. Without this,
# a dominance of 8 leaking with the normal time constants holds the 'a' of "map" at 0.2 open.
TAU_SCALE = {"bilabial": (0.3, 1.0, 1.0, 0.5), "silence": (0.3, 1.0, 1.0, 1.0)}
# decay constants in ms: (anticipation before a segment, carry-over after it) per parameter
TAU_BEFORE = np.array([35.0, 40.0, 70.0, 20.0])
TAU_AFTER = np.array([30.0, 30.0, 40.0, 15.0])
# symbols that modify the previous one and carry no shape of their own
_SKIP = set("ˈˌːˑ.-_^'\"|‖ˀʰʲˠˤ̩̯̪̥̬̃̚͡‿")
BILABIAL_STOPS = set("pbm")


def parse(name: str) -> list[tuple[str, str]]:
    """IPA event name -> list of (kind, symbol): kind 'v' vowel, 'c' consonant class, '?' unknown.

    Diphthongs and affricates come back as several parts and share the segment equally.
    'h' right after a consonant is aspiration (eSpeak writes Mandarin 'tɕh'), not a phoneme.
    'ʷ' adds a rounded w-like part.
    """
    if name == "":
        return [("c", "silence")]
    parts: list[tuple[str, str]] = []
    for ch in unicodedata.normalize("NFD", name):
        if ch in _SKIP or unicodedata.combining(ch):
            continue
        if ch == "ʷ":
            parts.append(("c", "labvelar"))
        elif ch in VOWELS:
            parts.append(("v", ch))
        elif ch in CONSONANTS:
            if ch == "h" and parts and parts[-1][0] == "c":
                continue
            parts.append(("c", ch))
        elif ch in "ɝɚ":
            parts.append(("v", ch))
        else:
            parts.append(("?", ch))
    return parts or [("?", name)]


def part_target(kind: str, sym: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, dominance, time-constant scale) of one part."""
    one = np.ones(4)
    if kind == "v":
        o, s, r = VOWELS[sym]
        return np.array([o, s, r, 0.0]), np.array(VOWEL_DOM), one
    if kind == "c":
        cls = sym if sym in CLASSES else CONSONANTS[sym]
        t, d = CLASSES[cls]
        return np.array(t), np.array(d), np.array(TAU_SCALE.get(cls, one))
    # unknown symbol: a neutral consonant with low dominance, so neighbours decide
    return np.array([0.25, 0.30, 0.15, 0.0]), np.array([0.3, 0.3, 0.3, 0.3]), one


def segments(events: list[tuple[int, str]], n_samples: int) -> list[tuple[int, int, np.ndarray, np.ndarray, str, np.ndarray]]:
    """Phoneme events (start sample, IPA) -> (start, end, target, dominance, tag, tau scale).

    tag is "sil" for pauses, "pbm" for bilabial stops/nasal, "" otherwise.

    Audio before the first event and after the last is silence.
    """
    ev = sorted(events, key=lambda e: e[0])
    out = []
    if not ev or ev[0][0] > 0:
        t, d, ts = part_target("c", "silence")
        out.append((0, ev[0][0] if ev else n_samples, t, d, "sil", ts))
    for i, (s, name) in enumerate(ev):
        e = ev[i + 1][0] if i + 1 < len(ev) else n_samples
        e = min(e, n_samples)
        if e <= s:
            continue
        parts = parse(name)
        bounds = np.linspace(s, e, len(parts) + 1).round().astype(int)
        for (kind, sym), a, b in zip(parts, bounds[:-1], bounds[1:]):
            if b > a:
                t, d, ts = part_target(kind, sym)
                tag = "sil" if sym == "silence" else "pbm" if kind == "c" and sym in BILABIAL_STOPS else ""
                out.append((a, b, t, d, tag, ts))
    return out


def mouth_track(segs, n_samples: int, rate: int = 16000, step: int = 80) -> np.ndarray:
    """Dominance-weighted mouth parameters on a grid of `step` samples: (n_steps, 4)."""
    n = -(-n_samples // step)
    t_ms = (np.arange(n) * step + step / 2) * 1000.0 / rate
    num = np.zeros((n, 4))
    den = np.full((n, 4), 1e-9)
    for a, b, tgt, dom, _tag, ts in segs:
        a_ms, b_ms = a * 1000.0 / rate, b * 1000.0 / rate
        before = np.clip(a_ms - t_ms, 0, None)[:, None]
        after = np.clip(t_ms - b_ms, 0, None)[:, None]
        w = dom[None, :] * np.exp(-before / (TAU_BEFORE * ts) - after / (TAU_AFTER * ts))
        num += w * tgt[None, :]
        den += w
    return np.clip(num / den, 0.0, 1.0)


def frame_targets(segs, n_samples: int, n_frames: int, spf: int = 640, step: int = 80) -> np.ndarray:
    """Per video frame (spf samples) targets: mean of the grid inside the frame; close = max."""
    track = mouth_track(segs, n_frames * spf, step=step)
    per = spf // step
    g = track[: n_frames * per].reshape(n_frames, per, 4)
    out = g.mean(axis=1)
    out[:, 3] = g[:, :, 3].max(axis=1)
    return out.astype(np.float32)


def frame_labels(segs, n_frames: int, spf: int = 640, audio: np.ndarray | None = None,
                 quiet_db: float = -40.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Silence mask per frame and frame spans of p/b/m segments.

    A frame is silent when it lies wholly inside pauses and, given the clean audio, its RMS is
    more than `quiet_db` below the utterance's loudest frame: eSpeak starts a pause while the
    last vowel still rings, and a mouth that is still sounding is not shut.
    """
    silent = np.zeros(n_frames, bool)
    cover = np.zeros(n_frames * spf, bool)
    bil = []
    for a, b, _tgt, _dom, tag, _ts in segs:
        if tag == "sil":
            cover[a:b] = True
        if tag == "pbm":
            bil.append((a // spf, max(a // spf + 1, -(-b // spf))))
    if cover.size:
        silent = cover[: n_frames * spf].reshape(n_frames, spf).all(axis=1)
    if audio is not None:
        rms = np.sqrt(np.mean(audio[: n_frames * spf].reshape(n_frames, spf).astype(np.float64) ** 2, axis=1))
        silent &= 20 * np.log10(rms + 1e-12) < 20 * np.log10(rms.max() + 1e-12) + quiet_db
    return silent, bil
