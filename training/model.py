"""The lip-sync network: a small MLP over a fixed log-mel window, with in-graph level normalisation.

Streaming allows no per-utterance normalisation, so the graph normalises each window by itself:
it subtracts the window's loudest row level (a gain shifts every log-mel value by the same
constant, which this removes) and passes that level on as one squashed extra input, so the net
can still tell near-silence from speech but is trained (with +-20 dB random gain) not to lean on
it. A learned 40->24 spectral projection shared across time keeps the parameter count small.
"""

from __future__ import annotations

import torch
from torch import nn

from dhlive_cli.features import LOG_FLOOR, N_MELS

PAST = 20  # 200 ms up to the end of the current 40 ms frame
AHEAD = 8  # 80 ms look-ahead, the contract's maximum


class LipSyncNet(nn.Module):
    """mel (N, past + ahead, 40) float32 raw log-mel -> (N, 4) in [0, 1] (open, spread, round, close).

    proj > 0: a shared 40 -> proj projection per mel row before the MLP (lipsync-v1/v2);
    proj = 0: the MLP reads the whole normalised window (28 x 40 values), the issue's plain recipe.
    hidden: first hidden width; the second is hidden // 2.
    bands: how many of the 40 mel bands (from the lowest) the net reads. The real training voices
    are 8 kHz recordings (nothing above 4 kHz), so a net reading all 40 bands learns "real speech
    has nothing up there" and uses what it learnt from them less on full-band voices: 29 bands
    (up to 3.8 kHz, band centre) scored best on the real dev set, 33 (up to 4.7 kHz) keeps the
    held-out eSpeak voices at r >= 0.84 (models/README.md). Band b's centre: dhlive_cli.features.
    """

    def __init__(self, past: int = PAST, ahead: int = AHEAD, proj: int = 24, hidden: int = 256, dropout: float = 0.2,
                 bands: int = N_MELS):
        super().__init__()
        self.past, self.ahead, self.bands = past, ahead, bands
        self.config = {"proj": proj, "hidden": hidden, "dropout": dropout, "bands": bands}
        t = past + ahead
        self.proj = nn.Linear(bands, proj) if proj else nn.Identity()
        width = t * (proj or bands)
        self.mlp = nn.Sequential(
            nn.Linear(width + 1, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden // 2, 4),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        # mel: (N, T, 40) raw log-mel as produced by dhlive_cli.features
        if self.bands < N_MELS:
            mel = mel[:, :, : self.bands]
        level = mel.mean(dim=2).amax(dim=1, keepdim=True)  # (N, 1): loudest row of the window
        x = mel - level.unsqueeze(2)
        x = torch.clamp(x, min=-12.0) / 4.0 + 1.0
        h = self.proj(x).flatten(1)
        lvl = torch.tanh((level - (LOG_FLOOR + 8.0)) / 4.0)
        return torch.sigmoid(self.mlp(torch.cat([h, lvl], dim=1)))
