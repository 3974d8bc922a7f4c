"""Mouth-shape letters (Preston Blair style, as used by 2-D lip-sync tools) from the model's
four mouth parameters, and cues: runs of one letter with a start and an end time.

The lip-sync model describes the mouth per frame by `open`, `spread`, `round` and `close`, each in
[0, 1] (see models/README.md). Animation rigs that swap drawn mouths want one of nine letters:

    X  rest, lips together (silence)      A  closed and pressed: p, b, m
    B  slightly open, teeth together      C  open: e, eh, and most vowels in passing
    D  wide open: a                       E  rounded, slightly open: o
    F  puckered: u, w, oo                 G  lower lip on teeth: f, v
    H  tongue up behind the upper teeth: l, th, n, t, d (the Preston Blair "L" drawing)

The rules below are best effort, because four numbers do not hold everything the letters tell
apart: the model's targets put 1.0 on `close` for p/b/m, 0.8 at rest and 0.45 for f/v, so `close`
separates A, X and G, and `open`/`round` separate the rest. The tongue is not a parameter, so H
is read from where the tongue-tip consonants sit in the parameter space of the model card's
target table: the dental (th: open 0.22, spread 0.40), alveolar (t d n s z: 0.20, 0.45), lateral
(l: 0.30, 0.40) and tap (0.25, 0.35) rows share a small, mid-spread, unrounded, unclosed opening,
while the vowels near them differ in spread (i: 0.85, ɪ: 0.65, e: 0.70) or opening (ə: 0.40)
and the velars in spread (k g: 0.30). s and z land there too (same target as t and d): the
parameters cannot tell a hiss from a tap. A tongue shown for a single frame reads as flicker, so
cues() keeps H only for runs of at least H_MIN_S (a tap or an l held for 60 ms or more; Rhubarb's
documentation keeps H for long L sounds) and shows shorter ones as B, the consonant shape.
Thresholds sit halfway between the table values of neighbouring shapes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

LETTERS = "XABCDEFGH"
BASIC = "ABCDEF"  # the six every mouth set draws; G, H and X are optional ("extended")

PRESSED_CLOSE = 0.9  # p/b/m target 1.0 vs rest 0.8
CLOSED_OPEN = 0.12  # below this the lips are (nearly) together
LABIODENTAL_CLOSE = (0.3, 0.62)  # f/v target 0.45
TONGUE_OPEN = (0.15, 0.36)  # th/t/d/n/l targets 0.20-0.30; vowels from 0.40 (ə) open wider
TONGUE_SPREAD = (0.33, 0.57)  # th/t/d/n/l 0.35-0.45; velars 0.30, i/ɪ/e 0.65-0.85
TONGUE_ROUND = 0.2  # th/t/d/n/l 0.00-0.10; rounded consonants and vowels from 0.35
TONGUE_CLOSE = 0.3  # the tongue shows only with the lips apart
H_MIN_S = 0.06  # shorter tongue runs show as B
# The track eases `close` from 0 to the rest value 0.8 over 2-3 frames when speech stops (and back
# when it starts): those frames cross the f/v closure range. A G run this short that touches a
# closed mouth (X or A) is that ramp, not an f or v, and shows as the closed mouth it touches.
G_RAMP_S = 0.1

# What a mouth set without an optional shape shows instead (Rhubarb's --extendedShapes rule:
# the basic six always exist): f/v -> teeth together, tongue -> open, rest -> closed.
FALLBACK = {"G": "B", "H": "C", "X": "A"}

# Papagayo / Preston Blair drawing names for the letters (what Moho and OpenToonz switch on).
PRESTON_BLAIR = {"A": "MBP", "B": "etc", "C": "E", "D": "AI", "E": "O", "F": "U", "G": "FV", "H": "L",
                 "X": "rest"}


def mouth_cue(open_: float, spread: float, round_: float, close: float) -> str:
    """One frame's letter (one of LETTERS) from its four parameters, each in [0, 1]."""
    if open_ < CLOSED_OPEN and close >= LABIODENTAL_CLOSE[1]:
        return "A" if close >= PRESSED_CLOSE else "X"
    if open_ < 0.25 and LABIODENTAL_CLOSE[0] <= close < LABIODENTAL_CLOSE[1]:
        return "G"
    if open_ < 0.06:
        return "X"
    if round_ >= 0.6 and open_ < 0.36:
        return "F"
    if round_ >= 0.45:
        return "E"
    if (TONGUE_OPEN[0] <= open_ < TONGUE_OPEN[1] and TONGUE_SPREAD[0] <= spread < TONGUE_SPREAD[1]
            and round_ < TONGUE_ROUND and close < TONGUE_CLOSE):
        return "H"
    if open_ >= 0.68:
        return "D"
    if open_ >= 0.36:
        return "C"
    return "B"


def mouth_cues(params: np.ndarray | Iterable[Iterable[float]]) -> list[str]:
    """Letters for an (N, 4) array of open, spread, round, close (per frame, no run rules)."""
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    return [mouth_cue(*row) for row in p]


@dataclass(frozen=True, slots=True)
class MouthCue:
    """One mouth shape held from start_s to end_s (seconds from the start of the audio)."""

    start_s: float
    end_s: float
    shape: str  # one letter of LETTERS


def parse_extended(extended: str) -> str:
    """Check an --extended-shapes value (any of G, H, X, in any order, or empty); returns it
    upper-cased. Raises ValueError naming the bad letter."""
    ext = extended.upper()
    for ch in ext:
        if ch not in "GHX":
            raise ValueError(f"extended shapes are G, H and X; {ch!r} is not one")
    return ext


def settle_letters(letters: Sequence[str], fps: int, extended: str = "GHX") -> list[str]:
    """Per-frame letters after the run rules: an H run shorter than H_MIN_S becomes B, a G run
    shorter than G_RAMP_S next to X or A becomes that closed mouth, and the optional shapes a mouth set lacks (not in extended) become their FALLBACK. Same length."""
    out = list(letters)
    h_min = max(1, math.ceil(H_MIN_S * fps - 1e-9))
    g_ramp = max(1, math.ceil(G_RAMP_S * fps - 1e-9))
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and out[j] == out[i]:
            j += 1
        if out[i] == "H" and j - i < h_min:
            out[i:j] = ["B"] * (j - i)
        elif out[i] == "G" and j - i < g_ramp:
            after = out[j] if j < len(out) else "X"  # the audio starts and ends with a closed mouth
            before = out[i - 1] if i > 0 else "X"
            closed = after if after in "XA" else before if before in ("X", "A") else None
            if closed:
                out[i:j] = [closed] * (j - i)
        i = j
    return [FALLBACK[c] if c in FALLBACK and c not in extended else c for c in out]


def cues(letters: Sequence[str], fps: int, duration_s: float) -> list[MouthCue]:
    """Runs of equal letters as cues. Frame k covers [k/fps, (k+1)/fps); the last cue ends at
    duration_s (the audio's length), and a run that would start at or after it is dropped.
    Consecutive cues touch: each one's end is the next one's start."""
    out: list[MouthCue] = []
    i = 0
    while i < len(letters):
        j = i
        while j < len(letters) and letters[j] == letters[i]:
            j += 1
        start, end = i / fps, min(j / fps, duration_s)
        if start < duration_s:
            out.append(MouthCue(start, end, letters[i]))
        i = j
    if out:
        last = out[-1]
        out[-1] = MouthCue(last.start_s, duration_s, last.shape)
    return out
