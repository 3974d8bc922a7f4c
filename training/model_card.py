"""Write models/README.md (the model card) from the run's logs and the phoneme table."""

from __future__ import annotations

import argparse
import json

import numpy as np
import re
from pathlib import Path

from training import corpus, generate, mouth_table
from training.model import AHEAD, PAST
from training.model_card_recipe import RECIPE_MD


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


def real_data_md(w: Path) -> str:
    """The real-speech and voiceless-audio part of the data section, from the run's logs."""
    from training import real_speech

    label_log = (w / "label_real.log").read_text() if (w / "label_real.log").exists() else ""
    check_log = (w / "align_check.log").read_text() if (w / "align_check.log").exists() else ""
    train_log = (w / "train.log").read_text()
    gen_log = (w / "generate.log").read_text()
    rows = ["| speaker | language | prompts aligned | speech | use |", "| --- | --- | --- | --- | --- |"]
    for spk, (lang, pkg, _tp, _f, _e) in real_speech.SPEAKERS.items():
        m = re.search(rf"{spk}: (\d+)/(\d+) prompts aligned, ([\d.]+) min", label_log)
        use = "dev (never trained on)" if spk in real_speech.DEV_SPEAKERS else "training"
        got = f"{m.group(1)} of {m.group(2)}" if m else "not labelled in this build"
        mins = f"{m.group(3)} min" if m else "-"
        use = use if m else "not used"
        rows.append(f"| {spk} (`{pkg}`) | {lang} | {got} | {mins} | {use} |")
    check = re.search(r"label check on (\d+) eSpeak utterances \((\d+) not aligned\): opening r ([\d.]+) over (\d+)",
                      check_log)
    check_md = (f"opening r **{check.group(3)}** against eSpeak's own phoneme events over {check.group(4)} frames "
                f"({int(check.group(1)) - int(check.group(2))} of {check.group(1)} utterances aligned; the rest are "
                "dropped, as unaligned real prompts are)") if check else "not measured in this run"
    srcs = "\n".join(f"  - {l.strip()}" for l in train_log.splitlines() if l.startswith("source "))
    train_b = (w / "train_b.log").read_text() if (w / "train_b.log").exists() else ""
    srcs_b = "\n".join(f"  - {l.strip()}" for l in train_b.splitlines() if l.startswith("source ")) or "  - (no train_b.log)"
    nv = re.search(r"novoice: (\d+) clips, (\d+) frames", gen_log)
    nv_md = f"{nv.group(1)} clips, {int(nv.group(2)) / 25 / 60:.1f} min" if nv else "?"
    return f"""## Real human speech and voiceless audio

Real voices come from Debian's Asterisk prompt packages (`training/real_speech.py`; fetched with
`apt-get download` + `dpkg -x` while making the data, never shipped). The English and Spanish
core sounds are reserved for an independent evaluation and are refused by the code.

{chr(10).join(rows)}

Labels without hand work (`training/align.py`): eSpeak NG phonemizes the transcript (language of
the prompt, IPA phoneme events split into words); each IPA part is mapped to the nearest phone of
pocketsphinx's US-English acoustic model (shipped in its PyPI wheel) and every word is added with
exactly that pronunciation (`Decoder.add_word`); `set_align_text` then forces the word sequence
(optional silences between words) and a second pass gives phone boundaries (10 ms). The aligned
IPA parts go through the same table and coarticulation as the eSpeak data; silences the aligner
placed are pauses. Prompts the aligner cannot fit to the transcript are dropped (the Menardi and
Armelle recordings use their own wording of the same prompts, so fewer of theirs survive).
Label accuracy, measured before training on eSpeak speech in fr/it/ru/de/en-us (held-out voice
variants, pink room noise at 35 dB SNR) whose phoneme events are the truth,
`python -m training.align --check 100`: {check_md}.

Voiceless audio labelled silence (`training/augment.py: novoice_clip`, {nv_md}): synthetic
instrumentals (chord progressions of additive tones, bass line, kick, snare, hi-hat, random tempo
and timbre), excerpts of the five recorded music-on-hold tracks, coloured noise and mains hum,
sometimes mixed and reverberated.

Per epoch (training/train.py), net a:
{srcs}

Net b (its own build of the same sources, plus the Festival voices; "closed extra" is the loss
weight on `open` where its target is closed, see "Architecture"):
{srcs_b}"""


