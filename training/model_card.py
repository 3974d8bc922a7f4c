"""Write models/README.md (the model card) from the run's logs and the phoneme table."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from training import corpus, generate, mouth_table
from training.model import AHEAD, PAST


def table_md() -> str:
    rows = ["| phonemes (IPA, as eSpeak NG reports them) | open | spread | round | close | dominance o/s/r/c |",
            "| --- | --- | --- | --- | --- | --- |"]
    by_cls: dict[str, list[str]] = {}
    for ch, cls in mouth_table.CONSONANTS.items():
        by_cls.setdefault(cls, []).append(ch)
    by_cls["silence"] = ["pause / no phoneme"]
    for cls, (t, d) in mouth_table.CLASSES.items():
        rows.append(f"| {cls}: {' '.join(by_cls.get(cls, []))} | {t[0]:.2f} | {t[1]:.2f} | {t[2]:.2f} | {t[3]:.2f} | "
                    f"{'/'.join(f'{v:g}' for v in d)} |")
    for v, (o, s, r) in mouth_table.VOWELS.items():
        rows.append(f"| vowel {v} | {o:.2f} | {s:.2f} | {r:.2f} | 0.00 | 1/1/1/1 |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="build/lipsync")
    ap.add_argument("--out", default="models/README.md")
    ap.add_argument("--command", required=True)
    ap.add_argument("--wall-seconds", type=int, required=True)
    a = ap.parse_args()
    w = Path(a.work)
    ev = json.loads((w / "eval.json").read_text())
    gen_log = (w / "generate.log").read_text()
    train_log = (w / "train.log").read_text()
    export_log = (w / "export.log").read_text()
    bench_log = (w / "bench.log").read_text()
    m = re.search(r"train: (\d+) utterances, (\d+) frames = ([\d.]+) h", gen_log)
    n_utt, n_frames, hours = (m.group(1), m.group(2), m.group(3)) if m else ("?", "?", "?")
    params = re.search(r"parameters: (\d+)", train_log)
    twall = re.search(r"training wall time (\d+)s", train_log)
    diff = re.search(r"max abs diff over \d+ windows: (\S+)", export_log)
    size = re.search(r"(\d+) bytes \(([\d.]+) MiB\)", export_log)
    per_frame = re.findall(r"batch\s+(\d+):.*?([\d.]+) ms per frame", bench_log)
    metric_rows = "\n".join(
        f"| {k} | {v['r_open']:.3f} | {v['r_spread']:.3f} | {v['r_round']:.3f} | {v['r_close']:.3f} | "
        f"{v['closure_recall']:.3f} | {v['silence_closure']:.3f} | {v['av_offset_frames']:+d} | {v['frames']} |"
        for k, v in ev.items()
    )
    by_lang = "\n".join(f"- {k}: {v['r_open_by_lang']}" for k, v in ev.items())
    bench = ", ".join(f"batch {b}: {ms} ms" for b, ms in per_frame)
    train_langs = corpus.TRAIN_LANGS + corpus.PSEUDO_ONLY_LANGS
    card = f"""# lipsync-v1 — model card

Audio-to-mouth model of dhlive: a 40-band causal log-mel window in, four mouth parameters per
40 ms video frame out. Our own weights, trained from scratch on synthetic speech by
`training/run_all.sh`. Run time needs onnxruntime only.

## Interface (the engine contract)

- Input `mel`: float32 `[N, {PAST + AHEAD}, 40]`, from `dhlive_cli.features` (`logmel40-causal-v1`):
  for video frame k, mel rows `[4k + 4 - {PAST}, 4k + 4 + {AHEAD})`, i.e. {PAST * 10} ms up to the end of the
  frame plus **{AHEAD * 10} ms look-ahead** (the latency this model adds). No state: streaming and batch give
  the same track (tests/test_lipsync_model.py checks it through LogMelStream + WindowAssembler).
- Output `mouth`: float32 `[N, 4]` in [0, 1], columns `open, spread, round, close`.
- Metadata: `dhlive.features=logmel40-causal-v1`, `dhlive.window_past={PAST}`, `dhlive.window_ahead={AHEAD}`,
  `dhlive.params=open,spread,round,close`, `dhlive.model=lipsync-v1`, `dhlive.kind=trained`. Opset 17.
- Size {size.group(1) if size else '?'} bytes ({size.group(2) if size else '?'} MiB); {params.group(1) if params else '?'} parameters.
- CPU cost (onnxruntime, 1 thread, `benchmarks/bench_lipsync_model.py`), ms per frame: {bench}.
- ONNX vs torch max abs difference at export: {diff.group(1) if diff else '?'} (checked ≤ 1e-4 by `training/export.py`).

## Targets: the mouth-parameter space

Each 40 ms frame (samples `[640k, 640k + 640)` at 16 kHz) gets four numbers in [0, 1]:

| parameter | meaning | 0 | 1 |
| --- | --- | --- | --- |
| `open` | jaw and lip opening | lips together | widest, 'a' in "father" |
| `spread` | lip spread (corners back) | neutral / protruded | 'ee' smile |
| `round` | lip rounding and protrusion | none | 'oo' pucker |
| `close` | lip closure | lips apart | lips pressed (p, b, m); 0.8 = at rest in silence; 0.45 = lower lip on teeth (f, v) |

