"""Phone timings for real speech without hand work: eSpeak NG pronounces, pocketsphinx aligns.

For a recording and its transcript:
1. eSpeak NG (C API, phoneme events) gives the transcript's phones in IPA, split into words.
2. Each IPA part is mapped to the nearest phone of pocketsphinx's US-English acoustic model
   (ARPAbet; IPA_TO_ARPA below). Every word becomes one dictionary entry with exactly that
   pronunciation (`Decoder.add_word`), so nothing is looked up in an English dictionary and any
   language eSpeak phonemizes can be aligned, with a coarser phone set.
3. `set_align_text` forces the word sequence (optional silences between words), then a second
   pass (`set_alignment`) gives phone boundaries in 10 ms frames.
4. The aligned phones carry their IPA part back into `mouth_table`, whose targets and
   coarticulation are the ones the eSpeak data uses. Silences the aligner found are pauses.

The acoustic model ships inside the pocketsphinx wheel (BSD licence); it is a training-time tool.
Label accuracy is measured by `python -m training.align --check`, on eSpeak audio whose phone
events are the truth (see models/README.md for the figure).
"""

from __future__ import annotations

import argparse
import os
import unicodedata

import numpy as np

from training import mouth_table

SR = 16000
SPF = 640

IPA_TO_ARPA: dict[str, str] = {
    # vowels: nearest English vowel by height, backness and rounding
    "i": "IY", "y": "UW", "ɨ": "IH", "ʉ": "UW", "ɯ": "UH", "u": "UW", "ɪ": "IH", "ʏ": "UH",
    "ʊ": "UH", "e": "EY", "ø": "UH", "ɘ": "AH", "ɵ": "UH", "ɤ": "AH", "o": "OW", "ə": "AH",
    "ɛ": "EH", "œ": "AH", "ɜ": "ER", "ɞ": "AH", "ʌ": "AH", "ɔ": "AO", "æ": "AE", "ɐ": "AH",
    "a": "AA", "ɶ": "AA", "ɑ": "AA", "ɒ": "AO", "ɚ": "ER", "ɝ": "ER", "ᵻ": "IH",
    # consonants
    "p": "P", "b": "B", "m": "M", "ɓ": "B", "ʙ": "B", "ɸ": "F", "β": "V", "f": "F", "v": "V",
    "ɱ": "M", "ʋ": "V", "θ": "TH", "ð": "DH", "t": "T", "d": "D", "n": "N", "s": "S", "z": "Z",
    "ɬ": "S", "ɮ": "Z", "ʦ": "S", "ʣ": "Z", "l": "L", "ɫ": "L", "ʟ": "L", "ɾ": "D", "r": "R",
    "ɺ": "L", "ʀ": "R", "ɹ": "R", "ʃ": "SH", "ʒ": "ZH", "ɕ": "SH", "ʑ": "ZH", "ʂ": "SH",
    "ʐ": "ZH", "ɻ": "R", "ʈ": "T", "ɖ": "D", "ɳ": "N", "ɭ": "L", "c": "K", "ɟ": "G", "ç": "HH",
    "ʝ": "Y", "j": "Y", "ɲ": "N", "ʎ": "L", "k": "K", "g": "G", "ɡ": "G", "x": "HH", "ɣ": "G",
    "ŋ": "NG", "ɰ": "W", "q": "K", "ɢ": "G", "χ": "HH", "ʁ": "R", "ɴ": "NG", "h": "HH",
    "ɦ": "HH", "ħ": "HH", "ʕ": "HH", "w": "W", "ʍ": "W", "ɥ": "W", "labvelar": "W",
}


def ipa_parts(name: str) -> list[str]:
    """One eSpeak phoneme name -> its parts that have an ARPAbet neighbour (ʔ and unknowns dropped)."""
    out = []
    for kind, sym in mouth_table.parse(name):
        if kind in ("v", "c") and sym in IPA_TO_ARPA:
            out.append(sym)
    return out


def espeak_words(eng, text: str) -> list[list[str]]:
    """Transcript -> words, each a list of IPA parts, as eSpeak NG pronounces it (voice already set)."""
    eng.synth(text)
    words: list[list[str]] = []
    cur: list[str] = []
    for typ, _sample, name in eng._events:
        if typ == 1:  # EV_WORD
            if cur:
                words.append(cur)
            cur = []
        elif typ == 7 and name:
            cur += ipa_parts(unicodedata.normalize("NFC", name))
    if cur:
        words.append(cur)
    return words