def real_eval_table(real: dict | None) -> str:
    if not real:
        return "Real-speech dev set: not evaluated in this run."
    names = [k for k in real if isinstance(real[k], dict) and "r_open" in real[k]]
    rows = ["| model | opening r | best lag (frames) | r at best lag | p/b/m closure | pause closure | open r by speaker |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for k in names:
        m = real[k]
        rows.append(f"| {k} | {m['r_open']:.3f} | {m['best_lag']:+d} | {m['r_at_best_lag']:.3f} | {m['pbm_closure']:.3f} | "
                    f"{m['pause_closure']:.3f} | {', '.join(f'{s} {r}' for s, r in m['r_open_by_speaker'].items())} |")
    first = real[names[0]]
    miss = [f"{k} {first[k]:.3f} < {v}" for k, v in (("r_open", 0.80), ("pbm_closure", 0.85), ("pause_closure", 0.98))
            if first[k] < v] + ([f"best lag {first['best_lag']:+d}"] if first["best_lag"] else [])
    versus = ""
    if len(names) > 1:
        other = real[names[1]]
        d = first["r_open"] - other["r_open"]
        versus = (f" Against {names[1]} on the same frames: opening r {first['r_open']:.3f} vs {other['r_open']:.3f} "
                  f"({'better' if d > 0 else 'not better'} by {abs(d):.3f}), p/b/m closure {first['pbm_closure']:.3f} vs "
                  f"{other['pbm_closure']:.3f}, pause closure {first['pause_closure']:.3f} vs {other['pause_closure']:.3f}.")
    status = ("All real-speech targets are met." if not miss else
              f"**Targets not met** by {names[0]}: {'; '.join(miss)}.") + versus
    return f"""### Real human speech (held-out speakers)

{status}

Dev set: {', '.join(real['speakers'])} — {real['utterances']} prompts, {real['minutes']:.1f} min, three
speakers and three languages that training never saw, labelled by the forced alignment above
({first['frames']} frames, {first['pbm_phones']} p/b/m phones, {first['pause_frames']} frames in pauses of 200 ms or more).
Opening r = Pearson r of predicted vs labelled open at lag 0; best lag = the lag in ±5 frames
with the highest r (positive = late); p/b/m closure = share of p/b/m phones in whose span the
predicted open falls to ≤ 0.25 × the utterance's 95th percentile; pause closure = share of frames
in pauses ≥ 200 ms with open < 0.1. `loudness` is a loudness envelope (frame log-mel power mapped
per utterance from its 5th..95th percentile onto 0..1). Targets: r ≥ 0.80, lag 0, p/b/m ≥ 0.85,
pause ≥ 0.98.

{chr(10).join(rows)}"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="build/lipsync")
    ap.add_argument("--out", default="models/README.md")
    ap.add_argument("--command", required=True)
    ap.add_argument("--wall-seconds", type=int, required=True, help="0: not timed end to end")
    a = ap.parse_args()
    w = Path(a.work)
    ev = json.loads((w / "eval.json").read_text())
    gen_log = (w / "generate.log").read_text()
    train_log = (w / "train.log").read_text()
    export_log = (w / "export.log").read_text()
    train_b_log = (w / "train_b.log").read_text()
    export_b_log = (w / "export_b.log").read_text()
    ensemble_log = (w / "ensemble.log").read_text()
    bench_log = (w / "bench.log").read_text()
    m = re.search(r"train: (\d+) utterances, (\d+) frames = ([\d.]+) h", gen_log)
    n_utt, n_frames, hours = (m.group(1), m.group(2), m.group(3)) if m else ("?", "?", "?")
    params = re.search(r"parameters: (\d+)", train_log)
    import torch

    cfg = {"proj": 24, "bands": 40, **torch.load(w / "model.pt", map_location="cpu").get("config", {})}
    bands = int(cfg["bands"])
    from dhlive_cli.features import mel_filterbank

    fb = mel_filterbank()
    hz = (fb[bands - 1] * np.arange(fb.shape[1])).sum() / fb[bands - 1].sum() * 8000 / (fb.shape[1] - 1)
    twall = re.search(r"training wall time (\d+)s", train_log)
    diff = re.search(r"max abs diff over \d+ windows: (\S+)", export_log)
    diff_b = re.search(r"max abs diff over \d+ windows: (\S+)", export_b_log)
    diff_ens = re.search(r"max abs diff from the members' mean (\S+)", ensemble_log)
    size = re.search(r"(\d+) bytes \(([\d.]+) MiB\)", ensemble_log)
    twall_b = re.search(r"training wall time (\d+)s", train_b_log)
    per_frame = re.findall(r"batch\s+(\d+):.*?([\d.]+) ms per frame", bench_log)
    ev_espeak = {k: v for k, v in ev.items() if k != "real"}
    metric_rows = "\n".join(
        f"| {k} | {v['r_open']:.3f} | {v['r_spread']:.3f} | {v['r_round']:.3f} | {v['r_close']:.3f} | "
        f"{v['closure_recall']:.3f} | {v['silence_closure']:.3f} | {v['av_offset_frames']:+d} | {v['frames']} |"
        for k, v in ev_espeak.items()
    )
    by_lang = "\n".join(f"- {k}: {v['r_open_by_lang']}" for k, v in ev_espeak.items())
    bench = ", ".join(f"batch {b}: {ms} ms" for b, ms in per_frame)
    train_langs = corpus.TRAIN_LANGS + corpus.PSEUDO_ONLY_LANGS
    real_md = real_data_md(w)
    wall_md = (f"The whole `run_all.sh` (venv, data, training, export, evaluation, benchmark) took {a.wall_seconds} s."
               if a.wall_seconds > 0 else
               "`run_all.sh` end to end was not timed for this model: it was built step by step with the same "
               "modules and knobs (real-speech labels, held-out and voiceless sets from an earlier run of the same "
               "code; it labels with a seeded dither where those labels used pocketsphinx's own, so a rebuild "
               "matches closely but not bit for bit).")
    real_eval_md = real_eval_table(ev.get("real"))
    fest_n = (re.search(r"FEST_N=(\d+)", a.command) or [None, "150"])[1]
    fest_closed = (re.search(r"FEST_CLOSED=([\d.]+)", a.command) or [None, "12"])[1]
    ev = {k: v for k, v in ev.items() if k != "real"}
    card = f"""# lipsync-v2 — model card

Audio-to-mouth model of dhlive and the default of `dhlive lipsync`, `render` and `live`: a 40-band
causal log-mel window in (the net reads its lowest {bands} bands, centres up to {hz / 1000:.1f} kHz), four
mouth parameters per 40 ms video frame out. Our own weights: the mean of two nets (since
2026-12-02), both lipsync-v1 (eSpeak speech only, `models/lipsync-v1.onnx`, kept and selectable
with `--model`) continued on real human speech (two recorded voices, labelled by forced
alignment), fresh synthetic speech and voiceless music/noise; the second net also on twelve
Festival voices built from recorded speakers (section "Two nets averaged"). Made by
`training/run_all.sh` (`make model`). Run time needs onnxruntime only.

## Interface (the engine contract)

- Input `mel`: float32 `[N, {PAST + AHEAD}, 40]`, from `dhlive_cli.features` (`logmel40-causal-v1`):
  for video frame k, mel rows `[4k + 4 - {PAST}, 4k + 4 + {AHEAD})`, i.e. {PAST * 10} ms up to the end of the
  frame plus **{AHEAD * 10} ms look-ahead** (the latency this model adds). No state: streaming and batch give
  the same track (tests/test_lipsync_model.py checks it through LogMelStream + WindowAssembler).
- Output `mouth`: float32 `[N, 4]` in [0, 1], columns `open, spread, round, close`.
- Metadata: `dhlive.features=logmel40-causal-v1`, `dhlive.window_past={PAST}`, `dhlive.window_ahead={AHEAD}`,
  `dhlive.params=open,spread,round,close`, `dhlive.model=lipsync-v2`, `dhlive.kind=trained`,
  `dhlive.members=lipsync-v2a,lipsync-v2b`. Opset 17.
- Size {size.group(1) if size else '?'} bytes ({size.group(2) if size else '?'} MiB); two nets of {params.group(1) if params else '?'} parameters each, averaged in the graph
  (`training/ensemble.py`: their outputs summed and halved; still one input, one output, no state).
- CPU cost (onnxruntime, 1 thread, `benchmarks/bench_lipsync_model.py`), ms per frame: {bench}.
- ONNX vs torch max abs difference at export: {diff.group(1) if diff else '?'} (net a), {diff_b.group(1) if diff_b else '?'} (net b) (checked ≤ 1e-4
  by `training/export.py`); the averaged graph against the mean of the two nets run one by one:
  {diff_ens.group(1) if diff_ens else '?'} (checked ≤ 1e-5 by `training/ensemble.py`).

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

- Synthetic speech: lipsync-v2 starts from lipsync-v1's weights, which learnt 8000 eSpeak
  utterances (585718 frames, 6.51 h; 20 epochs, lr 2e-3) made by `training/generate.py` with
  eSpeak NG 1.52 through its C API (ctypes over the `espeakng-loader` wheel; initialised with
  `espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA`; a phoneme event's `sample`
  field gives its exact start in the output).
- Festival voices (net b only): twelve voices of Debian's Festival packages, each built from
  one recorded speaker (diphones, unit selection or HTS models; en, it, fi, ru, ca, cs), {fest_n}
  utterances each of training.corpus text, labelled from festival's own segment timings
  (`training/festival_speech.py --labels festival`; voices, packages and licences in its
  docstring and under "Licence" below). Synthesised at data-generation time, never shipped.
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
  12 % stay clean. In training, every window also gets a random gain (lipsync-v1 ±20 dB; the
  v2 fine-tuning −50..+8 dB, peaks from −56 to +2 dBFS, so quiet recordings move the lips too) and
  a random EQ (±8 dB tilt plus ±4 dB smooth bumps across the mel bands), applied exactly in the
  power domain.

{real_md}

## Architecture

`training/model.py`: the window is normalised inside the graph by its own loudest row level (so
any input gain is removed without per-utterance statistics, which streaming cannot have), values
below −12 (natural log) relative to it are clamped, the level itself enters once through a tanh;
only the lowest {bands} of the 40 mel bands are read (the real training voices are 8 kHz recordings with
nothing above 4 kHz; a net reading all bands used what it learnt from them less on full-band
voices: see "How this recipe was chosen"); a shared {bands}→24 projection per mel row, then an MLP
({PAST + AHEAD}·24+1 → 256 → 128 → 4, GELU, dropout 0.2),
sigmoid outputs. Loss: binary cross-entropy against the soft targets, weights open 1, spread 0.6,
round 0.6, close 1, and 5× on `open` where its target is below 0.08 (pauses, p/b/m), because a
mouth left hanging open after speech looks worse than a slightly late opening. lipsync-v1 was
trained with AdamW (lr 2e-3, weight decay 1e-2, cosine schedule), batch 512, 20 epochs;
lipsync-v2 continues from those weights (`--init models/lipsync-v1.onnx`) on the sources listed
under "Real human speech" plus {n_utt} fresh eSpeak utterances, with the knobs in the command
below (AdamW, weight decay 1e-2, 100 warm-up steps then cosine), batch 512, seed 1234, one torch
thread; besides the gain and EQ, every window gets a random band warp (band b reads band position
b·α, α uniform in 1 ± the `WARP` knob: a longer or shorter vocal tract, after VTLP, Jaitly & Hinton 2013). Training wall time: {twall.group(1) if twall else '?'} s on 2 CPU cores shared with other work.

The shipped model is two such nets averaged: net a (lipsync-v2a) as just described, and net b
(lipsync-v2b) trained the same way (same init, knobs and seed) with the twelve Festival voices
added as sources seen once per epoch and a closed-frame weight of {fest_closed} instead of 4 on them
(`--closed-extra-for 'fest_*={fest_closed}'`: with the default weight, the Festival voices' short synthetic
closures taught net b to leave the lips apart on p/b/m). `training/ensemble.py` copies both
graphs into one and outputs the mean of their `mouth`; the contract above is unchanged.
Net b trained in {twall_b.group(1) if twall_b else '?'} s. {wall_md}

## Evaluation

Command: `{a.command}` (the evaluation step alone:
`.venv-train/bin/python -m training.evaluate --model models/lipsync-v2.onnx --data build/lipsync/data
--real build/lipsync/real --compare models/lipsync-v1.onnx --track`).

{real_eval_md}

`track` is the mouth track the commands use (the model's output through `MouthTrack`), `shown`
the opening the drawn avatar draws (open x (1 - close)); see "The product's track" below.

### Held-out eSpeak voices and languages

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

Unseen eSpeak voices flatter a model (lipsync-v1 scored r 0.859 here and 0.63 on an independent
set of real English speech); the real-speech table above is the figure to trust.

{RECIPE_MD}

## Licence

- The weights (`models/lipsync-v2.onnx`, `models/lipsync-v1.onnx`) and the training code are ours,
  MIT licensed (see `models/LICENSE-lipsync`). No audio is shipped.
- Training and dev speech (fetched from Debian at data-generation time, never shipped): Asterisk
  core sounds fr/it/ru by Digium, Inc. (voices June, Carlo, IvrvoiceRU), CC-BY-SA 3.0; Italian
  prompts by Marco Menardi and Paola Dal Zot, CC-BY-SA 3.0 IT; French prompts by Armelle
  Desjardins, GPL-2+; music on hold "opsound" tracks (macroform, Manolo Camp, Reno Project),
  CC-BY-SA 3.0. Only features computed from them went into training; the weights are not a copy
  or adaptation of the recordings.
- pocketsphinx and its US-English acoustic model (BSD-2-Clause) label the real speech at training
  time only.
- Festival (a permissive X11-style licence, CSTR, University of Edinburgh) and twelve of its
  Debian voice packages synthesise net b's extra voices at training time only: festvox-kallpc16k
  (CMU, BSD-like), festvox-kdlpc16k (CSTR, BSD-like), festvox-us-slt-hts (CMU ARCTIC slt, NITech
  HTS; BSD-3-Clause / EST-2003), festvox-italp16k and festvox-itapc16k (ISTC-CNR Padova,
  ITC-irst; GPL-2+), festvox-suopuhe-lj and festvox-suopuhe-mv (Suopuhe, Universities of Helsinki
  and Joensuu; LGPL-2+), festvox-ru (Nickolay V. Shmyrev; BSD-like), festvox-ca-ona-hts (UPC,
  Antonio Bonafonte; LGPL-2.1+), festvox-czech-dita and festvox-czech-machac (Brailcom; GPL-3+),
  festvox-czech-ph (Brailcom; GPL-2+). Only features of the synthesised speech went into
  training; no voice data is shipped.
- eSpeak NG (GPL-3.0-or-later) is used only as a training-time tool to synthesise speech; it is
  not shipped, linked or needed at run time, and no eSpeak code or data is contained in the model.
"""
    Path(a.out).write_text(card)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
