"""Train LipSyncNet on eSpeak speech, real speech and voiceless audio (CPU, 2 threads, fixed seed).

    python -m training.train --data build/lipsync/data --real build/lipsync/real --out build/lipsync/model.pt

Sources, mixed in every epoch:
- data/train.npz (when made): eSpeak NG speech with exact phoneme timing (training.generate);
- real/<speaker>.npz for training.real_speech.TRAIN_SPEAKERS (or the sources named in
  --speakers, e.g. the Festival voices of training.festival_speech): real voices labelled by
  forced alignment (training.label_real), repeated `--real-repeat` times per epoch (`name:k` in
  --speakers: k times);
- data/novoice.npz: music, noise and hum with no voice, every frame labelled silence.
The extra loss weight on closed-mouth `open` targets is --closed-extra (4) for every source;
--closed-extra-for 'PATTERN=W,...' gives the sources whose name matches a shell-style PATTERN
weight W instead (e.g. 'fest_*=8': the Festival voices, whose p/b/m closures are synthetic and
exact; the first matching pattern wins). Without it every frame gets --closed-extra, as before.
--espeak-repeat K shows the eSpeak source K times per epoch (default once); --max-utts-for
'PATTERN=N,...' keeps only the first N utterances of the real sources that match (default all).
The last 4 % of each source's utterances are the validation split. With --init the weights start
from an exported model (lipsync-v2 starts from lipsync-v1, which learnt eSpeak speech in 8000
utterances). --ahead K trains a window of K look-ahead rows (10 ms each; the shipped contract is
8); from a model with fewer, the extra rows start at zero weight, so training starts from that
model's function. The dev speakers are never loaded here.
"""

from __future__ import annotations

import argparse
import fnmatch
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


def _band_centres_hz() -> torch.Tensor:
    """Centre frequency (Hz) of each of the N_MELS bands of dhlive_cli.features (HTK mel, 50..8000 Hz)."""
    from dhlive_cli.features import F_MAX, F_MIN

    mel = torch.linspace(2595.0 * math.log10(1 + F_MIN / 700), 2595.0 * math.log10(1 + F_MAX / 700), N_MELS + 2)
    return (700.0 * (10.0 ** (mel / 2595.0) - 1.0))[1:-1]


def level_eq_augment(x: torch.Tensor, gen: torch.Generator, eq: float = 1.0, bumps_db: float = 4.0,
                     knots: int = 4, lowpass_p: float = 0.0, bandpass_p: float = 0.0,
                     mask_p: float = 0.0) -> torch.Tensor:
    """Random gain and channel colouring of log-mel windows (N, T, 40), exact in the power domain.

    - gain uniform in GAIN_DB;
    - EQ: a tilt of +-8 dB x eq across the bands plus smooth bumps (`knots` random levels of
      +-bumps_db x eq, linearly interpolated over the bands): the shipped recipe is eq 1, 4 dB, 4;
    - lowpass_p: share of windows given a low-pass with its corner uniform in 3.4..8 kHz (48 dB per
      octave above it, floor -60 dB): 8 kHz, wideband codecs, MP3 at low rates;
    - bandpass_p: share of windows given a codec-like high-pass, corner 150..400 Hz (same slope),
      as telephone and VoIP paths cut the low end;
    - mask_p: share of windows with one span of 1..4 adjacent bands attenuated by 10..30 dB (a
      notch; the frequency masking of SpecAugment, Park et al. 2019, in a soft form).
    """
    n = x.shape[0]
    gain_db = torch.rand(n, 1, 1, generator=gen) * (GAIN_DB[1] - GAIN_DB[0]) + GAIN_DB[0]
    tilt_db = (torch.rand(n, 1, 1, generator=gen) * 2 - 1) * 8 * eq
    band = torch.linspace(-1, 1, N_MELS).view(1, 1, -1)
    kn = (torch.rand(n, 1, knots, generator=gen) * 2 - 1) * bumps_db * eq
    bumps = torch.nn.functional.interpolate(kn, size=N_MELS, mode="linear", align_corners=True)
    db = gain_db + tilt_db * band + bumps
    if lowpass_p > 0 or bandpass_p > 0:
        f = _band_centres_hz().view(1, 1, -1)
        if lowpass_p > 0:
            fc = 3400.0 + torch.rand(n, 1, 1, generator=gen) * (8000.0 - 3400.0)
            on = (torch.rand(n, 1, 1, generator=gen) < lowpass_p).float()
            db = db - on * torch.clamp(48.0 * torch.log2(f / fc), 0.0, 60.0)
        if bandpass_p > 0:
            fc = 150.0 + torch.rand(n, 1, 1, generator=gen) * 250.0
            on = (torch.rand(n, 1, 1, generator=gen) < bandpass_p).float()
            db = db - on * torch.clamp(48.0 * torch.log2(fc / f), 0.0, 60.0)
    if mask_p > 0:
        lo = torch.randint(0, N_MELS, (n, 1, 1), generator=gen)
        width = torch.randint(1, 5, (n, 1, 1), generator=gen)
        depth = 10.0 + torch.rand(n, 1, 1, generator=gen) * 20.0
        on = (torch.rand(n, 1, 1, generator=gen) < mask_p).float()
        idx = torch.arange(N_MELS).view(1, 1, -1)
        db = db - on * depth * ((idx >= lo) & (idx < lo + width)).float()
    power = torch.clamp(torch.exp(x) - LOG_EPS, min=0.0)
    return torch.log(power * torch.pow(10.0, db / 10.0) + LOG_EPS)


