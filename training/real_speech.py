"""Real human speech for training and validation: Debian's Asterisk voice prompts with transcripts.

    python -m training.real_speech --cache build/speech      (fetch + list what was found)

At data-generation time the packages are fetched with `apt-get download` and unpacked with
`dpkg -x` into the cache (git-ignored); no audio is shipped. Each speaker is one package:

| speaker | language | package (format) | licence | use |
| --- | --- | --- | --- | --- |
| fr_CA_f_June | fr (Canada), female | asterisk-core-sounds-fr-g722 (G.722, 16 kHz) | CC-BY-SA 3.0 (Digium) | dev |
| it_IT_m_Carlo | it, male | asterisk-core-sounds-it-g722 (G.722, 16 kHz) | CC-BY-SA 3.0 (Digium) | dev |
| ru_RU_f_IvrvoiceRU | ru, female | asterisk-core-sounds-ru-g722 (G.722, 16 kHz) | CC-BY-SA 3.0 (Digium) | dev |
| it_IT_f_Menardi | it, female | asterisk-prompt-it-menardi-wav (PCM, 8 kHz) | CC-BY-SA 3.0 IT (M. Menardi, P. Dal Zot) | train |
| fr_f_Armelle | fr (France), female | asterisk-prompt-fr-armelle (GSM, 8 kHz) | GPL-2+ (Armelle Desjardins) | train |

Transcripts: `/usr/share/doc/asterisk-core-sounds-<lang>/core-sounds-<lang>.txt.gz` of the plain
`asterisk-core-sounds-<lang>` package, lines `name: text`. Text in parentheses or brackets
(translator notes, the English original) is dropped, and so are prompts whose text is empty or
only punctuation. The three core-sounds speakers have exactly these transcripts and are the
real-speech dev set (never trained on). Menardi and Armelle recorded the same prompt names with
their own wording, so their transcript is only close: the aligner drops the prompts it cannot fit,
and what remains is training data (label noise hurts training, not the dev figures).

The English and Spanish core sounds (`asterisk-core-sounds-en*`, `-es*`) are one speaker kept for
an independent evaluation: this module refuses them.
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16000

# speaker -> (language for eSpeak NG, audio package, transcript package, folder, file extension)
SPEAKERS: dict[str, tuple[str, str, str, str, str]] = {
    "fr_CA_f_June": ("fr", "asterisk-core-sounds-fr-g722", "asterisk-core-sounds-fr", "fr_CA_f_June", "g722"),
    "it_IT_m_Carlo": ("it", "asterisk-core-sounds-it-g722", "asterisk-core-sounds-it", "it_IT_m_Carlo", "g722"),
    "ru_RU_f_IvrvoiceRU": ("ru", "asterisk-core-sounds-ru-g722", "asterisk-core-sounds-ru", "ru_RU_f_IvrvoiceRU", "g722"),
    "it_IT_f_Menardi": ("it", "asterisk-prompt-it-menardi-wav", "asterisk-core-sounds-it", "it_IT_f_Menardi", "wav"),
    "fr_f_Armelle": ("fr", "asterisk-prompt-fr-armelle", "asterisk-core-sounds-fr", "fr", "gsm"),
}
DEV_SPEAKERS = ("fr_CA_f_June", "it_IT_m_Carlo", "ru_RU_f_IvrvoiceRU")
TRAIN_SPEAKERS = ("it_IT_f_Menardi", "fr_f_Armelle")
_RESERVED = re.compile(r"^asterisk-core-sounds-(en|es)")


@dataclass
class Prompt:
    speaker: str
    lang: str
    name: str
    text: str
    path: Path


def fetch(cache: Path, packages: list[str]) -> Path:
    """apt-get download + dpkg -x every package into cache/root (skips ones already unpacked)."""
    debs = cache / "debs"
    root = cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        if _RESERVED.match(pkg):
            raise ValueError(f"{pkg} is reserved for independent evaluation and must not be used")
        stamp = root / f".{pkg}.unpacked"
        if stamp.exists():
            continue
        if not list(debs.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True, capture_output=True)
        (deb,) = debs.glob(f"{pkg}_*.deb")
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        stamp.touch()
    return root


def clean_text(text: str) -> str:
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)
    text = text.replace("\ufeff", "").replace("...", " ").replace("…", " ")
    return re.sub(r"\s+", " ", text).strip(" -")


def transcripts(root: Path, pkg: str, lang: str) -> dict[str, str]:
    path = root / "usr/share/doc" / pkg / f"core-sounds-{lang}.txt.gz"
    out = {}
    with gzip.open(path, "rt", encoding="utf-8-sig") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            text = clean_text(text)
            if re.search(r"\w", text):
                out[name.strip()] = text
    return out


def prompts(cache: Path, speakers: list[str] | None = None) -> list[Prompt]:
    """All transcribed prompts of the given speakers (default all), sorted by speaker and name."""
    speakers = speakers or list(SPEAKERS)
    pkgs = sorted({p for s in speakers for p in SPEAKERS[s][1:3]})
    root = fetch(cache, pkgs)
    out = []
    for spk in speakers:
        lang, _audio_pkg, text_pkg, folder, ext = SPEAKERS[spk]
        texts = transcripts(root, text_pkg, lang)
        base = root / "usr/share/asterisk/sounds" / folder
        for name, text in sorted(texts.items()):
            path = base / f"{name}.{ext}"
            if path.is_file():
                out.append(Prompt(spk, lang, name, text, path))
    return out


def load_audio(path: Path) -> np.ndarray:
    """Decode one prompt to 16 kHz mono float32 in [-1, 1] with ffmpeg (8 kHz ones are upsampled)."""
    res = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SR), "pipe:1"],
                         capture_output=True, check=True)
    return np.frombuffer(res.stdout, np.float32).copy()


MUSIC_PACKAGE = "asterisk-moh-opsound-g722"  # 5 instrumental tracks, CC-BY-SA 3.0, G.722 16 kHz


def music(cache: Path) -> list[np.ndarray]:
    """The recorded instrumental tracks (music on hold) as 16 kHz float32 arrays."""
    root = fetch(cache, [MUSIC_PACKAGE])
    return [load_audio(p) for p in sorted((root / "usr/share/asterisk/moh").glob("*.g722"))]


def load_many(paths: list[Path], batch: int = 64) -> list[np.ndarray]:
    """Decode many prompts (16 kHz mono float32 each) with one ffmpeg run per `batch` files.

    One ffmpeg process per prompt costs more CPU than the decoding itself; one process with many
    inputs, each mapped to its own raw output, decodes every file with a fresh decoder.
    """
    import tempfile

    out: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for s0 in range(0, len(paths), batch):
            chunk = paths[s0 : s0 + batch]
            cmd = ["ffmpeg", "-v", "error"]
            for p in chunk:
                cmd += ["-i", str(p)]
            for i in range(len(chunk)):
                cmd += ["-map", f"{i}:a", "-f", "f32le", "-ac", "1", "-ar", str(SR), f"{tmp}/{i}.f32"]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                out += [np.fromfile(f"{tmp}/{i}.f32", np.float32) for i in range(len(chunk))]
                continue
            for p in chunk:  # a file ffmpeg cannot read: decode one by one, that one comes back empty
                try:
                    out.append(load_audio(p))
                except subprocess.CalledProcessError:
                    out.append(np.zeros(0, np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="build/speech")
    a = ap.parse_args()
    ps = prompts(Path(a.cache))
    for spk in SPEAKERS:
        sel = [p for p in ps if p.speaker == spk]
        print(f"{spk}: {len(sel)} transcribed prompts")


if __name__ == "__main__":
    main()
