"""Live inputs: threads that push speech into a session's SpeechBuffer.

Files are decoded in order (optionally looped) and pushed as fast as the buffer has room, so
they play at the stream's pace; stdin is raw s16le 16 kHz mono (a TTS can pipe into it). A full
buffer makes a pushing thread wait: backpressure, never memory growth.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dhlive_cli.errors import DhliveError
from dhlive_cli.live import SpeechBuffer
from dhlive_cli.sources import FileAudioSource, probe

log = logging.getLogger(__name__)

CHUNK = 3200  # 200 ms


class FileFeeder:
    def __init__(self, paths: list[Path], speech: SpeechBuffer, cancel: threading.Event, loop: bool = False):
        for p in paths:
            probe(p)  # bad files fail at start, not an hour in
        self.paths, self.speech, self.cancel, self.loop = paths, speech, cancel, loop
        self.done = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="dhlive-in-files", daemon=True)

    def start(self) -> "FileFeeder":
        self.thread.start()
        return self

    def _run(self) -> None:
        buf = np.zeros(CHUNK, dtype=np.float32)
        try:
            while not self.cancel.is_set():
                for p in self.paths:
                    with FileAudioSource(p) as src:
                        while not self.cancel.is_set():
                            n = src.read_into(buf)
                            if n == 0:
                                break
                            self.speech.push(buf[:n], block=True, cancel=self.cancel)
                if not self.loop:
                    break
        except DhliveError as e:
            self.error = str(e)
            log.error("input: %s", e)
        finally:
            self.done.set()


class PcmFeeder:
    """Raw s16le 16 kHz mono from a byte stream (stdin)."""

    def __init__(self, stream: BinaryIO, speech: SpeechBuffer, cancel: threading.Event):
        self.stream, self.speech, self.cancel = stream, speech, cancel
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dhlive-in-stdin", daemon=True)

    def start(self) -> "PcmFeeder":
        self.thread.start()
        return self

    def _run(self) -> None:
        raw = bytearray(CHUNK * 2)
        f = np.zeros(CHUNK, dtype=np.float32)
        carry = 0
        try:
            while not self.cancel.is_set():
                n = self.stream.readinto(memoryview(raw)[carry:])
                if not n:
                    break
                n += carry
                whole = n - (n % 2)
                s16 = np.frombuffer(raw, dtype="<i2", count=whole // 2)
                np.multiply(s16, 1.0 / 32768.0, out=f[: whole // 2], casting="unsafe")
                self.speech.push(f[: whole // 2], block=True, cancel=self.cancel)
                carry = n - whole
                if carry:
                    raw[0] = raw[whole]
        except (OSError, ValueError) as e:
            log.error("stdin input: %s", e)
        finally:
            self.done.set()