class Aligner:
    """A pocketsphinx decoder in alignment mode (one per process; not thread-safe)."""

    def __init__(self, dither_seed: int = 0) -> None:
        """dither_seed: 0 = the 1-LSB dither is seeded by the audio length alone (the shipped
        labels); another value gives a second, equally valid labelling of the same audio, which
        measures how much the labels themselves move (see `--ceiling` in training.label_real)."""
        import pocketsphinx as ps

        self._ps = ps
        self.dec = ps.Decoder(hmm=os.path.join(ps.get_model_path(), "en-us", "en-us"), lm=None,
                              dict=os.devnull, loglevel="FATAL",
                              beam=1e-80, pbeam=1e-80, wbeam=1e-60)
        self._known: set[str] = set()
        self.dither_seed = dither_seed

    def align(self, audio: np.ndarray, words: list[list[str]]) -> list[tuple[int, int, str]] | None:
        """audio float32 16 kHz, words of IPA parts -> [(start sample, end sample, IPA or '')].

        '' marks a silence the aligner placed. None when the aligner finds no path (the audio
        does not hold the words, or the transcript is wrong).
        """
        names = []
        for w in words:
            pron = " ".join(IPA_TO_ARPA[p] for p in w)
            key = "w_" + pron.replace(" ", "_").lower()
            if key not in self._known:
                self.dec.add_word(key, pron, True)
                self._known.add(key)
            names.append(key)
        # dither (1 LSB, seeded by the audio itself so a label never depends on which worker made
        # it): digital silence (log of zero energy) breaks the aligner's normalisation and it
        # gives up mid-utterance
        rng = np.random.default_rng([audio.shape[0], self.dither_seed] if self.dither_seed else audio.shape[0])
        pcm = np.round(np.clip(audio, -1, 1) * 32767 + rng.uniform(-1, 1, audio.shape[0]))
        pcm = np.clip(pcm, -32768, 32767).astype(np.int16).tobytes()
        dec = self.dec
        try:
            dec.set_align_text(" ".join(names))
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
            if dec.hyp() is None:
                return None
            dec.set_alignment()
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
            al = dec.get_alignment()
        except RuntimeError:
            return None
        if al is None:
            return None
        out = []
        wi = 0
        for word in al:
            if word.name in ("<sil>", "<s>", "</s>", "(NULL)") or word.name.startswith("+"):
                out.append((word.start * 160, (word.start + word.duration) * 160, ""))
                continue
            ipa = words[wi]
            wi += 1
            phones = list(word)
            if len(phones) != len(ipa):
                return None
            for ph, sym in zip(phones, ipa):
                out.append((ph.start * 160, (ph.start + ph.duration) * 160, sym))
        if wi != len(words):
            return None
        return out


def targets_from_alignment(phones: list[tuple[int, int, str]], n_samples: int, audio: np.ndarray | None = None):
    """Aligned phones -> (frame targets (n_frames, 4), silent mask, p/b/m frame spans, n_frames)."""
    n_frames = -(-n_samples // SPF)
    events = []
    for a, _b, sym in phones:
        events.append((a, sym))
    if phones:
        events.append((phones[-1][1], ""))
    segs = mouth_table.segments(events, n_frames * SPF)
    tgt = mouth_table.frame_targets(segs, n_frames * SPF, n_frames, SPF)
    pad = None
    if audio is not None:
        pad = np.zeros(n_frames * SPF, np.float32)
        pad[: audio.shape[0]] = audio[: n_frames * SPF]
    silent, bil = mouth_table.frame_labels(segs, n_frames, SPF, pad)
    return tgt, silent, bil, n_frames


def check(n: int, seed: int) -> None:
    """Label accuracy on eSpeak speech, where eSpeak's own phoneme events are the truth."""
    import random

    from training import augment, corpus
    from training.espeak_synth import Espeak

    eng = Espeak()
    al = Aligner()
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    langs = ["fr", "it", "ru", "de", "en-us"]
    truth_all, lab_all, fails = [], [], 0
    per_lang: dict[str, list] = {}
    for i in range(n):
        lang = langs[i % len(langs)]
        voice = lang + "+" + str(rng.choice(["f2", "m3", "Annie", "Andy", "klatt3"]))
        eng.set_voice(voice)
        base = "en" if lang == "en-us" else lang
        text = corpus.make_text(prng, base, corpus.SENTENCES.get(base) or None)
        u = eng.synth(text, rate_wpm=int(rng.uniform(130, 220)))
        x = augment.resample(u.audio.astype(np.float32) / 32768.0, int(round(u.audio.shape[0] * SR / u.rate)))
        lead = int(0.3 * SR)
        audio = np.concatenate([np.zeros(lead, np.float32), x, np.zeros(int(0.3 * SR), np.float32)])
        # a quiet room under the voice, as in the recordings (eSpeak's exact zeros between words
        # are not a sound any microphone makes, and the aligner misreads them)
        audio = augment.add_noise(audio, augment.colored_noise(audio.shape[0], rng, "pink"), 35.0, None)
        n_fr = -(-audio.shape[0] // SPF)
        ev = [(lead + int(round(s * SR / u.rate)), name) for s, name in u.phonemes]
        segs = mouth_table.segments(ev, n_fr * SPF)
        truth = mouth_table.frame_targets(segs, n_fr * SPF, n_fr, SPF)
        eng.set_voice(lang)  # the pronunciation comes from the default voice, as for real speech
        words = espeak_words(eng, text)
        phones = al.align(audio, words)
        if phones is None:
            fails += 1
            continue
        lab = targets_from_alignment(phones, audio.shape[0])[0]
        truth_all.append(truth[:, 0])
        lab_all.append(lab[:, 0])
        per_lang.setdefault(lang, []).append((truth[:, 0], lab[:, 0]))
    t = np.concatenate(truth_all)
    lab = np.concatenate(lab_all)
    print(f"label check on {n} eSpeak utterances ({fails} not aligned): opening r {np.corrcoef(t, lab)[0, 1]:.3f} "
          f"over {t.size} frames")
    for lang, pairs in per_lang.items():
        a = np.concatenate([p[0] for p in pairs])
        b = np.concatenate([p[1] for p in pairs])
        print(f"  {lang}: r {np.corrcoef(a, b)[0, 1]:.3f} ({len(pairs)} utterances)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", type=int, default=100, help="utterances in the label-accuracy check")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    check(a.check, a.seed)


if __name__ == "__main__":
    main()
