"""Mouth-shape letters (Preston Blair style, as used by 2-D lip-sync tools) from the model's
four mouth parameters.

The lip-sync model describes the mouth per frame by `open`, `spread`, `round` and `close`, each in
[0, 1] (see models/README.md). Animation rigs that swap drawn mouths want one of nine letters:

    X  rest, lips together (silence)      A  closed and pressed: p, b, m
    B  slightly open, teeth together      C  open: e, eh, and most vowels in passing
    D  wide open: a                       E  rounded, slightly open: o
    F  puckered: u, w, oo                 G  lower lip on teeth: f, v
    H  tongue up behind teeth: l

The rules below are best effort, because four numbers do not hold everything the letters tell
apart: the model's targets put 1.0 on `close` for p/b/m, 0.8 at rest and 0.45 for f/v, so `close`
separates A, X and G, and `open`/`round` separate the rest. The tongue is not in the parameter
space, so H (l) is never chosen; an l comes out as B or C. Thresholds sit halfway between the
table values of neighbouring shapes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

LETTERS = "XABCDEFGH"

PRESSED_CLOSE = 0.9  # p/b/m target 1.0 vs rest 0.8
CLOSED_OPEN = 0.12  # below this the lips are (nearly) together
LABIODENTAL_CLOSE = (0.3, 0.62)  # f/v target 0.45


def mouth_cue(open_: float, spread: float, round_: float, close: float) -> str:
    """One frame's letter from its four parameters."""
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
    if open_ >= 0.68:
        return "D"
    if open_ >= 0.36:
        return "C"
    return "B"


def mouth_cues(params: np.ndarray | Iterable[Iterable[float]]) -> list[str]:
    """Letters for an (N, 4) array of open, spread, round, close."""
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    return [mouth_cue(*row) for row in p]