Ground truth comes from eSpeak NG's phoneme events (IPA names, start sample of each phoneme) through
the table below (`training/mouth_table.py`). Diphthongs and affricates split their segment equally
between their parts; 'h' after a consonant is aspiration. Coarticulation follows the Cohen–Massaro
dominance model: outside its segment a phoneme's dominance decays as `exp(-d/tau)`, with
tau before/after the segment = open 35/30 ms, spread 40/30 ms, round 70/40 ms (anticipatory rounding),
close 20/15 ms. Strong segments let go fast: for p/b/m the open time constants are scaled by 0.3
and the close ones by 0.5, for pauses the open ones by 0.3, so the lips part and the jaw opens within
about 30 ms of a release (otherwise the 'a' of "map" would stay nearly shut). The mouth is the
dominance-weighted mean of the targets on a 5 ms grid. A frame's
target is the mean over its 40 ms, except `close`, which is the maximum (a 30 ms closure must show).
Pauses and the padding around utterances are silence (open 0, close 0.8).

{table_md()}

Consonants with dominance below 1 (velars, glottals, 'h') take most of their shape from the
neighbouring vowels; bilabials dominate opening and closure so the lips really meet.
`dhlive_cli/mouth_cues.py` maps the four parameters to the Preston Blair letters A–H/X.

## Data

- {n_utt} training utterances, {n_frames} frames ({hours} h), made by `training/generate.py` with
  eSpeak NG 1.52 through its C API (ctypes over the `espeakng-loader` wheel; initialised with
  `espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA`; a phoneme event's `sample`
  field gives its exact start in the output).
- Languages in training: {', '.join(train_langs)} (en, es, fr, de, cmn from hand-written sentences
  and word salad of them; cmn also from random characters; the others from pseudo-words in their
  own orthography). English accents: {', '.join(generate.ENGLISH_ACCENTS)}.
- Voices: every eSpeak variant except the held-out ones ({', '.join(generate.HELDOUT_VARIANTS)}) and
  a few robotic ones; rate 80–340 wpm, pitch 15–90, pitch range 5–95, random word gaps.
- Augmentation (`training/augment.py`), per utterance: resampling by 0.85–1.18 (shifts formants
  and f0 together, i.e. vocal-tract size), 0–0.6 s leading/trailing silence, reverberation
  (RT60 0.15–0.9 s), telephone band (200–400 to 3000–3600 Hz) or random low-pass, noise (white, pink,
  brown, mains hum, random-spectrum, eSpeak babble) at 0–30 dB SNR, ffmpeg round trips through
  MP3 16–48 kb/s, Opus 6–24 kb/s, GSM, rubberband pitch shift (0.85–1.2, tempo kept), clipping;
  12 % stay clean. In training, every window also gets a random gain of ±20 dB and a random EQ
  (±8 dB tilt plus ±4 dB smooth bumps across the mel bands), applied exactly in the power domain.

## Architecture

`training/model.py`: the window is normalised inside the graph by its own loudest row level (so
any input gain is removed without per-utterance statistics, which streaming cannot have), values
below −12 (natural log) relative to it are clamped, the level itself enters once through a tanh;
a shared 40→24 projection per mel row, then an MLP ({PAST + AHEAD}·24+1 → 256 → 128 → 4, GELU, dropout 0.2),
sigmoid outputs. Loss: binary cross-entropy against the soft targets, weights open 1, spread 0.6,
round 0.6, close 1, and 5× on `open` where its target is below 0.08 (pauses, p/b/m), because a
mouth left hanging open after speech looks worse than a slightly late opening. AdamW (lr 2e-3, weight decay 1e-2, cosine schedule), batch 512, seed 1234,
torch limited to 2 threads. Training wall time: {twall.group(1) if twall else '?'} s on 2 CPU cores shared
with other work. The whole `run_all.sh` (venv, data, training, export, evaluation, benchmark) took
{a.wall_seconds} s.

## Evaluation

Command: `{a.command}` (the evaluation step alone:
`.venv-train/bin/python -m training.evaluate --model models/lipsync-v1.onnx --data build/lipsync/data`).

Held out: the voice variants above (split `voices`: training languages, held-out variants,
sentences kept out of training) and the languages Italian, Portuguese, Dutch (split `langs`,
held-out variants). `degraded` = white or pink noise at 10 dB SNR over speech, then a 300–3400 Hz
band. Rules: r = Pearson over all frames; closure recall = share of p/b/m phonemes with predicted
close > 0.5 in some frame overlapping the phoneme; silence closure = share of silent frames with
predicted open < 0.1, where a frame is silent when it lies wholly inside an eSpeak pause (or the
padding) and its clean audio RMS is more than 40 dB below the utterance's loudest frame (eSpeak
starts a pause while the last vowel still rings); offset = lag (frames) of the best summed per-utterance cross-correlation of
predicted vs true open (positive = late). Targets: r_open ≥ 0.8 clean / ≥ 0.7 degraded, closure
recall ≥ 0.85, silence closure ≥ 0.99, offset 0 ± 1.

| split | r open | r spread | r round | r close | p/b/m recall | silence closed | offset | frames |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{metric_rows}

Open r per language:
{by_lang}

**Caveat**: all evaluation speech is eSpeak. Earlier small models here, trained on eSpeak English
only with a simpler opening target, scored r 0.92–0.96 on unseen eSpeak voices but 0.74–0.76 on real
human speech. This model's numbers are not comparable with those (coarticulated targets, five
languages plus held-out languages, held-out variants, heavy channel augmentation, in-graph gain
normalisation: it gives up synthetic fit for robustness), but the lesson stands: expect lower
scores on people than the table shows. We have no human recordings with ground truth to measure it.

## Licence

- The weights (`models/lipsync-v1.onnx`) and the training code are ours, MIT licensed (see
  `models/LICENSE-lipsync`).
- eSpeak NG (GPL-3.0-or-later) is used only as a training-time tool to synthesise speech; it is
  not shipped, linked or needed at run time, and no eSpeak code or data is contained in the model.
"""
    Path(a.out).write_text(card)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
