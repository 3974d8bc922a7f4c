"""Synthesise the training and evaluation sets with eSpeak NG and write them as .npz.

Every utterance i is made from its own Generator seeded by (seed, split, i), so the data is the
same for any number of worker processes.

    python -m training.generate --out build/lipsync/data --n-train 6000 --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from dhlive_cli.features import logmel
from training import augment, corpus, mouth_table

SR = 16000
SPF = 640

ENGLISH_ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
                   "en-gb-x-gbcwmd", "en-us-nyc"]
# variants never heard in training: the held-out-voice evaluation uses only these
HELDOUT_VARIANTS = ["f4", "m6", "Annie", "Andy", "Mario", "klatt3", "steph2", "iven3", "belinda",
                    "grandpa", "zac", "travis", "michel", "Denis"]
_EXCLUDE = {"whisper", "whisperf", "Demonic", "UniRobot", "anikaRobot"}  # too far from speech / unstable


def all_variants() -> list[str]:
    import espeakng_loader

    d = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in d.iterdir() if p.is_file())


def train_variants() -> list[str]:
    return [v for v in all_variants() if v not in HELDOUT_VARIANTS and v not in _EXCLUDE] + ["whisper"]


_ENGINE = None


def _engine():
    global _ENGINE
    if _ENGINE is None:
        from training.espeak_synth import Espeak

        _ENGINE = Espeak()
    return _ENGINE


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def synth_utterance(rng: np.random.Generator, prng: random.Random, lang: str, voice: str,
                    pool: list[str] | None, speed: float, pads: tuple[float, float]):
    """Clean 16 kHz audio, frame targets, silence mask, p/b/m spans, sample mask of speech."""
    eng = _engine()
    eng.set_voice(voice)
    text = corpus.make_text(prng, lang, pool)
    rate = int(np.clip(rng.normal(175, 45), 80, 340))
    u = eng.synth(text, rate_wpm=rate, pitch=int(rng.uniform(15, 90)), pitch_range=int(rng.uniform(5, 95)),
                  word_gap=int(rng.choice([0, 0, 0, 1, 3])))
    x = u.audio.astype(np.float32) / 32768.0
    # resampling by 16000/(rate*speed) scales formants and f0 by `speed` (vocal-tract size)
    scale = SR / (u.rate * speed)
    n16 = int(round(x.shape[0] * scale))
    y = augment.resample(x, n16)
    lead = int(pads[0] * SR)
    tail = int(pads[1] * SR)
    n_frames = -(-(lead + n16 + tail) // SPF)
    audio = np.zeros(n_frames * SPF, np.float32)
    audio[lead : lead + n16] = y
    events = [(lead + int(round(s * scale)), name) for s, name in u.phonemes]
    segs = mouth_table.segments(events, audio.shape[0])
    tgt = mouth_table.frame_targets(segs, audio.shape[0], n_frames, SPF)
    silent, bil = mouth_table.frame_labels(segs, n_frames, SPF, audio)
    active = np.ones(audio.shape[0], bool)
    for a, b, _t, _d, tag, _ts in segs:
        if tag == "sil":
            active[a:b] = False
    unknown = [sym for _s, name in u.phonemes for kind, sym in mouth_table.parse(name) if kind == "?"]
    peak = np.max(np.abs(audio)) + 1e-9
    audio = audio * (0.5 / peak)  # a fixed level: gain is randomised later on the features
    return audio, tgt, silent, bil, active, unknown, text


def _train_item(args):
    seed, i, variants = args
    rng = np.random.default_rng(_seed(seed, "train", i))
    prng = random.Random(_seed(seed, "train-text", i))
    r = rng.random()
    if r < 0.30:
        lang, voice_lang = "en", str(rng.choice(ENGLISH_ACCENTS))
    elif r < 0.45:
        lang = voice_lang = "cmn"
    elif r < 0.57:
        lang = voice_lang = "es"
    elif r < 0.69:
        lang = voice_lang = "fr"
    elif r < 0.81:
        lang = voice_lang = "de"
    else:
        lang = voice_lang = str(rng.choice(corpus.PSEUDO_ONLY_LANGS))
    variant = None if rng.random() < 0.12 else str(rng.choice(variants))
    voice = voice_lang + (f"+{variant}" if variant else "")
    pool = corpus.SENTENCES.get(lang, [])[:-3] or None
    speed = float(np.exp(rng.uniform(np.log(0.85), np.log(1.18))))
    pads = (float(rng.uniform(0, 0.6)), float(rng.uniform(0.05, 0.6)))
    audio, tgt, silent, bil, active, unknown, text = synth_utterance(rng, prng, lang, voice, pool, speed, pads)
    if rng.random() < 0.88:
        babble = None
        if rng.random() < 0.1:
            b_audio = synth_utterance(rng, prng, lang, voice_lang, pool, 1.0, (0, 0))[0]
            babble = np.resize(b_audio, audio.shape[0])
        audio, desc = augment.random_chain(audio, active, rng, babble)
    else:
        desc = "clean"
    mel = logmel(audio)
    return dict(mel=mel, tgt=tgt, silent=silent, bil=bil, unknown=unknown, lang=lang, voice=voice, desc=desc)


def _eval_item(args):
    seed, split, i = args
    rng = np.random.default_rng(_seed(seed, split, i))
    prng = random.Random(_seed(seed, split + "-text", i))
    if split == "voices":
        lang = corpus.TRAIN_LANGS[i % len(corpus.TRAIN_LANGS)]
        voice_lang = ENGLISH_ACCENTS[(i // 5) % len(ENGLISH_ACCENTS)] if lang == "en" else lang
        pool = corpus.SENTENCES[lang][-3:]
    else:
        lang = voice_lang = corpus.HELDOUT_LANGS[i % len(corpus.HELDOUT_LANGS)]
        pool = corpus.SENTENCES[lang]
    variant = str(rng.choice(HELDOUT_VARIANTS))
    voice = f"{voice_lang}+{variant}"
    pads = (float(rng.uniform(0.1, 0.5)), float(rng.uniform(0.2, 0.5)))
    audio, tgt, silent, bil, active, unknown, text = synth_utterance(rng, prng, lang, voice, pool, 1.0, pads)
    degraded = augment.telephone_noisy(audio, active, rng)
    return dict(mel=logmel(audio), mel_deg=logmel(degraded), tgt=tgt, silent=silent, bil=bil,
                unknown=unknown, lang=lang, voice=voice, text=text)


_MUSIC: list = []


def _novoice_init(music: list) -> None:
    _MUSIC[:] = music


def _novoice_item(args):
    """2-6 s with no voice (music, noise, hum) and sometimes digital silence around it: all silence."""
    seed, i = args
    rng = np.random.default_rng(_seed(seed, "novoice", i))
    n_frames = int(rng.integers(50, 150))
    audio = np.zeros(n_frames * SPF, np.float32)
    lead = int(rng.integers(0, 10)) * SPF if rng.random() < 0.3 else 0
    clip, desc = augment.novoice_clip(audio.shape[0] - lead, rng, _MUSIC)
    audio[lead:] = clip
    segs = mouth_table.segments([], audio.shape[0])
    tgt = mouth_table.frame_targets(segs, audio.shape[0], n_frames, SPF)
    return dict(mel=logmel(audio), tgt=tgt, silent=np.ones(n_frames, bool), bil=[], lang="none", voice=desc)


def _pack(items, path: Path, keys=("mel",)) -> None:
    n_frames = np.array([it["tgt"].shape[0] for it in items])
    arrays = {k: np.concatenate([it[k] for it in items]).astype(np.float32) for k in keys}
    bil = [(u, a, b) for u, it in enumerate(items) for a, b in it["bil"]]
    np.savez(
        path,
        n_frames=n_frames,
        tgt=np.concatenate([it["tgt"] for it in items]),
        silent=np.concatenate([it["silent"] for it in items]),
        bil=np.array(bil, np.int64).reshape(-1, 3),
        lang=np.array([it["lang"] for it in items]),
        voice=np.array([it["voice"] for it in items]),
        **arrays,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/lipsync/data")
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-eval", type=int, default=300, help="per evaluation split")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--n-novoice", type=int, default=800, help="music/noise clips labelled silence")
    ap.add_argument("--cache", default="build/speech", help="where the recorded music is fetched to")
    ap.add_argument("--reuse", action="store_true", help="keep evaluation and novoice sets already in --out")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if a.n_novoice and not (a.reuse and (out / "novoice.npz").exists()):
        from training import real_speech

        with Pool(a.workers, initializer=_novoice_init, initargs=(real_speech.music(Path(a.cache)),)) as pool:
            items = pool.map(_novoice_item, [(a.seed, i) for i in range(a.n_novoice)], chunksize=8)
        _pack(items, out / "novoice.npz")
        print(f"novoice: {len(items)} clips, {sum(it['tgt'].shape[0] for it in items)} frames "
              f"({time.time() - t0:.0f}s)", flush=True)
    variants = train_variants()
    with Pool(a.workers) as pool:
        for split in ("voices", "langs"):
            if a.reuse and (out / f"eval_{split}.npz").exists():
                continue
            items = pool.map(_eval_item, [(a.seed, split, i) for i in range(a.n_eval)], chunksize=8)
            _pack(items, out / f"eval_{split}.npz", keys=("mel", "mel_deg"))
            print(f"eval_{split}: {len(items)} utterances, {sum(it['tgt'].shape[0] for it in items)} frames "
                  f"({time.time() - t0:.0f}s)", flush=True)
        items = []
        unknown: Counter = Counter()
        descs: Counter = Counter()
        for k, it in enumerate(pool.imap(_train_item, [(a.seed, i, variants) for i in range(a.n_train)], chunksize=16)):
            unknown.update(it["unknown"])
            descs.update(it["desc"].split("+"))
            items.append(it)
            if (k + 1) % 1000 == 0:
                print(f"train: {k + 1}/{a.n_train} ({time.time() - t0:.0f}s)", flush=True)
        if items:
            _pack(items, out / "train.npz")
    n = sum(it["tgt"].shape[0] for it in items)
    print(f"train: {len(items)} utterances, {n} frames = {n / 25 / 3600:.2f} h, {time.time() - t0:.0f}s")
    if not items:
        (out / "train.npz").unlink(missing_ok=True)
    print("augmentations:", dict(descs.most_common(12)))
    if unknown:
        print("IPA symbols not in the table (neutral target):", dict(unknown.most_common(20)))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
