"""Label the real-speech prompts (training.real_speech) by forced alignment and store features.

    python -m training.label_real --cache build/speech --out build/lipsync/real --workers 2

One .npz per speaker (dev speakers: every `--dev-every`-th prompt, which keeps the dev set over
10 minutes at a fraction of the labelling time) with the same fields as the eSpeak sets (mel, tgt, silent, bil, n_frames)
plus the prompt names. Each recording gets 200 ms of digital silence on both sides (the aligner
and the model both see it). Prompts the aligner cannot fit to their transcript are dropped and
counted: that is where the recording says something else than the text.
"""

from __future__ import annotations

import argparse
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from dhlive_cli.features import logmel
from training import align, real_speech

PAD = 3200  # 200 ms at 16 kHz

_STATE: dict = {}
_DITHER_SEED = 0


def padded(x: np.ndarray) -> np.ndarray:
    """A prompt's audio as labelled: PAD of digital silence on both sides, then zeros up to a
    whole number of 40 ms frames (training.evaluate --track rebuilds the dev audio with it)."""
    n = -(-(x.size + 2 * PAD) // 640) * 640
    audio = np.zeros(n, np.float32)
    audio[PAD : PAD + x.size] = x
    return audio


def _label(args):
    p, x = args
    if not _STATE:
        from training.espeak_synth import Espeak

        _STATE["eng"] = Espeak()
        _STATE["al"] = align.Aligner(_DITHER_SEED)
    eng, al = _STATE["eng"], _STATE["al"]
    eng.set_voice(p.lang)
    words = align.espeak_words(eng, p.text)
    if not words or x.size < 1600:
        return None
    audio = padded(x)
    n = audio.size
    phones = al.align(audio, words)
    if phones is None:
        return None
    tgt, silent, bil, _n_frames = align.targets_from_alignment(phones, n, audio)
    return labelled_item(p, x, tgt, silent, bil)


def labelled_item(p, x: np.ndarray, tgt, silent, bil) -> dict:
    """One utterance as write_labelled stores it: prompt p, its 16 kHz audio x (unpadded) and the
    targets made on padded(x) (align.targets_from_alignment's tgt, silent and p/b/m spans)."""
    return dict(mel=logmel(padded(x)), tgt=tgt, silent=silent, bil=bil, name=p.name, speaker=p.speaker, lang=p.lang,
                seconds=x.size / 16000)


def _init_worker(seed: int) -> None:
    global _DITHER_SEED
    _DITHER_SEED = seed


def ceiling(cache: str, real_dir: str, seed: int, every: int, workers: int) -> None:
    """Label ceiling: relabel every `every`-th stored dev prompt with another dither seed.

    Prints Pearson r of `open` between the stored labels and the new ones (pooled over the
    prompts both labellings aligned, per speaker and overall): no model can agree with the dev
    labels better than two labellings of the same audio agree with each other."""
    prompts = {(p.speaker, p.name): p for p in real_speech.prompts(Path(cache), list(real_speech.DEV_SPEAKERS))}
    a_all, b_all = [], []
    for spk in real_speech.DEV_SPEAKERS:
        d = np.load(os.path.join(real_dir, f"{spk}.npz"))
        starts = np.concatenate([[0], np.cumsum(d["n_frames"])])
        picks = list(range(0, len(d["name"]), every))
        sel = [prompts[(spk, str(d["name"][u]))] for u in picks]
        audio = real_speech.load_many([p.path for p in sel])
        with Pool(workers, initializer=_init_worker, initargs=(seed,)) as pool:
            items = pool.map(_label, list(zip(sel, audio)), chunksize=4)
        a, b, lost = [], [], 0
        for u, it in zip(picks, items):
            old = d["tgt"][starts[u] : starts[u + 1], 0]
            if it is None or it["tgt"].shape[0] != old.shape[0]:
                lost += 1
                continue
            a.append(old)
            b.append(it["tgt"][:, 0])
        a, b = np.concatenate(a), np.concatenate(b)
        a_all.append(a)
        b_all.append(b)
        print(f"{spk}: open r between labellings {np.corrcoef(a, b)[0, 1]:.3f} over {len(picks) - lost} prompts "
              f"({a.size} frames; {lost} not aligned the second time)", flush=True)
    a, b = np.concatenate(a_all), np.concatenate(b_all)
    print(f"all dev speakers: open r between labellings (dither seed 0 vs {seed}) {np.corrcoef(a, b)[0, 1]:.3f} "
          f"over {a.size} frames")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="build/speech")
    ap.add_argument("--out", default="build/lipsync/real")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dev-every", type=int, default=3, help="label every n-th prompt of a dev speaker")
    ap.add_argument("--speakers", default=",".join(real_speech.SPEAKERS), help="comma-separated speakers")
    ap.add_argument("--dither-seed", type=int, default=0, help="aligner dither seed (0 = the shipped labels)")
    ap.add_argument("--ceiling", type=int, default=0, metavar="K",
                    help="instead of labelling: relabel every K-th stored dev prompt in --out with "
                         "--dither-seed and print the agreement (the label ceiling)")
    a = ap.parse_args()
    if a.ceiling:
        ceiling(a.cache, a.out, a.dither_seed or 1, a.ceiling, a.workers)
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    prompts = real_speech.prompts(Path(a.cache))
    t0 = time.time()
    for spk in a.speakers.split(","):
        sel = [p for p in prompts if p.speaker == spk]
        if spk in real_speech.DEV_SPEAKERS:
            sel = sel[:: a.dev_every]
        audio = real_speech.load_many([p.path for p in sel])
        with Pool(a.workers, initializer=_init_worker, initargs=(a.dither_seed,)) as pool:
            items = pool.map(_label, list(zip(sel, audio)), chunksize=8)
        n, secs = write_labelled(out, spk, items)
        print(f"{spk}: {n}/{len(sel)} prompts aligned, {secs / 60:.1f} min of speech ({time.time() - t0:.0f}s)",
              flush=True)


def write_labelled(out: Path, name: str, items: list) -> tuple[int, float]:
    """Store labelled utterances (_label's dicts; None for one that was not aligned, skipped) as
    out/<name>.npz, the real-speech source format training.train reads: mel (frames, 40)
    float32, tgt (frames, 4), silent (frames,), bil (p/b/m spans: utterance, first, end frame),
    n_frames, name, lang and voice per utterance -> (utterances stored, seconds of speech)."""
    ok = [it for it in items if it is not None]
    bil = [(u, s, e) for u, it in enumerate(ok) for s, e in it["bil"]]
    np.savez(out / f"{name}.npz", mel=np.concatenate([it["mel"] for it in ok]),
             tgt=np.concatenate([it["tgt"] for it in ok]), silent=np.concatenate([it["silent"] for it in ok]),
             bil=np.array(bil, np.int64).reshape(-1, 3), n_frames=np.array([it["tgt"].shape[0] for it in ok]),
             name=np.array([it["name"] for it in ok]), lang=np.array([it["lang"] for it in ok]),
             voice=np.array([it["speaker"] for it in ok]))
    return len(ok), sum(it["seconds"] for it in ok)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
