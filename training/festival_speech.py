"""More (near-)human training voices: Debian's Festival voices, built from recordings of real people.

    python -m training.festival_speech --out build/lipsync/real --n 150 --workers 2
    python -m training.festival_speech --labels festival ...   (festival's own timings: <speaker>_ft.npz)
    python -m training.festival_speech --check 30        (label agreement, no files written)

Each voice synthesises `--n` utterances of text from training.corpus (its sentences, word salad
and pseudo-words) or, for languages the corpus has no training sentences for, the short
sentence lists below (written for this module; never the dev prompts' transcripts, never the
held-out eSpeak sentences). The audio is resampled to 16 kHz mono and labelled exactly as the
real recordings are (training.label_real: eSpeak NG phonemizes the text, pocketsphinx aligns,
training.mouth_table makes the targets), so each voice is one more "real speaker":
`<out>/<speaker>.npz` in label_real's format, which `training.train --speakers ...` takes.

The voices are Debian packages installed at data-generation time and never shipped (`apt-get
install festival` plus the packages below; festival finds its voices only where apt puts them):

| speaker | festival voice | language | package | built from | licence |
| --- | --- | --- | --- | --- | --- |
| fest_en_m_kal | kal_diphone | en-US, male | festvox-kallpc16k | diphones (A. W. Black, K. Lenzo, CMU) | free, BSD-like (festvox) |
| fest_en_m_ked | ked_diphone | en-US, male | festvox-kdlpc16k | diphones (CSTR, Univ. Edinburgh) | free, BSD-like (CSTR) |
| fest_en_f_slt | cmu_us_slt_arctic_hts | en-US, female | festvox-us-slt-hts | HTS model of CMU ARCTIC slt (CMU, NITech) | EST-2003, BSD-3-Clause |
| fest_it_f_lp | lp_diphone | it, female | festvox-italp16k | diphones (IFM, ISTC-CNR Padova, ITC-irst) | GPL-2+ |
| fest_it_m_pc | pc_diphone | it, male | festvox-itapc16k | diphones (IFM, ISTC-CNR Padova, ITC-irst) | GPL-2+ |
| fest_fi_f_lj | suo_fi_lj_diphone | fi, female | festvox-suopuhe-lj | diphones (Suopuhe, Univ. Helsinki and Joensuu) | LGPL-2+ |
| fest_fi_m_mv | hy_fi_mv_diphone | fi, male | festvox-suopuhe-mv | diphones (Suopuhe, Univ. Helsinki and Joensuu) | LGPL-2+ |
| fest_ru_m_nsh | msu_ru_nsh_clunits | ru, male | festvox-ru | unit selection (N. V. Shmyrev) | BSD-like |
| fest_ca_f_ona | upc_ca_ona_hts | ca, female | festvox-ca-ona-hts | HTS model (UPC, A. Bonafonte) | LGPL-2.1+ |
| fest_cs_f_dita | czech_dita | cs, female | festvox-czech-dita | diphones (Brailcom) | GPL-3+ |
| fest_cs_m_machac | czech_machac | cs, male | festvox-czech-machac | diphones (Brailcom) | GPL-3+ |
| fest_cs_m_ph | czech_ph | cs, male | festvox-czech-ph | diphones (Brailcom) | GPL-2+ |

`--labels festival` labels from festival's own segment timings instead (each voice's phone set
mapped to IPA: RADIO_TO_IPA, PHONE_SETS) and writes `<out>/<speaker>_ft.npz`; nothing is dropped.
`--check N` labels N utterances of each voice both ways and prints the Pearson r of `open`
between the two labellings.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from training import corpus, label_real, real_speech


@dataclass(frozen=True)
class FestivalVoice:
    """One Festival voice: its Scheme name, the eSpeak NG language that phonemizes its text,
    the corpus language of its text, the byte encoding festival's front end expects, its
    Debian package."""

    voice: str
    lang: str
    text_lang: str
    encoding: str
    package: str


VOICES: dict[str, FestivalVoice] = {
    "fest_en_m_kal": FestivalVoice("kal_diphone", "en-us", "en", "ascii", "festvox-kallpc16k"),
    "fest_en_m_ked": FestivalVoice("ked_diphone", "en-us", "en", "ascii", "festvox-kdlpc16k"),
    "fest_en_f_slt": FestivalVoice("cmu_us_slt_arctic_hts", "en-us", "en", "ascii", "festvox-us-slt-hts"),
    "fest_it_f_lp": FestivalVoice("lp_diphone", "it", "it", "latin-1", "festvox-italp16k"),
    "fest_it_m_pc": FestivalVoice("pc_diphone", "it", "it", "latin-1", "festvox-itapc16k"),
    "fest_fi_f_lj": FestivalVoice("suo_fi_lj_diphone", "fi", "fi", "latin-1", "festvox-suopuhe-lj"),
    "fest_fi_m_mv": FestivalVoice("hy_fi_mv_diphone", "fi", "fi", "latin-1", "festvox-suopuhe-mv"),
    "fest_ru_m_nsh": FestivalVoice("msu_ru_nsh_clunits", "ru", "ru", "utf-8", "festvox-ru"),
    "fest_ca_f_ona": FestivalVoice("upc_ca_ona_hts", "ca", "ca", "latin-1", "festvox-ca-ona-hts"),
    "fest_cs_f_dita": FestivalVoice("czech_dita", "cs", "cs", "iso-8859-2", "festvox-czech-dita"),
    "fest_cs_m_machac": FestivalVoice("czech_machac", "cs", "cs", "iso-8859-2", "festvox-czech-machac"),
    "fest_cs_m_ph": FestivalVoice("czech_ph", "cs", "cs", "iso-8859-2", "festvox-czech-ph"),
}

# Training sentences for languages training.corpus has none for (its Italian ones are the
# held-out eSpeak evaluation's and stay out of training).
SENTENCES: dict[str, list[str]] = {
    "it": [
        "Ogni mattina prendo il pane fresco dal fornaio.",
        "Abbiamo visto un bel film al cinema ieri sera.",
        "Mio fratello lavora in una banca vicino al porto.",
        "Potresti chiudere la porta quando esci, per favore?",
        "Le montagne sono coperte di neve bianca.",
        "Marco e Paola hanno comprato una macchina nuova.",
        "Il treno per Milano parte tra cinque minuti.",
        "Questa minestra è buonissima, brava mamma!",
        "Dove posso trovare una farmacia aperta?",
        "Il bambino beve il latte e poi dorme.",
        "Sabato andremo al mare con i nostri amici.",
        "Mi piace molto ascoltare la musica classica.",
        "Il postino porta le lettere ogni giorno.",
        "Vuoi un po' di frutta o preferisci un gelato?",
    ],
    "fi": [
        "Hyvää huomenta, miten voit tänään?",
        "Äiti leipoo pullaa joka sunnuntai.",
        "Pieni koira leikkii pallolla pihalla.",
        "Voisitko avata ikkunan, kiitos?",
        "Huomenna menemme junalla Helsinkiin.",
        "Haluaisin kupin kahvia ja pullan.",
        "Lapset pelaavat jalkapalloa koulun jälkeen.",
        "Museo aukeaa yhdeksältä aamulla.",
        "Kiitos paljon avustasi ja kärsivällisyydestäsi.",
        "Pekka unohti sinisen sateenvarjonsa bussiin.",
        "Hyvää yötä ja nähdään huomenna.",
        "Tämä kaupunki on kaunis illalla.",
    ],
    "ru": [
        "Доброе утро, как ваши дела сегодня?",
        "Моя мама печёт пироги по воскресеньям.",
        "Маленькая собака играет с мячом в саду.",
        "Пожалуйста, откройте окно, здесь очень жарко.",
        "Завтра мы поедем в Москву на поезде.",
        "Я хотел бы чашку чая и булочку.",
        "Дети играют в футбол после школы.",
        "Музей открывается в девять часов утра.",
        "Большое спасибо за вашу помощь.",
        "Папа купил новую синюю машину.",
        "Спокойной ночи и до завтра.",
        "Этот город очень красивый вечером.",
    ],
    "cs": [
        "Dobré ráno, jak se dnes máte?",
        "Moje máma peče v neděli buchty.",
        "Malý pes si hraje na zahradě s míčem.",
        "Můžete prosím otevřít okno?",
        "Zítra pojedeme vlakem do Prahy.",
        "Dal bych si kávu a rohlík, prosím.",
        "Děti hrají po škole fotbal.",
        "Muzeum otevírá v devět hodin ráno.",
        "Mockrát děkuji za vaši pomoc a trpělivost.",
        "Pavel zapomněl modrý deštník v autobuse.",
        "Dobrou noc a na shledanou zítra.",
        "Tohle město je večer velmi krásné.",
    ],
    "ca": [
        "Bon dia, com estàs avui?",
        "La meva mare fa una paella boníssima els diumenges.",
        "El gos petit juga amb la pilota al jardí.",
        "Si us plau, pots obrir la finestra?",
        "Demà anirem a Barcelona amb tren.",
        "Voldria un cafè amb llet i un entrepà.",
        "Els nens juguen a futbol després de l'escola.",
        "El museu obre a les nou del matí.",
        "Moltes gràcies per la teva ajuda.",
        "En Pau ha perdut el seu paraigua blau.",
        "Bona nit i fins demà.",
        "Aquesta ciutat és molt bonica al vespre.",
    ],
}

# festival's US-English `radio` phone set -> IPA, in the names training.mouth_table parses
RADIO_TO_IPA: dict[str, str] = {
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ax": "ə", "axr": "ɚ", "ay": "aɪ",
    "eh": "ɛ", "er": "ɝ", "ey": "eɪ", "ih": "ɪ", "iy": "i", "ow": "oʊ", "oy": "ɔɪ", "uh": "ʊ",
    "uw": "u", "b": "b", "ch": "tʃ", "d": "d", "dh": "ð", "dx": "ɾ", "f": "f", "g": "ɡ", "hh": "h",
    "jh": "dʒ", "k": "k", "l": "l", "m": "m", "n": "n", "ng": "ŋ", "p": "p", "r": "ɹ", "s": "s",
    "sh": "ʃ", "t": "t", "th": "θ", "v": "v", "w": "w", "y": "j", "z": "z", "zh": "ʒ",
    "pau": "", "h#": "", "#": "",
}


# Each voice's own phone set -> IPA (festival's segment names; "" = pause). Stress marks ("1"),
# length (":") and Russian palatalisation (a doubled consonant letter) do not move the lips and
# are dropped before the lookup; what is not listed is passed through as IPA (p, b, m, t, ...).
_IT = {"E": "ɛ", "O": "ɔ", "J": "ɲ", "L": "ʎ", "tS": "tʃ", "dZ": "dʒ", "S": "ʃ", "ng": "ŋ", "ts": "ʦ",
       "dz": "ʣ", "#": ""}
_FI = {"a": "ɑ", "@": "æ", "7": "ø", "N": "ŋ", "#": "", "_": ""}
_RU = {"a": "a", "aa": "a", "ae": "ɪ", "ay": "ə", "oo": "o", "ee": "e", "ii": "i", "uu": "u", "ur": "ʊ",
       "y": "ɨ", "yy": "ɨ", "ch": "tɕ", "sh": "ʂ", "zh": "ʐ", "sch": "ɕ", "c": "ʦ", "h": "x", "hh": "x",
       "g": "ɡ", "pau": ""}
_CA = {"ax": "ə", "E": "ɛ", "O": "ɔ", "L": "ʎ", "Z": "ʒ", "S": "ʃ", "rr": "r", "r": "ɾ", "J": "ɲ",
       "ng": "ŋ", "B": "β", "D": "ð", "G": "ɣ", "tS": "tʃ", "dZ": "dʒ", "pau": ""}
_CS = {"n~": "ɲ", "s~": "ʃ", "z~": "ʒ", "c": "ʦ", "c~": "tʃ", "d~": "ɟ", "t~": "c", "r~": "r", "r~*": "r",
       "ch": "x", "dz": "ʣ", "dz~": "dʒ", "h": "ɦ", "n*": "ŋ", "mg": "ɱ", "#": "", "_": ""}
PHONE_SETS: dict[str, dict[str, str]] = {"radio": {}, "it": _IT, "fi": _FI, "ru": _RU, "ca": _CA, "cs": _CS}


def phone_to_ipa(phone_set: str, name: str) -> str:
    """One festival segment name -> IPA for training.mouth_table ('' = pause)."""
    if phone_set == "radio":
        return RADIO_TO_IPA[name]
    table = PHONE_SETS[phone_set]
    base = name.rstrip("1:")
    if phone_set == "ru" and len(base) == 2 and base[0] == base[1] and base not in table:
        base = base[0]  # doubled consonant letter = palatalised
    return table.get(base, base)


def texts(speaker: str, n: int, seed: int) -> list[str]:
    """n utterance texts for one voice, reproducible from (seed, speaker)."""
    v = VOICES[speaker]
    rng = random.Random(f"{seed}:{speaker}")
    pool = corpus.SENTENCES[v.text_lang] if v.text_lang in corpus.TRAIN_LANGS else SENTENCES[v.text_lang]
    out = []
    while len(out) < n:
        t = corpus.make_text(rng, v.text_lang, pool)
        try:
            t.encode(v.encoding)
        except UnicodeEncodeError:
            continue
        out.append(t)
    return out


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def synthesise(speaker: str, items: list[str], folder: Path) -> list[tuple[Path, list[tuple[float, str]]]]:
    """Synthesise every text with one festival process.

    Returns, per text, the WAV path (the voice's own sample rate) and festival's segments as
    (end time in seconds, phone name); missing WAVs (festival failed on that text) give empty paths.
    """
    v = VOICES[speaker]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"(voice_{v.voice})"]
    for i, t in enumerate(items):
        wav, seg = folder / f"{i:05d}.wav", folder / f"{i:05d}.seg"
        lines.append(
            f"(set! utt (Utterance Text {_scheme_string(t)}))(utt.synth utt)"
            f"(utt.save.wave utt \"{wav}\" 'riff)"
            f"(set! fd (fopen \"{seg}\" \"w\"))"
            f"(mapcar (lambda (s) (format fd \"%f %s\\n\" (item.feat s \"end\") (item.name s)))"
            f" (utt.relation.items utt 'Segment))(fclose fd)"
        )
    script = folder / "synth.scm"
    script.write_bytes("\n".join(lines).encode(v.encoding, errors="replace"))
    subprocess.run(["festival", "-b", str(script)], capture_output=True, timeout=3600)
    out = []
    for i in range(len(items)):
        wav, seg = folder / f"{i:05d}.wav", folder / f"{i:05d}.seg"
        segs = []
        if seg.exists():
            for line in seg.read_text(encoding="latin-1").splitlines():
                end, name = line.split(" ", 1)
                segs.append((float(end), name))
        out.append((wav if wav.exists() else Path(""), segs))
    return out


def festival_targets(segs: list[tuple[float, str]], audio: np.ndarray, phone_set: str = "radio"):
    """Labels from festival's own segments (end times in seconds, phone names of `phone_set`) for
    16 kHz audio, on label_real.padded(audio) -> (targets (n_frames, 4), silent mask (n_frames,),
    p/b/m frame spans, n_frames), as align.targets_from_alignment gives them."""
    from training import align

    phones, start = [], 0.0
    for end, name in segs:
        a = label_real.PAD + int(round(start * real_speech.SR))
        b = label_real.PAD + int(round(end * real_speech.SR))
        phones.append((a, b, phone_to_ipa(phone_set, name)))
        start = end
    padded = label_real.padded(audio)
    return align.targets_from_alignment(phones, padded.size, padded)


def phone_set(speaker: str) -> str:
    """The PHONE_SETS key of a voice's segment names."""
    lang = VOICES[speaker].text_lang
    return "radio" if lang == "en" else lang


def _festival_item(args):
    """label_real._label's item, labelled from festival's own segments instead of alignment."""
    p, x, segs, pset = args
    if x.size < 1600 or not segs:
        return None
    tgt, silent, bil, _n = festival_targets(segs, x, pset)
    return label_real.labelled_item(p, x, tgt, silent, bil)


def make_voice(speaker: str, n: int, seed: int, workers: int, tmp: Path, labels: str = "align"):
    """Synthesise and label one voice -> (label_real items, None where not aligned; prompts;
    16 kHz audio; festival's segments). labels: "align" (eSpeak NG + pocketsphinx, as the real
    recordings) or "festival" (the voice's own segment timings through PHONE_SETS)."""
    items = texts(speaker, n, seed)
    synth = synthesise(speaker, items, tmp / speaker)
    keep = [(i, p) for i, (p, _s) in enumerate(synth) if p.name]
    prompts = [real_speech.Prompt(speaker, VOICES[speaker].lang, f"{speaker}_{i:05d}", items[i], p) for i, p in keep]
    audio = real_speech.load_many([p.path for p in prompts])
    segs = [synth[i][1] for i, _p in keep]
    with Pool(workers) as pool:
        if labels == "festival":
            args = [(p, x, sg, phone_set(speaker)) for p, x, sg in zip(prompts, audio, segs)]
            labelled = pool.map(_festival_item, args, chunksize=8)
        else:
            labelled = pool.map(label_real._label, list(zip(prompts, audio)), chunksize=8)
    return labelled, prompts, audio, segs


def check(n: int, seed: int, workers: int, speakers: list[str]) -> None:
    """Agreement of the two labellings: forced alignment (as for the real recordings) against
    festival's own segment timings through PHONE_SETS, Pearson r of `open` per voice over the
    utterances both label; also counts segment names mouth_table does not know."""
    from collections import Counter

    from training import mouth_table

    with tempfile.TemporaryDirectory() as tmp:
        a_all, b_all = [], []
        for spk in speakers:
            labelled, _prompts, audio, segs = make_voice(spk, n, seed + 1, workers, Path(tmp))
            unknown = Counter(name for sg in segs for _e, name in sg
                              if any(k == "?" for k, _s in mouth_table.parse(phone_to_ipa(phone_set(spk), name))))
            a, b = [], []
            for it, x, sg in zip(labelled, audio, segs):
                if it is None:
                    continue
                truth = festival_targets(sg, x, phone_set(spk))[0]
                if truth.shape[0] != it["tgt"].shape[0]:
                    continue
                a.append(truth[:, 0])
                b.append(it["tgt"][:, 0])
            a, b = np.concatenate(a), np.concatenate(b)
            a_all.append(a)
            b_all.append(b)
            print(f"{spk}: open r, alignment vs festival's timings {np.corrcoef(a, b)[0, 1]:.3f} "
                  f"({len(b)} frames; {sum(it is not None for it in labelled)}/{len(labelled)} aligned; "
                  f"unknown phones {dict(unknown)})", flush=True)
        a, b = np.concatenate(a_all), np.concatenate(b_all)
        print(f"all: {np.corrcoef(a, b)[0, 1]:.3f} over {a.size} frames")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/lipsync/real")
    ap.add_argument("--n", type=int, default=150, help="utterances per voice")
    ap.add_argument("--speakers", default=",".join(VOICES), help="comma-separated (default all)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--labels", default="align", choices=["align", "festival"],
                    help="align: forced alignment as for real speech (<speaker>.npz); festival: the voice's "
                         "own segment timings (<speaker>_ft.npz)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="instead: label N utterances per voice both ways and print their agreement")
    a = ap.parse_args()
    if a.check:
        check(a.check, a.seed, a.workers, a.speakers.split(","))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for spk in a.speakers.split(","):
            labelled, _p, _a, _s = make_voice(spk, a.n, a.seed, a.workers, Path(tmp), a.labels)
            k, secs = label_real.write_labelled(out, spk + ("_ft" if a.labels == "festival" else ""), labelled)
            print(f"{spk}: {k}/{len(labelled)} utterances labelled, {secs / 60:.1f} min of speech "
                  f"({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
