"""Is a video whole? A presenter's clip before `dhlive avatar prepare` uses it, and an avatar's
frames.mp4 when a video avatar is loaded.

A file cut short (a copy or download that stopped, a recording whose writer died) still opens,
and its first seconds decode: without these checks a cut clip made an avatar of the frames that
happened to arrive, and a cut frames.mp4 looped the few frames left. The evidence is ffmpeg's
own: the error lines its demuxer and decoder print (`-v error`: "partial file", "File ended
prematurely", a slice that cannot be decoded), the frames it reads against the frame count the
stream's header gives (ffprobe's nb_frames: an AVI cut between two chunks reads cleanly, only
short). An avatar's own frames.mp4 (written by FrameEncoder: MP4, index first) is checked at
every load by its box structure instead, which costs well under a millisecond where an ffmpeg child
costs ~0.1 s: a cut file's last box (the media data) claims more bytes than the file holds, and
the index's sample count must be the frame count avatar.toml gives; a loop video that is not an
MP4 has its last frame decoded by ffmpeg instead.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

from dhlive_cli.errors import InputError
from dhlive_cli.ffmpeg_bin import ffmpeg_path, ffprobe_path, file_arg

# "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c0a8] " in front of a library's log line
_CONTEXT = re.compile(r"^\[[^\]]*@ 0x[0-9a-fA-F]+\]\s*")
_CUT = re.compile(r"partial file|ended prematurely|truncat|end of file", re.IGNORECASE)


def _ffmpeg(path: Path, *args: str, before: tuple[str, ...] = ()) -> tuple[int, list[str], int]:
    """Run ffmpeg on path's first video stream to the null muxer: (exit code, its error lines
    without the library prefix, frames it passed on)."""
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1",
           *before, "-i", file_arg(path), "-map", "0:v:0", *args, "-f", "null", "-"]
    p = subprocess.run(cmd, capture_output=True)
    errors = [_CONTEXT.sub("", ln).strip() for ln in p.stderr.decode("utf-8", "replace").splitlines()]
    frames = 0
    for ln in p.stdout.decode("ascii", "replace").splitlines():
        if ln.startswith("frame="):
            try:
                frames = int(ln[6:])
            except ValueError:
                pass
    return p.returncode, [e.rstrip(".") for e in errors if e], frames


def _telling(errors: list[str]) -> str:
    """The line that says most: the demuxer's word that the file ends early, else the first."""
    for e in errors:
        if _CUT.search(e):
            return f"ffmpeg: {e}"
    return f"ffmpeg: {errors[0]}"


def header_frames(path: Path) -> int | None:
    """The first video stream's frame count as its container's header gives it (nb_frames), or
    None: the container has none (Matroska, WebM, an image) or ffprobe is not installed."""
    probe = ffprobe_path()
    if probe is None:
        return None
    p = subprocess.run([probe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=nb_frames",
                        "-of", "default=noprint_wrappers=1:nokey=1", file_arg(path)], capture_output=True)
    first = p.stdout.decode("ascii", "replace").split()
    try:
        n = int(first[0]) if p.returncode == 0 and first else 0
    except ValueError:
        return None
    return n if n > 0 else None


