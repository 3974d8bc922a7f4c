"""What an audio input holds, asked before it is decoded: its duration, the stream ffmpeg
decodes by default and that stream's rate and channels (sources.FileAudioSource decodes it).

WAV and FLAC headers are read in-process by libsndfile; anything else, or anything odd, by an
ffmpeg child's description of the input (`ffmpeg -i`), limited to the demuxers a caller names
for files nobody vouches for (API uploads).
"""

from __future__ import annotations

import os
import re
import stat
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dhlive_cli.errors import InputError
from dhlive_cli.ffmpeg_bin import ffmpeg_path, file_arg
from dhlive_cli.timebase import SAMPLE_RATE

# ffmpeg's description of the input, read at the start of its own lines only: a tag's value
# ("title : Stream #0:1: Audio: ...") is printed on a line of its own after the tag's name
_STREAM = r"^[ \t]*Stream #\d+:\d+[^:\n]*: Audio:"
_DURATION_RE = re.compile(r"^[ \t]*Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", re.M)
_AUDIO_STREAM_RE = re.compile(_STREAM, re.M)
# one audio stream's line: its number in the file (#0:N), its rate and its layout ("mono",
# "stereo", "5.1(side)", "2 channels (FL+FC)")
_AUDIO_LINE_RE = re.compile(r"^[ \t]*Stream #\d+:(\d+)[^:\n]*: Audio:([^\n]*)$", re.M)
_RATE_LAYOUT_RE = re.compile(r", (\d+) Hz, ([^,\n]+)")
# channels of ffmpeg's named layouts (libavutil/channel_layout.c); "N channels (...)" says N itself
_NAMED_LAYOUTS = {"mono": 1, "stereo": 2, "downmix": 2, "binaural": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3,
                  "4.0": 4, "quad": 4, "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6,
                  "5.1(side)": 6, "6.0": 6, "6.0(front)": 6, "hexagonal": 6, "3.1.2": 6, "6.1": 7, "6.1(back)": 7,
                  "6.1(front)": 7, "7.0": 7, "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8, "7.1(wide-side)": 8,
                  "7.1(top)": 8, "5.1.2": 8, "octagonal": 8, "cube": 8, "5.1.4": 10, "7.1.2": 10, "7.1.4": 12,
                  "7.2.3": 12, "9.1.4": 14, "hexadecagonal": 16, "22.2": 24}


def _layout_channels(layout: str) -> int:
    """Channels of an ffmpeg layout name; a name not known here counts as 3 (a surround layout:
    more than a pair, which is what matters when ffmpeg's choice of stream is followed)."""
    m = re.match(r"(\d+) channels\b", layout)
    return int(m.group(1)) if m else _NAMED_LAYOUTS.get(layout.strip(), 3)


def _chosen_stream(err: str) -> tuple[int | None, int | None, int | None, int]:
    """Of the audio streams ffmpeg lists in `err` (its `-i` description), the one it decodes by
    default, as fftools picks it (ffmpeg_opt.c: a stream marked default first, then the most
    channels, then the lowest number): (its number in the file, #0:N, its rate in Hz, its
    channels, the number of distinct audio streams). A stream listed twice (an MPEG-TS stream
    in two programs) counts once. Rate and channels are None where its line does not say."""
    streams: dict[int, tuple] = {}
    for m in _AUDIO_LINE_RE.finditer(err):
        n = int(m.group(1))
        if n in streams:
            continue
        rl = _RATE_LAYOUT_RE.search(m.group(2))
        rate, ch = (int(rl.group(1)), _layout_channels(rl.group(2))) if rl else (None, None)
        streams[n] = (rate, ch, "(default)" in m.group(2))
    if not streams:
        return None, None, None, 0
    best = max(sorted(streams), key=lambda n: (streams[n][2], streams[n][1] or 0, -n))
    return best, streams[best][0], streams[best][1], len(streams)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    path: Path
    duration_s: float | None  # from the container; None when it does not say
    estimated_samples: int | None
    two_channels: bool = False  # a stereo stream: mixed to mono here, with a check for cancellation
    # the stream's own rate (Hz) and channels (1 mono, 2 stereo) when the header says so plainly;
    # None otherwise (other layouts, or a probe that does not tell)
    rate: int | None = None
    channels: int | None = None
    # the decoded stream has two channels: the decoder relabels them left/right
    one_pair: bool = False
    # which stream is decoded (its number in the file, -map 0:N), named where the file has several
    # audio streams: the one ffmpeg would pick, whose channels the flags above describe
    stream: int | None = None


MAX_WAV_CHUNKS = 256  # chunks before "data" that a WAV header may have; real files have a handful


def wav_size_unknown(size: int) -> bool:
    """A WAV data-chunk size that only says "to the end": what writers on a pipe put when they
    cannot know the length (0, 0xFFFFFFFF, or just under 2 GiB: espeak-ng --stdout writes
    0x7FFFF000)."""
    return size in (0, 0xFFFFFFFF) or size >= 0x7FFF0000


