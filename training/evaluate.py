"""Evaluate the exported ONNX model on real human speech (held-out speakers) and held-out eSpeak.

    python -m training.evaluate --model models/lipsync-v2.onnx --data build/lipsync/data \
        --real build/lipsync/real --compare models/lipsync-v1.onnx [--json out.json]

Real-speech dev set (training.real_speech.DEV_SPEAKERS: three speakers, three languages, never
trained on), labelled by forced alignment (training.align). Printed for the model, for the
compared model and for a loudness envelope on the same frames:
- opening r: Pearson r of predicted vs labelled open over all frames, at lag 0.
- best lag: the lag in -5..5 frames with the highest pooled r (each utterance shifted on its
  own); positive = prediction late.
- p/b/m closure: share of p/b/m phones in whose frame span the predicted open falls to at most
  0.25 x the utterance's 95th percentile of predicted open.
- pause closure: share of frames inside pauses of at least 200 ms (5 frames, labelled silent)
  whose predicted open is below 0.1.
The loudness envelope is the frame's log mel power (mean of its 4 hops), mapped per utterance
from its 5th..95th percentile onto 0..1: what a loudness-driven mouth would do.

`--track` scores what the product shows as well (`<model> track`): each dev prompt's audio is
decoded again from the package cache (`--cache`), padded as training.label_real did, and run
through the engine's own analysis path as `dhlive lipsync` runs it (dhlive_cli.analysis:
streamed log-mel and windows, the model, then dhlive_cli.mouth.MouthTrack's level gate and
smoothing); its `open` column is scored like the raw model output. `<model> shown` scores the
opening the drawn avatar draws from that track, open x (1 - close). The targets line still
judges the raw model output; a second line says which targets the track misses.

Experiments: `--norm utt` scores a model trained with the same `training.train --norm` (the
input goes through training.spectral_norm first; the compared model and the loudness envelope
get the raw features); `--dev-speakers A,B` scores other labelled speakers instead of the dev set
(leave-one-speaker-out runs; never the official figure) and `--real-only` skips the eSpeak sets.

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
REAL_TARGETS = {"r_open": 0.80, "pbm_closure": 0.85, "pause_closure": 0.98}
ESPEAK_HELDOUT_R = 0.84


def loudness_envelope(mel: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
    """Per-frame loudness mapped onto 0..1 per utterance, shaped (frames, 4) like a model output."""
    out, off = [], 0
    for n in n_frames:
        m = mel[off : off + 4 * n]
        off += 4 * n
        e = np.log(np.exp(m.astype(np.float64)).sum(axis=1) + 1e-9)
        e = np.pad(e, (0, 4 * n - e.shape[0]), constant_values=e.min() if e.size else 0).reshape(n, 4).mean(axis=1)
        lo, hi = np.percentile(e, 5), np.percentile(e, 95)
        env = np.clip((e - lo) / (hi - lo + 1e-9), 0, 1)
        out.append(np.stack([env, env * 0, env * 0, 1 - env], axis=1))
    return np.concatenate(out).astype(np.float32)


def real_metrics(pred: np.ndarray, tgt: np.ndarray, silent: np.ndarray, bil: np.ndarray,
                 n_frames: np.ndarray) -> dict:
    """The real-speech dev metrics (see the module docstring) of predicted open (frames, 4)."""
    starts = np.concatenate([[0], np.cumsum(n_frames)[:-1]])
    lags = list(range(-5, 6))
    r_lag = []
    for lag in lags:
        a, b = [], []
        for s, n in zip(starts, n_frames):
            p, t = pred[s : s + n, 0], tgt[s : s + n, 0]
            # prediction late by `lag` frames: p[k + lag] lines up with t[k]
            a.append(p[max(lag, 0) : n + min(lag, 0)])
            b.append(t[max(-lag, 0) : n + min(-lag, 0)])
        r_lag.append(float(np.corrcoef(np.concatenate(a), np.concatenate(b))[0, 1]))
    p95 = np.array([np.percentile(pred[s : s + n, 0], 95) for s, n in zip(starts, n_frames)])
    closed = [pred[starts[u] + a : starts[u] + b, 0].min() <= 0.25 * p95[u] for u, a, b in bil]
    pause = np.zeros(pred.shape[0], bool)
    for s, n in zip(starts, n_frames):
        m = silent[s : s + n]
        k = 0
        while k < n:
            if m[k]:
                j = k
                while j < n and m[j]:
                    j += 1
                if j - k >= 5:
                    pause[s + k : s + j] = True
                k = j
            else:
                k += 1
    return {
        "r_open": r_lag[lags.index(0)],
        "best_lag": lags[int(np.argmax(r_lag))],
        "r_at_best_lag": max(r_lag),
        "pbm_closure": float(np.mean(closed)) if closed else float("nan"),
        "pause_closure": float(np.mean(pred[pause, 0] < 0.1)) if pause.any() else float("nan"),
        "frames": int(pred.shape[0]),
        "pbm_phones": len(closed),
        "pause_frames": int(pause.sum()),
    }


def dev_audio(cache: str, sets: list, speakers: tuple[str, ...]) -> list[np.ndarray]:
    """The audio of every labelled utterance in `sets` (the speakers' npz files, in order),
    decoded again from the fetched packages and padded exactly as training.label_real did."""
    from pathlib import Path

    from training import real_speech
    from training.label_real import padded

    paths = {(p.speaker, p.name): p.path for p in real_speech.prompts(Path(cache), list(speakers))}
    out = []
    for spk, d in zip(speakers, sets):
        audio = real_speech.load_many([paths[(spk, str(name))] for name in d["name"]])
        for name, x, n in zip(d["name"], audio, d["n_frames"]):
            a = padded(x)
            if a.size != 640 * int(n):
                raise SystemExit(f"error: {spk}/{name}: {a.size} samples decoded, the labels have {n} frames "
                                 f"(relabel with training.label_real)")
            out.append(a)
    return out


def product_track(model: str, audio: list[np.ndarray], threads: int = 1, block: int = 50) -> np.ndarray:
    """(frames, 4): each utterance through the engine's own analysis path, as `dhlive lipsync`
    runs it (LogMelStream, WindowAssembler, InferencePool, MouthTrack with its level gate and
    smoothing; 50-frame pushes), a fresh MouthAnalyzer per utterance."""
    from dhlive_cli.analysis import whole_track
    from dhlive_cli.inference import InferenceOptions, InferencePool
    from dhlive_cli.timebase import MODEL_FRAME

    pool = InferencePool(model, InferenceOptions(device="cpu", intra_threads=threads))
    out = []
    for x in audio:
        t = whole_track(pool, x, block)
        assert t.shape[0] == x.size // MODEL_FRAME, (t.shape, x.size)  # whole frames (label_real.padded)
        out.append(t)
    return np.concatenate(out)


def real_labels(real_dir: str, speakers: tuple[str, ...]):
    """The labelled real speech of `speakers` (training.label_real's .npz each), joined:
    (the loaded sets, n_frames per utterance, tgt (frames, 4), silent (frames,) bool, bil: the
    p/b/m phones as (utterance, first frame, end frame) rows numbered across all sets)."""
    sets = [np.load(os.path.join(real_dir, f"{spk}.npz")) for spk in speakers]
    n_frames = np.concatenate([d["n_frames"] for d in sets])
    tgt = np.concatenate([d["tgt"] for d in sets])
    silent = np.concatenate([d["silent"] for d in sets])
    bil, base = [], 0
    for d in sets:
        b = d["bil"].copy()
        b[:, 0] += base
        base += len(d["n_frames"])
        bil.append(b)
    return sets, n_frames, tgt, silent, np.concatenate(bil)


def real_report(sessions: dict, real_dir: str, speakers: tuple[str, ...] | None = None,
                track_cache: str | None = None, threads: int = 1) -> dict:
    """Scores every model in `sessions` (name -> (session, past, ahead, path)) and the loudness
    envelope on `speakers` (default: real_speech.DEV_SPEAKERS, the official dev set). With
    track_cache (the training.real_speech package cache) each model is also scored through the
    product's mouth track (`<name> track`: its open column, what `dhlive lipsync` writes) and
    the opening the drawn avatar shows of it (`<name> shown`: open x (1 - close))."""
    from training.real_speech import DEV_SPEAKERS

    speakers = speakers or DEV_SPEAKERS

    sets, n_frames, tgt, silent, bil = real_labels(real_dir, speakers)
    mel = np.concatenate([d["mel"] for d in sets])
    spk_of = np.concatenate([[i] * len(d["n_frames"]) for i, d in enumerate(sets)])
    starts = np.concatenate([[0], np.cumsum(n_frames)])
    preds = {name: predict(sess, mel, n_frames, past, ahead, norm=i == 0)
             for i, (name, (sess, past, ahead, _path)) in enumerate(sessions.items())}
    preds["loudness"] = loudness_envelope(mel, n_frames)
    if track_cache:
        audio = dev_audio(track_cache, sets, speakers)
        for name, (_sess, _past, _ahead, path) in sessions.items():
            t = product_track(path, audio, threads)
            preds[f"{name} track"] = t
            shown = t.copy()
            shown[:, 0] = t[:, 0] * (1.0 - t[:, 3])
            preds[f"{name} shown"] = shown
    rep = {"speakers": list(speakers), "utterances": int(n_frames.size), "minutes": float(n_frames.sum() / 25 / 60)}
    for name, pred in preds.items():
        m = real_metrics(pred, tgt, silent, bil, n_frames)
        per = {}
        for i, spk in enumerate(speakers):
            sel = np.concatenate([np.arange(starts[u], starts[u + 1]) for u in np.where(spk_of == i)[0]])
            per[spk] = round(float(np.corrcoef(pred[sel, 0], tgt[sel, 0])[0, 1]), 3)
        m["r_open_by_speaker"] = per
        rep[name] = m
    return rep


NORM = {"mode": "", "bands": 33}  # input normalisation of the scored model (--norm)


def predict(sess, mel: np.ndarray, n_frames: np.ndarray, past: int, ahead: int, norm: bool = False) -> np.ndarray:
    if norm and NORM["mode"]:
        from training.spectral_norm import normalise

        mel = normalise(mel, n_frames, NORM["mode"], NORM["bands"])
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
    ap.add_argument("--model", default="models/lipsync-v2.onnx")
    ap.add_argument("--data", default="build/lipsync/data")
    ap.add_argument("--json", default=None)
    ap.add_argument("--real", default=None, help="labelled real-speech dir (training.label_real)")
    ap.add_argument("--compare", default=None, help="a second model scored beside it on real speech")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (the machine is shared)")
    ap.add_argument("--norm", default="", choices=["", "utt"],
                    help="per-band mean normalisation of the scored model's input (training.spectral_norm)")
    ap.add_argument("--dev-speakers", default="", help="score these real speakers instead of the dev set "
                    "(comma-separated; leave-one-speaker-out runs, not the official figure)")
    ap.add_argument("--real-only", action="store_true", help="score the real speakers only, skip the eSpeak sets")
    ap.add_argument("--norm-bands", type=int, default=33, help="bands the --norm offsets are zero-mean over")
    ap.add_argument("--track", action="store_true",
                    help="also score the product's mouth track on real speech (the dev audio decoded again "
                         "from --cache and run through the engine's analysis path, gate and smoothing included)")
    ap.add_argument("--cache", default="build/speech", help="training.real_speech package cache (--track)")
    a = ap.parse_args()
    NORM.update(mode=a.norm, bands=a.norm_bands)
    if a.track and (not a.real or a.norm):
        raise SystemExit("error: --track needs --real and no --norm (the engine feeds the model raw features)")
    # Without `make model` there is no held-out data (and maybe no model): say so in one line.
    need = (a.model,) if a.real_only else (a.model, *(os.path.join(a.data, f"eval_{s}.npz") for s in ("voices", "langs")))
    missing = [f for f in need if not os.path.isfile(f)]
    if missing:
        raise SystemExit(f"error: {missing[0]} not found: run `make model` first (it generates the "
                         f"held-out data in {a.data} and trains the model), or pass --model and --data")
    import onnxruntime as ort

    def load(path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        meta = sess.get_modelmeta().custom_metadata_map
        return sess, int(meta["dhlive.window_past"]), int(meta["dhlive.window_ahead"]), meta.get("dhlive.model", path)

    sess, past, ahead, name = load(a.model)
    fails = []
    real = None
    if a.real:
        sessions = {name: (sess, past, ahead, a.model)}
        if a.compare:
            s2, p2, a2, n2 = load(a.compare)
            if n2 == name:  # two models exported under one name: its rows would silently be the compared one's
                n2 = f"{n2} ({os.path.basename(a.compare)}, compared)"
            sessions[n2] = (s2, p2, a2, a.compare)
        real = real_report(sessions, a.real, tuple(a.dev_speakers.split(",")) if a.dev_speakers else None,
                           a.cache if a.track else None, a.threads)
        print(f"real-speech dev set: {', '.join(real['speakers'])} ({real['utterances']} utterances, "
              f"{real['minutes']:.1f} min; held-out speakers)")
        rows = list(sessions) + ["loudness"]
        if a.track:
            rows += [f"{k} {kind}" for k in sessions for kind in ("track", "shown")]
        w = max(14, *(len(k) + 2 for k in rows))
        print(f"{'model':<{w}}{'open r':>8}{'best lag':>9}{'r@lag':>7}{'p/b/m':>7}{'pause':>7}  open r by speaker")
        for k in rows:
            m = real[k]
            print(f"{k:<{w}}{m['r_open']:8.3f}{m['best_lag']:9d}{m['r_at_best_lag']:7.3f}{m['pbm_closure']:7.3f}"
                  f"{m['pause_closure']:7.3f}  {m['r_open_by_speaker']}")
        m = real[name]
        print(f"({m['frames']} frames, {m['pbm_phones']} p/b/m phones, {m['pause_frames']} pause frames)")
        for t, need in REAL_TARGETS.items():
            if m[t] < need:
                fails.append(f"real {t} {m[t]:.3f} < {need}")
        if m["best_lag"] != 0:
            fails.append(f"real best lag {m['best_lag']}")
        if a.track:
            m = real[f"{name} track"]
            miss = [f"{t} {m[t]:.3f} < {need}" for t, need in REAL_TARGETS.items() if m[t] < need]
            miss += [f"best lag {m['best_lag']}"] if m["best_lag"] != 0 else []
            print(f"{name} track vs the real-speech targets:", "all met" if not miss else "NOT MET: " + "; ".join(miss))
    report = {}
    for split in () if a.real_only else ("voices", "langs"):
        d = np.load(os.path.join(a.data, f"eval_{split}.npz"))
        for cond, key in (("clean", "mel"), ("degraded", "mel_deg")):
            pred = predict(sess, d[key], d["n_frames"], past, ahead, norm=True)
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
    for k, m in report.items():
        need = 0.7 if k.endswith("degraded") else ESPEAK_HELDOUT_R
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
            json.dump({**report, **({"real": real} if real else {})}, f, indent=1)


if __name__ == "__main__":
    main()
