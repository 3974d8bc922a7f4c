"""Per-band mean normalisation of log-mel features (cepstral-mean-style), for experiments.

A fixed colouring of the signal (vocal tract, microphone, codec EQ) adds a constant per band to
log-mel; subtracting each band's mean over the speech rows removes it (the log-spectral twin of
cepstral mean normalisation, Atal 1974). Only the *shape* is removed: the offsets are made
zero-mean across the bands the net reads, so every row's mean level (what the net's gain
normalisation and its silence input use) stays as it was.

`utterance_cmn` takes the mean over the utterance's speech rows: an upper bound for the idea, as
it needs the whole utterance (a streaming engine would need a running mean instead; not built,
because this bound did not help: models/README.md, "How this recipe was chosen"). A row is speech
when its mean power over the read bands is within SPEECH_DB of the utterance's loudest row and
above ABS_FLOOR (natural-log units of the feature).
"""

from __future__ import annotations

import numpy as np

from dhlive_cli.features import LOG_FLOOR

SPEECH_DB = 30.0
ABS_FLOOR = LOG_FLOOR + 8.0  # rows this close to digital silence never count as speech


def _row_power(mel: np.ndarray, bands: int) -> np.ndarray:
    m = mel[:, :bands].astype(np.float64)
    mx = m.max(axis=1, keepdims=True)
    return (mx[:, 0] + np.log(np.exp(m - mx).sum(axis=1))) - np.log(bands)


def utterance_cmn(mel: np.ndarray, bands: int = 33) -> np.ndarray:
    """(rows, 40) -> (rows, 40): subtract each band's mean over the speech rows, shape only."""
    if mel.shape[0] == 0:
        return mel
    e = _row_power(mel, bands)
    speech = (e >= e.max() - SPEECH_DB * np.log(10) / 10) & (e > ABS_FLOOR)
    if not speech.any():
        return mel
    mu = mel[speech].astype(np.float64).mean(axis=0)
    off = mu - mu[:bands].mean()
    return (mel - off).astype(np.float32)


def normalise(mel: np.ndarray, n_frames: np.ndarray, mode: str = "utt", bands: int = 33) -> np.ndarray:
    """(rows, 40) -> (rows, 40): utterance_cmn utterance by utterance (4 mel rows per frame of
    n_frames); mode '' returns mel unchanged."""
    if not mode:
        return mel
    out = np.empty_like(mel)
    off = 0
    for n in n_frames:
        r = slice(off, off + 4 * int(n))
        out[r] = utterance_cmn(mel[r], bands)
        off += 4 * int(n)
    return out

