"""More recorded voices: the spoken letters, syllables and words of two KDE learning games.

    python -m training.kde_speech --cache build/speech --out build/lipsync/real --workers 2

KLettres (Debian `klettres-data`, GPL-2+, KDE Edu, (c) Anne-Marie Mahfouf and the recorders
credited in the package) teaches alphabets: for each language a volunteer recorded the letter
names and a set of syllables, and `<lang>/sounds.xml` gives each file's text (`<sound name="LA"
file="fr/syllab/ad-0.ogg"/>`). KTuberling (Debian `ktuberling-data`, GPL-2+) speaks the name of
each stamp; its English recordings are named by the word spoken (`egypt_camel.ogg`: "camel"),
the other languages by the English word only, so only English is used. Every language folder is
one recorded voice (one source here: `kde_klettres_<lang>`, `kde_ktuberling_en`); these are
real speakers, many more of them than the Asterisk prompts give, in short isolated items.

Labelled exactly as training.label_real labels the Asterisk prompts (eSpeak NG phonemes forced
onto the audio by pocketsphinx); items the aligner cannot fit are dropped. Languages eSpeak NG
has no voice for (Low German, Setswana) are skipped. Fetched with `apt-get download` + `dpkg -x`
at data-generation time; no audio is shipped.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import xml.etree.ElementTree as ET
from multiprocessing import Pool
from pathlib import Path

from training import real_speech
from training.label_real import _init_worker, _label, write_labelled

PACKAGES = ("klettres-data", "ktuberling-data")
# KLettres folder -> eSpeak NG voice (folders without one are left out)
KLETTRES_VOICES = {
    "ar": "ar", "cs": "cs", "da": "da", "de": "de", "en": "en-us", "en_GB": "en", "es": "es",
    "fr": "fr", "he": "he", "hu": "hu", "it": "it", "lt": "lt", "ml": "ml", "nb": "nb", "nl": "nl",
    "pt_BR": "pt-br", "ru": "ru", "uk": "uk",
}
# the theme a KTuberling stamp belongs to, left out of the spoken word
_THEMES = re.compile(r"^(egypt|moon|pizzeria|tv|butterflies|christmas|potato|aquarium|park|robin)_")


def _text(name: str) -> str:
    """What a KLettres item says, as eSpeak should read it: one letter as it is (eSpeak says its
    name), a syllable in lower case (in capitals eSpeak may spell it letter by letter)."""
    name = name.strip()
    return name if len(name) == 1 else name.lower()


def prompts(cache: Path) -> list[real_speech.Prompt]:
    root = real_speech.fetch(cache, list(PACKAGES))
    out = []
    base = root / "usr/share/klettres"
    for folder, voice in sorted(KLETTRES_VOICES.items()):
        xml = base / folder / "sounds.xml"
        if not xml.is_file():
            continue
        spk = f"kde_klettres_{folder}"
        for el in ET.parse(xml).iter("sound"):
            name, file = el.get("name"), el.get("file")
            path = base / file if file else None
            if name and path is not None and path.is_file():
                out.append(real_speech.Prompt(spk, voice, file, _text(name), path))
    tux = root / "usr/share/ktuberling/sounds/en"
    for path in sorted(tux.glob("*.ogg")):
        word = _THEMES.sub("", path.stem).replace("_", " ").replace("-", " ")
        out.append(real_speech.Prompt("kde_ktuberling_en", "en-us", path.name, word, path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="build/speech")
    ap.add_argument("--out", default="build/lipsync/real")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ps = prompts(Path(a.cache))
    t0 = time.time()
    for spk in sorted({p.speaker for p in ps}):
        sel = [p for p in ps if p.speaker == spk]
        audio = real_speech.load_many([p.path for p in sel])
        with Pool(a.workers, initializer=_init_worker, initargs=(0,)) as pool:
            items = pool.map(_label, list(zip(sel, audio)), chunksize=8)
        if not any(items):
            print(f"{spk}: 0/{len(sel)} aligned", flush=True)
            continue
        n, secs = write_labelled(out, spk, items)
        print(f"{spk}: {n}/{len(sel)} items aligned, {secs / 60:.1f} min ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