def stream_kinds(path: Path) -> set[str] | None:
    """The kinds of stream ffprobe finds in path ({"audio"}, {"audio", "video"}, ...); None where
    there is no ffprobe or it cannot read the file. Used to word why a file does not open."""
    probe = ffprobe_path()
    if probe is None:
        return None
    try:
        r = subprocess.run([probe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                            file_arg(path)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    kinds = {line.strip() for line in r.stdout.splitlines() if line.strip()}
    return kinds if r.returncode == 0 and kinds else None


def source_damage(path: Path, seconds: float) -> str | None:
    """Why the video at path cannot be read whole, in ffmpeg's words, or None when it can.

    Two passes over the first video stream: every packet to the end of the file, copied without
    decoding (the demuxer's errors, and the packet count against the header's nb_frames, with a
    tolerance of 2 % or 2 frames for edit lists and dropped-frame markers); then the first
    `seconds` (what prepare uses) decoded, so a picture that cannot be decoded is caught too.
    Costs a read of the file plus a decode of `seconds` (about 0.8 s of CPU for 10 s of 1080p).
    """
    rc, errors, packets = _ffmpeg(path, "-c", "copy")
    if errors:
        return _telling(errors)
    if rc != 0:
        return f"ffmpeg stopped with exit code {rc} reading it"
    nb = header_frames(path)
    if nb is not None and packets < nb - max(2, nb // 50):
        return f"its header gives {nb} frames, ffmpeg found {packets}"
    rc, errors, _ = _ffmpeg(path, "-t", f"{seconds:.3f}", before=("-xerror",))
    if errors:
        return _telling(errors)
    if rc != 0:
        return f"ffmpeg stopped with exit code {rc} decoding it"
    return None


def check_source(path: Path, seconds: float) -> None:
    """InputError "<path>: the video is damaged or cut short (<why>)" unless source_damage finds
    nothing."""
    why = source_damage(path, seconds)
    if why:
        raise InputError(f"{path}: the video is damaged or cut short ({why})")


def cut_before_its_index(path: Path) -> str | None:
    """For a file that does not open: an MP4/MOV (ftyp box first) whose moov box ffmpeg cannot
    find was cut before its index (written last unless +faststart) -> the reason; else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head[4:8] != b"ftyp":
        return None
    _, errors, _ = _ffmpeg(path, "-c", "copy")
    for e in errors:
        if "moov atom not found" in e:
            return f"ffmpeg: {e}: an MP4 whose index, written at its end, is missing"
    return None


def check_loop_video(path: Path, count: int, fps: float, width: int, height: int) -> None:
    """An avatar's loop video that is not an MP4, at load: its last frame (count - 1, by
    avatar.toml; fps: the loop's frame rate) must decode to a width x height picture with no
    error. A file cut short loses its end first, and one holding fewer frames than the manifest
    says has no such frame. One ffmpeg child that seeks to the last keyframe and decodes at most
    one GOP (~0.2 s for a 1080p loop). InputError names the file and says to prepare again."""
    # half a frame before the last frame's time: a seek to its exact time, rounded to 6 digits,
    # may land just after it and find nothing
    t = max(0.0, (count - 1.5) / fps)
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{t:.6f}", "-i", file_arg(path),
           "-map", "0:v:0", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    p = subprocess.run(cmd, capture_output=True)
    errors = [_CONTEXT.sub("", ln).strip().rstrip(".") for ln in p.stderr.decode("utf-8", "replace").splitlines()
              if ln.strip()]
    why = None
    if errors:
        why = _telling(errors)
    elif p.returncode != 0:
        why = f"ffmpeg exit code {p.returncode}"
    elif len(p.stdout) != width * height * 3:
        why = (f"frame {count - 1} of the {count} in avatar.toml is missing" if not p.stdout else
               f"its frames are not {width}x{height} as avatar.toml says")
    if why:
        raise InputError(f"{path}: the avatar video is damaged or cut short ({why}): "
                         f"run `dhlive avatar prepare` again to rebuild the avatar")


class _Cut(Exception):
    """A box that runs past the end of the file or of the box holding it."""


def _walk(buf: bytes, start: int, end: int):
    """Yield (type, payload start, box end) for the boxes in buf[start:end] (ISO/IEC 14496-12
    section 4.2: 32-bit size and 4-byte type, size 1 = a 64-bit size follows, 0 = to the end)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise _Cut(kind)
            size, head = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise _Cut(kind)
        yield kind, pos + head, pos + size
        pos += size
    if pos != end:
        raise _Cut(b"")


def _video_samples(moov: bytes) -> int | None:
    """Sample count of the first video track (trak/mdia with an hdlr of type vide, its stsz)."""
    for kind, a, b in _walk(moov, 0, len(moov)):
        if kind != b"trak":
            continue
        for kind2, a2, b2 in _walk(moov, a, b):
            if kind2 != b"mdia":
                continue
            inner = {k: (x, y) for k, x, y in _walk(moov, a2, b2)}
            hdlr = inner.get(b"hdlr")
            if hdlr is None or moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide" or b"minf" not in inner:
                continue
            minf = {k: (x, y) for k, x, y in _walk(moov, *inner[b"minf"])}
            if b"stbl" not in minf:
                return None
            stbl = {k: (x, y) for k, x, y in _walk(moov, *minf[b"stbl"])}
            box = stbl.get(b"stsz") or stbl.get(b"stz2")
            if box is None or box[1] - box[0] < 12:
                return None
            return struct.unpack_from(">I", moov, box[0] + 8)[0]
    return None


def mp4_damage(path: Path, count: int) -> str | None:
    """Why the MP4 at path is not a whole `count`-frame video, from its box structure alone:
    a top-level box (the media data, or the index) that claims more bytes than the file holds, no
    index (moov), or an index whose first video track holds another number of frames. None when
    whole. Raises ValueError when the file is not an MP4/MOV at all (no ftyp box first)."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        head = f.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            raise ValueError(f"{path}: not an MP4")
        pos, moov = 0, None
        while pos < size:
            f.seek(pos)
            h = f.read(16)
            if len(h) < 8:
                return f"the file ends inside the header of a box at byte {pos}"
            n, kind = struct.unpack_from(">I4s", h)
            if n == 1:
                n = struct.unpack_from(">Q", h, 8)[0] if len(h) == 16 else 0
            elif n == 0:
                n = size - pos
            if n < 8 or pos + n > size:
                what = kind.decode("latin-1")
                return f"its {what} box at byte {pos} claims {n} bytes, the file holds {size - pos} more"
            if kind == b"moov":
                if n > 64 << 20:
                    return f"its index (moov box) claims {n} bytes"
                f.seek(pos)
                moov = f.read(n)[8:]
            pos += n
    if moov is None:
        return "it has no index (moov box)"
    try:
        samples = _video_samples(moov)
    except _Cut:
        return "its index (moov box) is damaged"
    if samples is None:
        return "its index lists no video track"
    if samples != count:
        return f"it holds {samples} frames, avatar.toml says {count}"
    return None


def check_avatar_video(path: Path, count: int, fps: float, width: int, height: int) -> None:
    """Load-time check of an avatar's loop video: mp4_damage (well under 1 ms) for an MP4, the
    last-frame decode of check_loop_video (~0.1 s) for anything else. InputError as there."""
    try:
        why = mp4_damage(path, count)
    except ValueError:
        check_loop_video(path, count, fps, width, height)
        return
    except OSError as e:
        why = f"cannot read it: {e.strerror or e}"
    if why:
        raise InputError(f"{path}: the avatar video is damaged or cut short ({why}): "
                         f"run `dhlive avatar prepare` again to rebuild the avatar")
