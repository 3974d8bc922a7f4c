"""The program audio: the sound that goes into the output file, at the input's own quality.

The mouth model listens to 16 kHz mono; viewers should hear what the input holds. So the decoder
ffmpeg writes two outputs from one decode: the 16 kHz analysis stream on its stdout and the
program stream on a second pipe, float32 in a WAV header that names its rate and channels.

What the program stream keeps (ffmpeg's `aformat` picks it, and it is what AAC can carry):
- the input's sample rate when it is one of AAC's standard rates from 8 to 48 kHz
  (PROGRAM_RATES); any other rate becomes the nearest of them (96 kHz -> 48 kHz,
  37.8 kHz -> 32 kHz): AAC has no other rates, and speech gains nothing above 48 kHz;
- mono as mono, stereo as stereo (left and right untouched, phase included); more channels are
  mixed down to stereo by ffmpeg's matrix at unity gain.

One thread reads both pipes (ProgramReader): waiting for analysis samples it moves whatever
program bytes arrive into a bounded ring (ByteFifo), so neither pipe can fill up and stall the
decoder while the other is read.
"""

from __future__ import annotations

import os
import select
import struct

import numpy as np

from dhlive_cli.errors import EngineError

# AAC's sampling-frequency table (ISO/IEC 14496-3, samplingFrequencyIndex) from 8 to 48 kHz
PROGRAM_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
PROGRAM_FILTER = ("aresample=rematrix_maxval=1.0,aformat=sample_fmts=flt:sample_rates="
                  + "|".join(map(str, PROGRAM_RATES)) + ":channel_layouts=mono|stereo")
STALL_S = 30.0  # program ring full and no analysis bytes for this long: the decoder is stuck


class ByteFifo:
    """A bounded ring of bytes, filled straight from a file descriptor (no per-read allocation)."""

    def __init__(self, capacity: int):
        self._buf = np.zeros(capacity, dtype=np.uint8)
        self._mv = memoryview(self._buf)
        self._r = 0  # total bytes read out
        self._w = 0  # total bytes written in

    @property
    def capacity(self) -> int:
        return self._buf.shape[0]

    def size(self) -> int:
        return self._w - self._r

    def free(self) -> int:
        return self.capacity - self.size()

    def fill_from(self, fd: int) -> int:
        """One read() from fd into the free space; returns bytes read (0: end of file)."""
        cap = self.capacity
        start = self._w % cap
        end = min(cap, start + self.free())
        if end <= start:
            raise EngineError("program audio buffer full")
        n = os.readv(fd, [self._mv[start:end]])
        self._w += n
        return n

    def write(self, data) -> None:
        mv = memoryview(data).cast("B")
        if mv.nbytes > self.free():
            raise EngineError("program audio buffer full")
        cap = self.capacity
        start = self._w % cap
        first = min(mv.nbytes, cap - start)
        self._buf[start : start + first] = mv[:first]
        if first < mv.nbytes:
            self._buf[: mv.nbytes - first] = mv[first:]
        self._w += mv.nbytes

    def read_into(self, out) -> int:
        """Move min(len(out), size()) bytes into the writable buffer out; returns how many."""
        mv = memoryview(out).cast("B")
        n = min(mv.nbytes, self.size())
        cap = self.capacity
        start = self._r % cap
        first = min(n, cap - start)
        mv[:first] = self._mv[start : start + first]
        if first < n:
            mv[first:n] = self._mv[: n - first]
        self._r += n
        return n


def parse_wav_head(head: bytes) -> tuple[int, int, int] | None:
    """(rate, channels, header length) of a float32 WAV stream head, or None if the data chunk
    has not started yet. Raises EngineError for anything but WAV."""
    if len(head) < 12:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise EngineError("the decoder did not write WAV")
    pos, rate, channels = 12, 0, 0
    while pos + 8 <= len(head):
        cid, clen = struct.unpack("<4sI", head[pos : pos + 8])
        if cid == b"data":
            if not rate or not channels:
                raise EngineError("the decoder's WAV header has no format chunk")
            return rate, channels, pos + 8
        if pos + 8 + clen > len(head):
            return None
        if cid == b"fmt ":
            channels, rate = struct.unpack("<HI", head[pos + 10 : pos + 16])
        pos += 8 + clen + (clen & 1)
    return None


class ProgramReader:
    """The program pipe of a decoder: its header, then float32 frames buffered in a ByteFifo.

    rate / channels are known once header_done. pump(...) is called by the thread reading the
    analysis pipe whenever it waits; read(out, n) hands out frames in order."""

    def __init__(self, fd: int, buffer_s: float):
        self.fd = fd
        self.buffer_s = buffer_s
        self.rate = 0
        self.channels = 0
        self.eof = False
        self.fifo: ByteFifo | None = None
        # set when the analysis finds the two channels cancel (a phase-inverted one): from then
        # on both program channels carry this one (0 left, 1 right), as the analysis does, so
        # the file does not fall silent in a mono mix either
        self.use_channel: int | None = None
        self._head = b""

    def set_format(self, rate: int, channels: int) -> None:
        """For a program stream without a header (fd < 0: fed by its owner through fifo.write)."""
        self.rate, self.channels = rate, channels
        self.fifo = ByteFifo(max(4 * channels * int(rate * self.buffer_s), 1 << 16))

    @property
    def header_done(self) -> bool:
        return self.fifo is not None

    def frames(self) -> int:
        """Frames (one sample of every channel) buffered now."""
        return self.fifo.size() // (4 * self.channels) if self.fifo is not None else 0

    def wants_read(self) -> bool:
        return not self.eof and (self.fifo is None or self.fifo.free() > 0)

    def on_readable(self) -> None:
        """Read what the pipe has (one read): header bytes first, then samples into the ring."""
        if self.fifo is None:
            data = os.read(self.fd, 4096)
            if not data:
                self.eof = True
                return
            self._head += data
            got = parse_wav_head(self._head)
            if got is None:
                if len(self._head) > 65536:
                    raise EngineError("the decoder's WAV header is too long")
                return
            rate, channels, hlen = got
            self.set_format(rate, channels)
            self.fifo.write(self._head[hlen:])
            self._head = b""
            return
        if self.fifo.fill_from(self.fd) == 0:
            self.eof = True

    def read(self, out: np.ndarray, n: int) -> int:
        """Up to n frames into out (float32, interleaved, at least n * channels); returns frames.
        NaN becomes silence and values past full scale are clipped to [-1, 1], as the analysis
        stream's are (the AAC encoder refuses NaN and inf)."""
        if self.fifo is None:
            return 0
        k = min(n, self.frames())
        if k:
            x = out[: k * self.channels]
            self.fifo.read_into(x)
            lo, hi = x.min(), x.max()
            if not (lo >= -1.0 and hi <= 1.0):  # NaN, inf or past full scale: the analysis warned
                np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
                np.clip(x, -1.0, 1.0, out=x)
            c = self.use_channel
            if c is not None and self.channels == 2:
                pairs = out[: 2 * k].reshape(k, 2)
                pairs[:, 1 - c] = pairs[:, c]
        return k


def wait_readable(fds: list[int], timeout_s: float | None) -> list[int]:
    """The subset of fds readable now or within timeout_s (None: wait as long as it takes)."""
    if not fds:
        return []
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in p.poll(None if timeout_s is None else int(timeout_s * 1000))]