def _check_wav(path: Path) -> None:
    """RIFF/WAVE sanity: a header whose data chunk claims more bytes than the file has is
    truncated. The walk is bounded: millions of tiny chunks before the data (a denial of
    service, not a recording) are refused after MAX_WAV_CHUNKS."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return  # not a RIFF wav (ffmpeg will judge it)
        size = path.stat().st_size
        pos = 12
        for _ in range(MAX_WAV_CHUNKS):
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                raise InputError(f"{path}: truncated WAV file (no data chunk)")
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                # `espeak-ng --stdout > x.wav` (a size meaning "to the end") was refused as truncated
                if not wav_size_unknown(clen) and pos + 8 + clen > size:
                    have = size - pos - 8
                    raise InputError(f"{path}: truncated WAV file (data chunk says {clen} bytes, file has {have})")
                return
            pos += 8 + clen + (clen & 1)
        raise InputError(f"{path}: WAV header with more than {MAX_WAV_CHUNKS} chunks before the audio data")


def _probe_sndfile(p: Path) -> AudioInfo | None:
    """WAV/FLAC headers read by libsndfile in-process: no ffmpeg child to start (~50 ms of a
    short render's start-up). None for anything else, or anything odd, which ffmpeg then judges."""
    if p.suffix.lower() not in (".wav", ".flac"):
        return None
    try:
        import soundfile
    except (ImportError, OSError):  # pragma: no cover - a dependency, but libsndfile may be missing
        return None
    try:
        info = soundfile.info(str(p))
    except Exception:  # noqa: BLE001 - libsndfile refuses it: let ffmpeg say why, in its words
        return None
    if info.format not in ("WAV", "FLAC") or info.frames <= 0 or not 4000 <= info.samplerate <= 384000:
        return None
    dur = info.frames / info.samplerate
    return AudioInfo(path=p, duration_s=dur, estimated_samples=int(round(dur * SAMPLE_RATE)),
                     two_channels=info.channels == 2, rate=info.samplerate,
                     channels=info.channels if info.channels in (1, 2) else None, one_pair=info.channels == 2)


# demuxers for audio files nobody vouches for (API uploads and API-chosen inputs): plain audio
# containers only. Playlists (hls, concat...) and anything else that opens further files or URLs
# are not among them; ffmpeg then reads only the file itself (-protocol_whitelist file,pipe)
SAFE_AUDIO_DEMUXERS = "wav,w64,flac,mp3,ogg,mov,matroska,aac,aiff,caf,au,amr,wv,ape,tta"


def _restrict(formats: str | None) -> list[str]:
    """ffmpeg input options that limit it to these demuxers and to reading local files/pipes."""
    return ["-protocol_whitelist", "file,pipe", "-format_whitelist", formats] if formats else []


def probe(path: str | os.PathLike, formats: str | None = None, keep_fds: tuple[int, ...] = ()) -> AudioInfo:
    """Check the input is a readable audio file; read its duration. Raises InputError.

    formats: a comma-separated list of the only demuxers ffmpeg may use (untrusted files: no
    playlist or concat demuxer that would open other files), None for any. keep_fds: our open
    descriptors ffmpeg inherits (a path `/dev/fd/N` names a file we already opened)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as e:  # a name too long, a symlink loop, a path through a file
        raise InputError(f"{p}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, not an audio file")
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        # it can be read once only, and the probe would take its start: "empty file" was said
        from dhlive_cli.outpaths import own_descriptor

        if own_descriptor(p) == 0:
            raise InputError(f"{p}: standard input is a pipe here; give - to read it")
        raise InputError(f"{p}: is a pipe, which can be read once only; give - and redirect it (< {p})")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        raise InputError(f"{p}: is a device, not an audio file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied")
    if st.st_size == 0:
        raise InputError(f"{p}: empty file")
    _check_wav(p)
    # trusted inputs only: a file from the API (formats given) is parsed by ffmpeg under its
    # demuxer whitelist, not by a second parser in this process
    quick = _probe_sndfile(p) if formats is None else None
    if quick is not None:
        return quick
    proc = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostdin", *_restrict(formats), "-i", file_arg(p)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, pass_fds=keep_fds,
    )
    err = proc.stderr.decode("utf-8", "replace")
    if not _AUDIO_STREAM_RE.search(err):
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        why = "no audio stream"
        for ln in lines:
            if "Invalid data" in ln or "could not find codec" in ln.lower() or "error" in ln.lower():
                why = "not an audio file ffmpeg can read"
                break
        raise InputError(f"{p}: {why}")
    m = _DURATION_RE.search(err)
    dur = None
    if m:
        h, mi, s = m.groups()
        dur = int(h) * 3600 + int(mi) * 60 + float(s)
    est = int(round(dur * SAMPLE_RATE)) if dur is not None else None
    index, rate, n_ch, n_streams = _chosen_stream(err)
    two = n_ch == 2
    return AudioInfo(path=p, duration_s=dur, estimated_samples=est, two_channels=two, rate=rate,
                     channels=n_ch if n_ch in (1, 2) else None, one_pair=two,
                     stream=index if n_streams > 1 else None)
