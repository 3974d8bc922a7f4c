"""Live inputs: threads that push speech into a session's SpeechBuffer.

Files are decoded in order (optionally looped) and pushed as fast as the buffer has room, so
they play at the stream's pace; stdin is raw s16le 16 kHz mono or a WAV (a TTS can pipe into
it, see stdin_pcm). A full buffer makes a pushing thread wait: backpressure, never memory growth.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dhlive_cli.audio_probe import probe
from dhlive_cli.errors import DhliveError, InputError
from dhlive_cli.live import SpeechBuffer
from dhlive_cli.sources import FileAudioSource

log = logging.getLogger(__name__)

CHUNK = 3200  # 200 ms


class FileFeeder:
    def __init__(self, paths: list[Path], speech: SpeechBuffer, cancel: threading.Event, loop: bool = False,
                 formats: str | None = None, identities: dict | None = None):
        """formats: the only demuxers ffmpeg may use for these files (see audio_probe.probe); None: any.
        identities: {path: (st_dev, st_ino)} of files checked earlier (an API client's inputs, see
        Grants.media_identity): each is then opened O_NOFOLLOW when played, and decoded through
        that descriptor only if it is still the same file; one that changed is skipped with one
        log line, so a link swapped in later cannot make the session read outside the grant."""
        self.identities = identities
        for p in paths:
            self._probe(p, formats)  # bad files fail at start, not an hour in
        self.paths, self.speech, self.cancel, self.loop = paths, speech, cancel, loop
        self.formats = formats
        self.done = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="dhlive-in-files", daemon=True)

    def _open_checked(self, p) -> int | None:
        """The file at p, opened read-only, if it is still the one checked; None (logged) if not."""
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            fd = None
        if fd is not None:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == self.identities.get(str(p)):
                return fd
            os.close(fd)
        log.warning("input %s: no longer the file that was checked: skipped", Path(p).name)
        return None

    def _probe(self, p, formats) -> None:
        if self.identities is None:
            probe(p, formats)
            return
        fd = self._open_checked(p)
        if fd is None:
            raise InputError(f"input {Path(p).name!r}: changed while being checked")
        try:
            probe(f"/dev/fd/{fd}", formats, keep_fds=(fd,))
        finally:
            os.close(fd)

    def start(self) -> "FileFeeder":
        self.thread.start()
        return self

    def _run(self) -> None:
        buf = np.zeros(CHUNK, dtype=np.float32)
        try:
            while not self.cancel.is_set():
                for p in self.paths:
                    fd = None
                    if self.identities is not None:
                        fd = self._open_checked(p)
                        if fd is None:
                            continue
                    try:
                        src = (FileAudioSource(p, self.formats) if fd is None
                               else FileAudioSource(f"/dev/fd/{fd}", self.formats, keep_fds=(fd,)))
                        with src:
                            while not self.cancel.is_set():
                                n = src.read_into(buf)
                                if n == 0:
                                    break
                                self.speech.push(buf[:n], block=True, cancel=self.cancel)
                    finally:
                        if fd is not None:
                            os.close(fd)
                if not self.loop:
                    break
        except DhliveError as e:
            self.error = str(e)
            log.error("input: %s", e)
        finally:
            self.done.set()


class PcmFeeder:
    """Speech from a byte stream (stdin): raw s16le 16 kHz mono, or WAV (stdin_pcm.PcmStream)."""

    def __init__(self, stream: BinaryIO, speech: SpeechBuffer, cancel: threading.Event):
        self.stream, self.speech, self.cancel = stream, speech, cancel
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dhlive-in-stdin", daemon=True)

    def start(self) -> "PcmFeeder":
        self.thread.start()
        return self

    def _run(self) -> None:
        from dhlive_cli.stdin_pcm import PcmStream

        raw = bytearray(CHUNK * 2)
        pcm = PcmStream()
        try:
            while not self.cancel.is_set():
                n = self.stream.readinto(raw)
                if not n:
                    break
                x = pcm.feed(memoryview(raw)[:n])
                if x.size:
                    self.speech.push(x, block=True, cancel=self.cancel)
            x = pcm.finish()
            if x.size and not self.cancel.is_set():
                self.speech.push(x, block=True, cancel=self.cancel)
        except (OSError, ValueError) as e:
            log.error("stdin input: %s", e)
        finally:
            self.done.set()


class MicFeeder:
    """A microphone through PortAudio (sounddevice). Its clock is the sound card's, not ours, so
    anything queued beyond `max_latency_s` is dropped oldest-first instead of building up delay."""

    def __init__(self, device: str | None, speech: SpeechBuffer, cancel: threading.Event, max_latency_s: float = 0.25):
        from dhlive_cli.errors import DependencyError, InputError

        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:
            raise DependencyError(f"microphone input needs sounddevice and PortAudio (libportaudio2): {e}") from e
        devices = sd.query_devices()
        inputs = [d for d in devices if d["max_input_channels"] > 0]
        if not inputs:
            raise InputError("no audio input device found (is a microphone connected and an audio server running?)")
        dev = None
        if device:
            dev = int(device) if device.isdigit() else device
            try:
                sd.query_devices(dev, "input")
            except (ValueError, sd.PortAudioError) as e:
                names = ", ".join(d["name"] for d in inputs)
                raise InputError(f"mic:{device}: no such input device (have: {names})") from e
        self.speech, self.cancel = speech, cancel
        self.keep = int(max_latency_s * 16000)
        self.trimmed = 0
        self.overflows = 0
        self.done = threading.Event()
        self._sd = sd
        self._stream = sd.InputStream(device=dev, samplerate=16000, channels=1, dtype="float32", blocksize=640,
                                      callback=self._on_audio)

    def _on_audio(self, indata, frames, time_info, status) -> None:
        # PortAudio's thread: never block here
        if status.input_overflow:
            self.overflows += 1
        if not self.speech.push(indata[:, 0], block=False):
            self.overflows += 1
        self.trimmed += self.speech.trim_to(self.keep)

    def start(self) -> "MicFeeder":
        self._stream.start()
        return self

    def stop(self) -> None:
        try:
            # abort, not stop: stop() waits for PortAudio's buffers to drain, which never happens
            # when the source has gone quiet (a closed virtual mic), and shutdown must be quick
            self._stream.abort()
            self._stream.close()
        finally:
            self.done.set()
