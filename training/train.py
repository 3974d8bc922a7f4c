"""Train LipSyncNet on eSpeak speech, real speech and voiceless audio (CPU, 2 threads, fixed seed).

    python -m training.train --data build/lipsync/data --real build/lipsync/real --out build/lipsync/model.pt

Sources, mixed in every epoch:
- data/train.npz: eSpeak NG speech with exact phoneme timing (training.generate), minus the last
  4 % of utterances kept as a validation split;
- real/<speaker>.npz for training.real_speech.TRAIN_SPEAKERS: real voices labelled by forced
  alignment (training.label_real), repeated `--real-repeat` times per epoch;
- data/novoice.npz: music, noise and hum with no voice, every frame labelled silence.
The dev speakers are never loaded here.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from dhlive_cli.features import LOG_EPS, LOG_FLOOR, N_MELS
from training.model import AHEAD, PAST, LipSyncNet

LOSS_W = torch.tensor([1.0, 0.6, 0.6, 1.0])
CLOSED_EXTRA = 4.0  # extra weight on `open` where its target is ~closed (< 0.08)


class WindowSet:
    """All utterances as one padded row array, so a batch of windows is one gather."""

    def __init__(self, mel: np.ndarray, n_frames: np.ndarray, tgt: np.ndarray, past: int, ahead: int):
        rows, starts, pos = [], [], 0
        off = 0
        floor_front = np.full((past, N_MELS), LOG_FLOOR, np.float32)
        floor_back = np.full((ahead + 4, N_MELS), LOG_FLOOR, np.float32)
        for n in n_frames:
            m = mel[off : off + 4 * n]
            off += 4 * n
            rows += [floor_front, m, floor_back]
            # frame k window = utterance rows [4k + 4 - past, 4k + 4 + ahead) -> padded index + past
            starts.append(pos + 4 + 4 * np.arange(n))
            pos += past + m.shape[0] + ahead + 4
        self.rows = torch.from_numpy(np.concatenate(rows))
        self.start = torch.from_numpy(np.concatenate(starts))
        self.tgt = torch.from_numpy(tgt.astype(np.float32))
        self.offsets = torch.arange(past + ahead)

    def __len__(self) -> int:
        return self.start.shape[0]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rows[self.start[idx, None] + self.offsets], self.tgt[idx]


GAIN_DB = (-50.0, 8.0)  # data sits at peak -6 dBFS: this spans peaks of -56..+2 dBFS


def level_eq_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random gain (GAIN_DB) and a random smooth EQ across the mel bands, exact in power domain."""
    n = x.shape[0]
    gain_db = torch.rand(n, 1, 1, generator=gen) * (GAIN_DB[1] - GAIN_DB[0]) + GAIN_DB[0]
    tilt_db = (torch.rand(n, 1, 1, generator=gen) * 2 - 1) * 8
    band = torch.linspace(-1, 1, N_MELS).view(1, 1, -1)
    knots = (torch.rand(n, 1, 4, generator=gen) * 2 - 1) * 4
    bumps = torch.nn.functional.interpolate(knots, size=N_MELS, mode="linear", align_corners=True)
    db = gain_db + tilt_db * band + bumps
    power = torch.clamp(torch.exp(x) - LOG_EPS, min=0.0)
    return torch.log(power * torch.pow(10.0, db / 10.0) + LOG_EPS)


def evaluate_loss(model, ds: WindowSet, bs: int = 4096) -> float:
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(ds), bs):
            idx = torch.arange(i, min(i + bs, len(ds)))
            x, y = ds.batch(idx)
            p = model(x)
            tot += float(((p - y) ** 2).mean(dim=0) @ LOSS_W) * idx.numel()
            n += idx.numel()
    model.train()
    return tot / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="build/lipsync/data")
    ap.add_argument("--out", default="build/lipsync/model.pt")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--real", default="build/lipsync/real", help="labelled real speech ('' for none)")
    ap.add_argument("--real-repeat", type=int, default=3, help="times each real frame is seen per epoch")
    # one thread: on a busy shared machine two OpenMP threads spin against each other (measured
    # here: 4.7 s per step with 2 threads against 0.5 s with 1, same work)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    d = np.load(f"{a.data}/train.npz")
    n_frames = d["n_frames"]
    n_val_utt = max(1, len(n_frames) // 25)
    cut_f = int(n_frames[:-n_val_utt].sum())
    # (name, mel, n_frames, tgt, repeat)
    sources = [("espeak", d["mel"][: 4 * cut_f], n_frames[:-n_val_utt], d["tgt"][:cut_f], 1)]
    if a.real:
        from training.real_speech import TRAIN_SPEAKERS

        for spk in TRAIN_SPEAKERS:
            r = np.load(f"{a.real}/{spk}.npz")
            sources.append((spk, r["mel"], r["n_frames"], r["tgt"], a.real_repeat))
    if os.path.exists(f"{a.data}/novoice.npz"):
        nv = np.load(f"{a.data}/novoice.npz")
        sources.append(("novoice", nv["mel"], nv["n_frames"], nv["tgt"], 1))
    train = WindowSet(np.concatenate([s[1] for s in sources]), np.concatenate([s[2] for s in sources]),
                      np.concatenate([s[3] for s in sources]), PAST, AHEAD)
    reps, off = [], 0
    for name, _m, nf, _t, rep in sources:
        n = int(nf.sum())
        print(f"source {name}: {len(nf)} utterances, {n} frames ({n / 25 / 60:.1f} min) x{rep}", flush=True)
        reps.append(torch.arange(off, off + n).repeat(rep))
        off += n
    epoch_idx = torch.cat(reps)
    val = WindowSet(d["mel"][4 * cut_f :], n_frames[-n_val_utt:], d["tgt"][cut_f:], PAST, AHEAD)
    print(f"train frames {len(epoch_idx)} per epoch, validation frames {len(val)} (last {n_val_utt} eSpeak utterances)",
          flush=True)
    model = LipSyncNet()
    print(f"parameters: {sum(p.numel() for p in model.parameters())}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-2)
    steps_per_epoch = len(epoch_idx) // a.batch
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 300) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    t0 = time.time()
    for ep in range(a.epochs):
        perm = epoch_idx[torch.randperm(len(epoch_idx), generator=gen)]
        run = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch : (s + 1) * a.batch]
            x, y = train.batch(idx)
            x = level_eq_augment(x, gen)
            p = model(x)
            # a mouth left open after speech stops looks worse than a late small opening, and
            # the table's open targets near 0 (pauses, p/b/m) are where smoothing hurts most
            w = torch.ones_like(y)
            w[:, 0] += CLOSED_EXTRA * (y[:, 0] < 0.08)
            bce = (torch.nn.functional.binary_cross_entropy(p, y, reduction="none") * w).mean(dim=0)
            loss = bce @ LOSS_W
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += loss.item()
        vl = evaluate_loss(model, val)
        print(f"epoch {ep + 1}/{a.epochs}: train bce {run / steps_per_epoch:.4f}, val mse {vl:.4f}, "
              f"{time.time() - t0:.0f}s", flush=True)
    torch.save({"state_dict": model.state_dict(), "past": PAST, "ahead": AHEAD}, a.out)
    print(f"saved {a.out}; training wall time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