def band_warp(x: torch.Tensor, gen: torch.Generator, warp: float) -> torch.Tensor:
    """Vocal-tract-length perturbation on log-mel windows (N, T, 40): band b takes the value at
    band position b * alpha (linear interpolation, clamped at the top band), alpha uniform in
    [1 - warp, 1 + warp] per window. Above ~1 kHz the mel scale is near-logarithmic, so this is
    close to scaling every formant by one factor, as a longer or shorter vocal tract does (the
    VTLP idea of Jaitly & Hinton, 2013, applied to mel bands instead of the FFT axis)."""
    n = x.shape[0]
    alpha = 1.0 + (torch.rand(n, 1, generator=gen) * 2 - 1) * warp
    pos = torch.clamp(torch.arange(N_MELS, dtype=torch.float32).view(1, -1) * alpha, 0, N_MELS - 1)
    lo = pos.floor().long()
    hi = torch.clamp(lo + 1, max=N_MELS - 1)
    frac = (pos - lo).unsqueeze(1)
    lo = lo.unsqueeze(1).expand(-1, x.shape[1], -1)
    hi = hi.unsqueeze(1).expand(-1, x.shape[1], -1)
    return torch.gather(x, 2, lo) * (1 - frac) + torch.gather(x, 2, hi) * frac


