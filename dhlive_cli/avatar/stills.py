"""Still photos in: ``read_image`` checks the container first (PNG chunk checksums, a JPEG's
segments up to its end-of-image marker), so a truncated or corrupt file is a one-line InputError
with no library noise on stderr; ``sniff_image`` tells a still photo from anything else (which
prepare hands to ffmpeg as a video) by its first bytes.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from pathlib import Path

import numpy as np

from dhlive_cli.errors import InputError

__all__ = ["IMAGE_MAGIC", "read_image", "sniff_image"]

IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"BM": "bmp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}


def sniff_image(path: Path) -> str | None:
    """The image format of a file from its first bytes, or None when it is not a still image."""
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, kind in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _check_png(data: bytes, name: str) -> None:
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        if zlib.crc32(data[pos + 4 : pos + 8 + length]) != int.from_bytes(data[end - 4 : end], "big"):
            raise InputError(f"{name}: corrupt PNG (bad checksum in a {kind.decode('latin-1')!r} chunk)")
        if kind == b"IEND":
            return
        pos = end
    raise InputError(f"{name}: truncated PNG (the file ends before its last chunk)")


def _jpeg_ends(data: bytes) -> bool:
    """Whether a JPEG's own data reaches its end-of-image marker.

    Walks the segments (ITU T.81, B.1: a marker, then a 2-byte length) and, after each start of
    scan, the entropy-coded data up to the next marker (inside it 0xFF is followed only by 0x00
    stuffing or a restart marker), so bytes that phones append after the image (a Motion
    Photo's video, a maker trailer) do not hide where the image ends, and an end-of-image
    marker inside an embedded thumbnail (in APP1) is not taken for the image's own. Where the
    segment structure is not what T.81 describes, the last 64 bytes must hold the marker.
    """
    n, pos = len(data), 2
    while pos + 1 < n:
        if data[pos] != 0xFF:
            return b"\xff\xd9" in data[-64:]
        m = data[pos + 1]
        if m == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if m == 0xD9:
            return True
        if m == 0x01 or 0xD0 <= m <= 0xD7:  # markers without a length
            pos += 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if m == 0xDA:  # start of scan: skip the entropy-coded data
            while True:
                j = data.find(b"\xff", pos)
                if j < 0 or j + 1 >= n:
                    return False
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    pos = j + 2
                elif nxt == 0xFF:
                    pos = j + 1
                else:
                    pos = j
                    break
    return False


@contextlib.contextmanager
def _quiet_native_stderr():
    """Image codecs print their own complaints on fd 2; the caller reports one line instead."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_image(path: Path, keep_alpha: bool = False) -> np.ndarray:
    """A photo as BGR uint8 (BGRA uint8 when keep_alpha and the file has an alpha channel, 8 or
    16 bits deep; 16-bit samples are scaled to 8 bits), or InputError (missing, truncated,
    corrupt, unsupported)."""
    import cv2

    name = str(path)
    kind = sniff_image(path)
    if kind is None:
        raise InputError(f"{name}: not an image this tool reads (PNG, JPEG, BMP, TIFF, WebP)")
    data = path.read_bytes()
    if kind == "png":
        _check_png(data, name)
    elif kind == "jpeg" and not _jpeg_ends(data):
        raise InputError(f"{name}: truncated JPEG (no end-of-image marker)")
    with _quiet_native_stderr():
        img = None
        if keep_alpha:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if img is not None and img.ndim == 3 and img.shape[2] == 4 and img.dtype == np.uint16:
                # a 16-bit PNG or TIFF with alpha (as image editors export): keep its transparency
                img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
            if img is not None and not (img.ndim == 3 and img.shape[2] == 4 and img.dtype == np.uint8):
                img = None  # no alpha: read it as plain colour below
        if img is None:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise InputError(f"{name}: corrupt {kind.upper()} image (cannot decode it)")
    if min(img.shape[:2]) < 32:
        raise InputError(f"{name}: image is only {img.shape[1]}x{img.shape[0]} pixels")
    return np.ascontiguousarray(img)
