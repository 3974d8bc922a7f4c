"""Shared fixtures: tiny inputs generated in a temp dir with real tools (espeak-ng, ffmpeg)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dhlive_cli.timebase import SAMPLE_RATE

ESPEAK = shutil.which("espeak-ng")
FFPROBE = shutil.which("ffprobe")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed (make setup installs it)")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (make setup installs it)")


# The longest test files, longest first (seconds of a whole run in one process on 2 cores,
# 2026-12-01: webrtc ~190, live_targets ~105, monitor ~115, security ~100, multi_session ~85,
# batch ~75, live_hardening ~70, live ~60, avatar_realfaces ~60). `make test` hands whole files
# to two workers in collection order (--no-loadscope-reorder); a long file collected last would
# run alone at the end while the other worker idles. Inside a file the order is kept.
LONG_FILES = ("test_webrtc.py", "test_monitor.py", "test_live_targets.py", "test_security.py",
              "test_multi_session.py", "test_batch.py", "test_live_hardening.py", "test_live.py",
              "test_avatar_realfaces.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


def speak(text: str, path: Path, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech as 16 kHz mono float32 (also written to path as a wav)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run([ESPEAK, "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    a, sr = sf.read(raw, dtype="float32")
    raw.unlink()
    if sr != SAMPLE_RATE:
        n = int(round(len(a) * SAMPLE_RATE / sr))
        a = np.interp(np.linspace(0, len(a) - 1, n), np.arange(len(a)), a).astype(np.float32)
    return a


@pytest.fixture(scope="session")
def speech_10s(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """~10 s: three spoken phrases separated by 1 s of digital silence, as a 16 kHz wav."""
    if ESPEAK is None:
        pytest.skip("espeak-ng not installed")
    d = tmp_path_factory.mktemp("speech")
    parts = []
    for i, text in enumerate(["Hello, my name is Ada and I read the news.",
                              "Papa bought a big blue bag.",
                              "We will be back after the break."]):
        parts.append(speak(text, d / f"p{i}.wav"))
        parts.append(np.zeros(SAMPLE_RATE, dtype=np.float32))
    audio = np.concatenate(parts)
    target = 10 * SAMPLE_RATE
    audio = np.pad(audio, (0, max(0, target - len(audio))))[:target] if len(audio) < target else audio
    path = d / "speech10.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return path, audio


def tone(seconds: float, rate: int = SAMPLE_RATE, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    # a voiced-like buzz with syllable-rate amplitude modulation
    x = 0.3 * np.sign(np.sin(2 * np.pi * freq * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def ignore_sigint() -> None:
    """Popen preexec_fn: the child starts with SIGINT ignored, as a shell script's background job
    (`cmd &`) does; a test that sends SIGINT then checks dhlive stops anyway."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_sigint() -> None:
    """Popen preexec_fn: the child starts with SIGINT at its default, as from a terminal, even
    where the suite itself runs as a background job that inherited it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_raises():
    """Within the test, SIGINT raises KeyboardInterrupt in this process, as in a terminal (a
    background job, as CI may run the suite, starts with SIGINT ignored and Python keeps it so)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def ffprobe_json(path: Path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json",
                          str(path)], capture_output=True, check=True)
    return json.loads(out.stdout)


def dhlive_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("dhlive-") and t.is_alive()]


@pytest.fixture
def serve():
    """Start ApiServers for a test: `srv = serve(sessions, **kw)`; all are stopped after it, and
    none of the API's threads may be left."""
    from dhlive_cli.api import ApiServer

    servers = []

    def start(sessions, **kw):
        srv = ApiServer(sessions, **kw).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("dhlive-api")]


@contextlib.contextmanager
def killed_on_exit(proc: subprocess.Popen):
    """The block's child process, killed and reaped if it is still running when the block ends
    (a failed assertion or a timeout must not leave it behind)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """A photo avatar prepared from scikit-image's astronaut photo (one per test module)."""
    import cv2

    from dhlive_cli.avatar.prepare import PrepareOptions, prepare_avatar
    from tests.test_avatar_photo import astronaut_bgr

    d = tmp_path_factory.mktemp("photo_avatar")
    cv2.imwrite(str(d / "astronaut.png"), astronaut_bgr())
    prepare_avatar(d / "astronaut.png", d / "av", PrepareOptions(preview=False))
    return d / "av"