def load_onnx_weights(model: LipSyncNet, path: str) -> None:
    """Copy the weights of an exported LipSyncNet (training/export.py) back into `model`.

    torch.onnx keeps parameter names except the shared projection, which it folds into a
    MatMul initializer holding the transposed weight."""
    import onnx
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    state = model.state_dict()
    for name in state:
        if name in init:
            arr = init[name]
        elif name == "proj.weight":
            # a net reading fewer bands (--bands) starts from the exported projection's lowest bands
            proj, bands = state[name].shape
            (arr,) = [v.T[:, :bands] for v in init.values() if v.shape == (N_MELS, proj)]
        else:
            raise ValueError(f"{path} has no weight for {name}")
        if name == "mlp.0.weight" and arr.shape[1] < state[name].shape[1]:
            # a longer window: the extra look-ahead rows start with zero weight (same function)
            pad = np.zeros((arr.shape[0], state[name].shape[1] - arr.shape[1]), np.float32)
            arr = np.concatenate([arr[:, :-1], pad, arr[:, -1:]], axis=1)
        if tuple(arr.shape) != tuple(state[name].shape):
            raise ValueError(f"{path}: {name} has shape {arr.shape}, model wants {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(np.array(arr, dtype=np.float32))
    model.load_state_dict(state)


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
    ap.add_argument("--speakers", default="",
                    help="comma-separated real training speakers (default all); 'name:k' sees that one k times "
                         "per epoch instead of --real-repeat")
    ap.add_argument("--novoice-max", type=int, default=None, help="use only the first N voiceless clips")
    ap.add_argument("--real-repeat", type=int, default=3, help="times each real frame is seen per epoch")
    # one thread: on a busy shared machine two OpenMP threads spin against each other (measured
    # here: 4.7 s per step with 2 threads against 0.5 s with 1, same work)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", default=None, help="start from the weights of an exported model (same architecture)")
    ap.add_argument("--ahead", type=int, default=AHEAD, help="look-ahead rows (10 ms each)")
    ap.add_argument("--warmup", type=int, default=300, help="steps of linear learning-rate warm-up")
    ap.add_argument("--proj", type=int, default=24, help="per-row spectral projection width (0: none, plain MLP)")
    ap.add_argument("--hidden", type=int, default=256, help="first hidden layer width (the second is half)")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--warp", type=float, default=0.0, help="band warp (vocal-tract length) range, e.g. 0.1 = +-10 %%")
    ap.add_argument("--bands", type=int, default=N_MELS,
                    help="mel bands the net reads, from the lowest (29: centres up to 3.8 kHz, 33: up to 4.7 kHz)")
    ap.add_argument("--eq", type=float, default=1.0, help="scale of the random EQ (0: gain only)")
    ap.add_argument("--bumps-db", type=float, default=4.0, help="EQ bump range (+- dB) before --eq scaling")
    ap.add_argument("--knots", type=int, default=4, help="EQ bump knots across the 40 bands")
    ap.add_argument("--lowpass-p", type=float, default=0.0, help="share of windows given a 3.4-8 kHz low-pass")
    ap.add_argument("--bandpass-p", type=float, default=0.0, help="share of windows given a 150-400 Hz high-pass")
    ap.add_argument("--mask-p", type=float, default=0.0, help="share of windows with a 1-4 band notch")
    ap.add_argument("--closed-extra", type=float, default=CLOSED_EXTRA,
                    help="extra loss weight on `open` where its target is ~closed (pauses, p/b/m)")
    ap.add_argument("--closed-extra-for", default="",
                    help="per-source --closed-extra: comma-separated PATTERN=W, PATTERN a shell-style match "
                         "on the source name (real speaker, 'espeak', 'novoice'), e.g. 'fest_*=8'; the first "
                         "match wins, other sources keep --closed-extra")
    ap.add_argument("--norm", default="", choices=["", "utt"],
                    help="utt: per-band mean normalisation of each utterance's input (training.spectral_norm)")
    ap.add_argument("--espeak-repeat", type=int, default=1,
                    help="times each eSpeak frame (data/train.npz) is seen per epoch (default 1: once)")
    ap.add_argument("--max-utts-for", default="",
                    help="cap on a real source's utterances: comma-separated PATTERN=N, PATTERN a shell-style "
                         "match on the real source name, e.g. 'fest_*=60' keeps the first 60 utterances of each "
                         "Festival voice (the validation 4 %% is then taken from those); the first match wins, "
                         "other sources keep all theirs")
    a = ap.parse_args()
    if a.espeak_repeat < 1:
        ap.error("--espeak-repeat must be at least 1")
    closed_for = []  # (pattern, weight)
    for item in filter(None, (t.strip() for t in a.closed_extra_for.split(","))):
        pat, eq, wt = item.rpartition("=")
        if not eq or not pat:
            ap.error(f"--closed-extra-for: {item!r} is not PATTERN=W")
        closed_for.append((pat, float(wt)))
    max_utts_for = []  # (pattern, utterances)
    for item in filter(None, (t.strip() for t in a.max_utts_for.split(","))):
        pat, eq, k = item.rpartition("=")
        if not eq or not pat or not k.isdigit() or int(k) < 1:
            ap.error(f"--max-utts-for: {item!r} is not PATTERN=N (N >= 1)")
        max_utts_for.append((pat, int(k)))
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    # (name, mel, n_frames, tgt, repeat); the last 4 % of each source's utterances validate
    sources = []
    if os.path.exists(f"{a.data}/train.npz"):
        d = np.load(f"{a.data}/train.npz")
        sources.append(("espeak", d["mel"], d["n_frames"], d["tgt"], a.espeak_repeat))
    if a.real:
        from training.real_speech import TRAIN_SPEAKERS

        for item in a.speakers.split(",") if a.speakers else TRAIN_SPEAKERS:
            spk, _, rep = item.partition(":")  # "name:k" repeats that source k times per epoch
            if not os.path.exists(f"{a.real}/{spk}.npz"):
                print(f"source {spk}: not labelled, left out", flush=True)
                continue
            r = np.load(f"{a.real}/{spk}.npz")
            mel, nf, tgt = r["mel"], r["n_frames"], r["tgt"]
            cap = next((k for pat, k in max_utts_for if fnmatch.fnmatchcase(spk, pat)), None)
            if cap is not None and cap < len(nf):
                f = int(nf[:cap].sum())
                print(f"source {spk}: first {cap} of {len(nf)} utterances kept (--max-utts-for)", flush=True)
                mel, nf, tgt = mel[: 4 * f], nf[:cap], tgt[:f]
            sources.append((spk, mel, nf, tgt, int(rep) if rep else a.real_repeat))
    if os.path.exists(f"{a.data}/novoice.npz"):
        nv = np.load(f"{a.data}/novoice.npz")
        k = len(nv["n_frames"]) if a.novoice_max is None else a.novoice_max
        nf = nv["n_frames"][:k]
        f = int(nf.sum())
        sources.append(("novoice", nv["mel"][: 4 * f], nf, nv["tgt"][:f], 1))
    if a.norm:
        from training.spectral_norm import normalise

        sources = [(nm, normalise(m, nf, a.norm, a.bands), nf, t, r) for nm, m, nf, t, r in sources]
        print(f"inputs normalised per band ({a.norm})", flush=True)
    tr, va = [], []
    for name, mel, nf, tgt, rep in sources:
        n_val = max(1, len(nf) // 25)
        cut = int(nf[:-n_val].sum())
        tr.append((name, mel[: 4 * cut], nf[:-n_val], tgt[:cut], rep))
        va.append((mel[4 * cut :], nf[-n_val:], tgt[cut:]))
    train = WindowSet(np.concatenate([s[1] for s in tr]), np.concatenate([s[2] for s in tr]),
                      np.concatenate([s[3] for s in tr]), PAST, a.ahead)
    val = WindowSet(np.concatenate([v[0] for v in va]), np.concatenate([v[1] for v in va]),
                    np.concatenate([v[2] for v in va]), PAST, a.ahead)
    reps, cex, off = [], [], 0
    for name, _m, nf, _t, rep in tr:
        n = int(nf.sum())
        wt = next((w for pat, w in closed_for if fnmatch.fnmatchcase(name, pat)), a.closed_extra)
        note = f", closed extra {wt:g}" if closed_for else ""
        print(f"source {name}: {len(nf)} utterances, {n} frames ({n / 25 / 60:.1f} min) x{rep}{note}", flush=True)
        reps.append(torch.arange(off, off + n).repeat(rep))
        cex.append(torch.full((n,), wt))
        off += n
    for pat, _w in closed_for:
        if not any(fnmatch.fnmatchcase(s[0], pat) for s in tr):
            print(f"--closed-extra-for: {pat!r} matches no source", flush=True)
    for pat, _k in max_utts_for:
        if not any(fnmatch.fnmatchcase(s[0], pat) for s in tr if s[0] not in ("espeak", "novoice")):
            print(f"--max-utts-for: {pat!r} matches no real source", flush=True)
    # per-frame extra weight only when asked for: without the flag the loss is computed as before
    closed_w = torch.cat(cex) if closed_for else None
    epoch_idx = torch.cat(reps)
    print(f"train frames {len(epoch_idx)} per epoch, validation frames {len(val)} (last 4 % of each source)",
          flush=True)
    model = LipSyncNet(PAST, a.ahead, proj=a.proj, hidden=a.hidden, dropout=a.dropout, bands=a.bands)
    if a.init:
        load_onnx_weights(model, a.init)
        print(f"initialised from {a.init}", flush=True)
    print(f"parameters: {sum(p.numel() for p in model.parameters())}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-2)
    steps_per_epoch = len(epoch_idx) // a.batch
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    t0 = time.time()
    for ep in range(a.epochs):
        perm = epoch_idx[torch.randperm(len(epoch_idx), generator=gen)]
        run = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch : (s + 1) * a.batch]
            x, y = train.batch(idx)
            if a.warp > 0:
                x = band_warp(x, gen, a.warp)
            x = level_eq_augment(x, gen, a.eq, a.bumps_db, a.knots, a.lowpass_p, a.bandpass_p, a.mask_p)
            p = model(x)
            # a mouth left open after speech stops looks worse than a late small opening, and
            # the table's open targets near 0 (pauses, p/b/m) are where smoothing hurts most
            w = torch.ones_like(y)
            if closed_w is None:
                w[:, 0] += a.closed_extra * (y[:, 0] < 0.08)
            else:
                w[:, 0] += closed_w[idx] * (y[:, 0] < 0.08)
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
    torch.save({"state_dict": model.state_dict(), "past": PAST, "ahead": a.ahead, "config": model.config}, a.out)
    print(f"saved {a.out}; training wall time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
