"""Evaluate the exported ONNX model on held-out eSpeak voices and held-out languages.

    python -m training.evaluate --model models/lipsync-v1.onnx --data build/lipsync/data [--json out.json]

Held out from training: the voice variants in generate.HELDOUT_VARIANTS (the "voices" split
speaks the training languages with only those variants and with sentences kept out of training)
and the languages it, pt, nl (the "langs" split, also with held-out variants). Each split is
scored clean and on a degraded copy (white or pink noise at 10 dB SNR over speech, then a
300-3400 Hz telephone band).

Metrics (all frames at 25 fps):
- Pearson r per parameter, predicted vs ground truth, over all frames of the split.
- closure recall: share of p/b/m phonemes for which the predicted close exceeds 0.5 in at
  least one frame overlapping the phoneme.
- silence closure: share of silent frames (wholly inside an eSpeak pause or the padding) whose
  predicted open < 0.1.
- A/V offset: the lag (frames, -5..5) maximising the summed per-utterance cross-correlation of
  predicted and true open; positive = prediction late.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from dhlive_cli.features import model_windows

PARAMS = ("open", "spread", "round", "close")
TARGETS = {"r_open": 0.8, "closure_recall": 0.85, "silence_closure": 0.99}


def predict(sess, mel: np.ndarray, n_frames: np.ndarray, past: int, ahead: int) -> np.ndarray:
    out, off = [], 0
    for n in n_frames:
        w = model_windows(mel[off : off + 4 * n], int(n), past, ahead)
        off += 4 * n
        out.append(sess.run(["mouth"], {"mel": w})[0])
    return np.concatenate(out)


def metrics(pred: np.ndarray, tgt: np.ndarray, silent: np.ndarray, bil: np.ndarray, n_frames: np.ndarray) -> dict:
    res = {}
    for j, p in enumerate(PARAMS):
        res[f"r_{p}"] = float(np.corrcoef(pred[:, j], tgt[:, j])[0, 1])
    starts = np.concatenate([[0], np.cumsum(n_frames)[:-1]])
    hits = [pred[starts[u] + a : starts[u] + b, 3].max() > 0.5 for u, a, b in bil]
    res["closure_recall"] = float(np.mean(hits)) if hits else float("nan")
    res["silence_closure"] = float(np.mean(pred[silent, 0] < 0.1)) if silent.any() else float("nan")
    lags = range(-5, 6)
    score = np.zeros(len(lags))
    for s, n in zip(starts, n_frames):
        p = pred[s : s + n, 0] - pred[s : s + n, 0].mean()
        t = tgt[s : s + n, 0] - tgt[s : s + n, 0].mean()
        for i, lag in enumerate(lags):
            # prediction late by `lag` frames: p[k + lag] lines up with t[k]
            a = p[max(lag, 0) : n + min(lag, 0)]
            b = t[max(-lag, 0) : n + min(-lag, 0)]
            den = np.sqrt((a * a).sum() * (b * b).sum()) + 1e-9
            score[i] += (a * b).sum() / den
    res["av_offset_frames"] = int(list(lags)[int(np.argmax(score))])
    res["frames"] = int(pred.shape[0])
    res["pbm_phonemes"] = len(hits)
    res["silent_frames"] = int(silent.sum())
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/lipsync-v1.onnx")
    ap.add_argument("--data", default="build/lipsync/data")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    past, ahead = int(meta["dhlive.window_past"]), int(meta["dhlive.window_ahead"])
    report = {}
    for split in ("voices", "langs"):
        d = np.load(os.path.join(a.data, f"eval_{split}.npz"))
        for cond, key in (("clean", "mel"), ("degraded", "mel_deg")):
            pred = predict(sess, d[key], d["n_frames"], past, ahead)
            report[f"{split}/{cond}"] = m = metrics(pred, d["tgt"], d["silent"], d["bil"], d["n_frames"])
            # per language, open r only, to see which language drags
            starts = np.concatenate([[0], np.cumsum(d["n_frames"])])
            per = {}
            for lang in sorted(set(d["lang"])):
                sel = np.concatenate([np.arange(starts[u], starts[u + 1]) for u in np.where(d["lang"] == lang)[0]])
                per[str(lang)] = round(float(np.corrcoef(pred[sel, 0], d["tgt"][sel, 0])[0, 1]), 3)
            m["r_open_by_lang"] = per
    print(f"model {a.model} (window past={past}, ahead={ahead})")
    print(f"{'split':<18}{'r_open':>8}{'r_spread':>9}{'r_round':>9}{'r_close':>9}{'pbm_rec':>9}{'sil_cls':>9}{'offset':>7}  frames")
    for k, m in report.items():
        print(f"{k:<18}{m['r_open']:8.3f}{m['r_spread']:9.3f}{m['r_round']:9.3f}{m['r_close']:9.3f}"
              f"{m['closure_recall']:9.3f}{m['silence_closure']:9.3f}{m['av_offset_frames']:7d}  {m['frames']}")
    for k, m in report.items():
        print(f"{k}: open r by language {m['r_open_by_lang']}")
    fails = []
    for k, m in report.items():
        need = 0.7 if k.endswith("degraded") else TARGETS["r_open"]
        if m["r_open"] < need:
            fails.append(f"{k} r_open {m['r_open']:.3f} < {need}")
        if k.endswith("clean"):
            for t in ("closure_recall", "silence_closure"):
                if m[t] < TARGETS[t]:
                    fails.append(f"{k} {t} {m[t]:.3f} < {TARGETS[t]}")
            if abs(m["av_offset_frames"]) > 1:
                fails.append(f"{k} offset {m['av_offset_frames']}")
    print("targets:", "all met" if not fails else "NOT MET: " + "; ".join(fails))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
