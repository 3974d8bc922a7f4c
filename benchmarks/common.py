"""Helpers shared by the benchmark scripts: test audio, process-tree memory sampling, medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "presets" / "samples" / "hello.flac"


def speech_file(path: Path, seconds: float) -> Path:
    """The bundled sample repeated with 1 s pauses up to `seconds`, written block by block."""
    if path.exists() and abs(sf.info(path).duration - seconds) < 0.01:
        return path
    voice, sr = sf.read(SAMPLE, dtype="float32")
    if sr != 16000:
        idx = np.linspace(0, len(voice) - 1, int(len(voice) * 16000 / sr))
        voice = np.interp(idx, np.arange(len(voice)), voice).astype(np.float32)
    unit = np.concatenate([voice, np.zeros(16000, np.float32)])
    total = int(seconds * 16000)
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as f:
        written = 0
        while written < total:
            chunk = unit[: total - written]
            f.write(chunk)
            written += len(chunk)
    return path


class TreeSampler:
    """Samples RSS of a process and of its children (the ffmpeg encoder) every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every = pid, every
        self.peak_main = 0
        self.peak_children = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                p = psutil.Process(self.pid)
                main = p.memory_info().rss
                kids = sum(c.memory_info().rss for c in p.children(recursive=True))
            except psutil.Error:
                break
            self.peak_main = max(self.peak_main, main)
            self.peak_children = max(self.peak_children, kids)
            self.samples.append((time.monotonic() - t0, main))
            self._stop.wait(self.every)


# as installed: bytecode written once (pip compiles at install) and read on every start; with
# PYTHONDONTWRITEBYTECODE set, a checkout's modules are compiled again by every process
INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_render(args: list[str]) -> tuple[dict, TreeSampler, float]:
    import json
    import sys

    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", *args, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=INSTALLED_ENV)
    with TreeSampler(p.pid) as s:
        out, err = p.communicate()
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"render failed: {err.decode()[-500:]}")
    return json.loads(out), s, wall


def median(xs):
    return statistics.median(xs)
