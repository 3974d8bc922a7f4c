"""Audio sources: decode anything ffmpeg reads to 16 kHz mono float32, streamed in chunks.

A 10-hour file is never loaded whole: an ffmpeg child writes f32le to a pipe and the engine
reads fixed-size chunks into its own preallocated buffers.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from dhlive_cli.audio_probe import AudioInfo, _restrict, probe
from dhlive_cli.errors import DependencyError, EngineError, InputError
from dhlive_cli.ffmpeg_bin import StderrTail, ffmpeg_path, file_arg
from dhlive_cli.interrupts import interrupts_held
from dhlive_cli.program_audio import (
    PROGRAM_FILTER,
    PROGRAM_RATES,
    STALL_S,
    ProgramReader,
    wait_readable,
)
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def is_null_device(fd: int) -> bool:
    """Descriptor fd is /dev/null (standard input of a service or a cron job started without
    any input); False when it is closed or anything else."""
    try:
        st = os.fstat(fd)
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(os.devnull).st_rdev
    except OSError:
        return False


def _stdin_is_a_whole_file() -> bool:
    """Standard input is a regular file read from its start (`< speech.wav`), not a pipe, and
    one we may open again by its /proc name (the shell may have opened a file for us that we
    have no permission to open: then it is read once, as a pipe is)."""
    try:
        if not (stat.S_ISREG(os.fstat(0).st_mode) and os.lseek(0, 0, os.SEEK_CUR) == 0):
            return False
        os.close(os.open("/proc/self/fd/0", os.O_RDONLY | os.O_CLOEXEC))
        return True
    except OSError:
        return False


def _grow_pipe(fd: int) -> None:
    """1 MB pipe buffer (Linux's default limit for users): slack between the decoder's outputs."""
    import fcntl

    try:
        fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ
    except OSError:  # pragma: no cover - not Linux, or over /proc/sys/fs/pipe-max-size
        pass


# Downmix cancellation: a stereo file with one channel phase-inverted (a common wiring fault)
# averages to silence. When the mono mix holds less than CANCEL_RATIO of the stronger channel's
# energy (-20 dB; uncorrelated channels give -3 dB, identical ones 0 dB) once at least
# CANCEL_MIN_ENERGY has been seen (50 ms of a -40 dBFS channel), the stronger channel is played
# instead of the mix for the rest of the stream, with one warning.
CANCEL_RATIO = 0.01
CANCEL_MIN_ENERGY = 800 * 1e-4


class FileAudioSource:
    """Reads a file as 16 kHz mono float32 through an ffmpeg child, a chunk at a time.

    read_into(buf) fills buf from the stream and returns the number of samples written; 0 means
    end of stream. A decode failure raises InputError with ffmpeg's own reason.

    A stereo stream comes from ffmpeg as its two channels and is mixed to mono here: their
    average, or, when the two cancel (see CANCEL_RATIO), the stronger channel alone
    (`fallback_channel` says which: 0 left, 1 right, None while the average is used). Other
    layouts are mixed to mono by ffmpeg (mono as is, surround by its own matrix).
    """

    STDIN = "-"  # the path that means: read the stream from this process's standard input

    def __init__(self, path: str | os.PathLike, formats: str | None = None, keep_fds: tuple[int, ...] = (),
                 program: str | None = None, program_buffer_s: float = 4.0):
        """program: None (analysis only), "same" (the program audio is the 16 kHz mono analysis
        stream itself) or "source" (the input's own rate and channels, see program_audio).
        program_buffer_s: seconds of program audio buffered between the two decoder outputs
        (the engine holds its look-ahead there). Raises InputError for a bad file (probed here)."""
        if program not in (None, "same", "source"):
            raise ValueError(f"program must be None, 'same' or 'source', not {program!r}")
        self.program_mode = program
        self.program: ProgramReader | None = None
        self._program_buffer_s = program_buffer_s
        self.from_stdin = str(path) == self.STDIN
        if self.from_stdin and _stdin_is_a_terminal():
            # nobody types audio: the command waited there for ever without a word
            raise InputError("-: standard input is a terminal; pipe the audio in (my_tts | dhlive ... -) "
                             "or redirect a file (< speech.wav)")
        if self.from_stdin and is_null_device(0):
            # ffmpeg's "pipe:0: Invalid data found when processing input" did not say why
            # (a process started with stdin closed has /dev/null there too: entry; Python then
            # leaves sys.stdin None)
            what = "closed" if sys.stdin is None else "/dev/null"
            raise InputError(f"-: standard input is {what}, there is nothing to read; pipe the audio in "
                             "(my_tts | dhlive ... -) or redirect a file (< speech.wav)")
        self.keep_fds = keep_fds  # our descriptors the decoder inherits (path `/dev/fd/N`)
        self._stdin_copy: int | None = None
        self._name = path  # what the decoder opens (self.path is what messages call it)
        if self.from_stdin and _stdin_is_a_whole_file():
            # `< speech.wav`: a file, probed and decoded as one through a copy of the descriptor
            # (a new read from its start: the stream's layout is known before decoding, so an
            # FL+FC pair decodes as it does from a name, and its length gives progress a total)
            self._stdin_copy = os.dup(0)
            self.keep_fds = keep_fds + (self._stdin_copy,)
            self._name = f"/dev/fd/{self._stdin_copy}"
            self.from_stdin = False
            try:
                self.info = replace(probe(self._name, formats, self.keep_fds), path=Path("stdin"))
            except InputError as e:
                self._close_stdin_copy()
                raise InputError(str(e).replace(self._name, "stdin", 1)) from None
        else:
            # stdin read once only (a pipe): no probe; the stream's layout comes from a WAV header
            # that the decoder writes in front of the samples (see _read_layout)
            self.info = AudioInfo(Path("stdin"), None, None) if self.from_stdin else probe(path, formats, keep_fds)
        self.path = self.info.path
        self.formats = formats
        self._proc: subprocess.Popen | None = None
        self._stderr: StderrTail | None = None
        self.samples_read = 0
        self._pending = b""
        self._warned = False
        self._channels: int | None = None if self.from_stdin else 2 if self.info.two_channels else 1
        self._stereo = np.zeros(0, dtype=np.float32)  # interleaved L/R scratch, grown to the largest read
        self._energy = np.zeros(3, dtype=np.float64)  # running sums of squares: mix, left, right
        self.fallback_channel: int | None = None

    def open(self) -> "FileAudioSource":
        # rematrix_maxval=1 makes a plain average of the channels: the default -3 dB pan law
        # would play identical L/R 3 dB louder than the original and can clip.
        resample = f"aresample={SAMPLE_RATE}:rematrix_maxval=1.0"
        # two channels labelled other than FL+FR (FL+FC, BL+BR, ...): ffmpeg's resampler refuses
        # to convert such layouts ("Input channel layout ... is not supported"); the pair is
        # relabelled left/right first, which leaves a plain stereo stream as it is
        relabel = "channelmap=map=0|1:channel_layout=stereo," if self.info.one_pair else ""
        # several audio streams: the one probe() described is named for both outputs (each would
        # pick it too, but the channel flags above are that stream's)
        pick = [] if self.info.stream is None else ["-map", f"0:{self.info.stream}"]
        if self.from_stdin:
            # any container ffmpeg recognises on a pipe; mono or stereo out, in a WAV header
            # whose channel count tells which (more channels are mixed down to stereo)
            src = [*_restrict(self.formats), "-i", "pipe:0"]
            out = ["-af", f"{resample},aformat=channel_layouts=mono|stereo", "-ar", str(SAMPLE_RATE),
                   "-c:a", "pcm_f32le", "-bitexact", "-f", "wav", "pipe:1"]
        else:
            src = [*_restrict(self.formats), "-i", file_arg(self._name)]
            out = [*pick, "-af", relabel + resample, "-ac", str(self._channels), "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"]
        prog_args: list[str] = []
        prog_w = None
        if self.program_mode == "source":
            # the second output of the same decode: the input's rate and channels, float32 in WAV
            prog_r, prog_w = os.pipe()
            _grow_pipe(prog_w)
            prog_args = [*pick, "-vn", "-af", relabel + PROGRAM_FILTER, "-c:a", "pcm_f32le", "-bitexact", "-flush_packets", "1",
                         "-f", "wav", f"pipe:{prog_w}"]
            self.program = ProgramReader(prog_r, self._program_buffer_s)
        elif self.program_mode == "same":
            self.program = ProgramReader(-1, self._program_buffer_s)
            self.program.set_format(SAMPLE_RATE, 1)
        cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", *src, "-vn", "-flush_packets", "1", *out,
               *prog_args]
        try:
            # Ctrl+C inside Popen would leave a child that close() cannot see (interrupts)
            with interrupts_held():
                self._proc = subprocess.Popen(
                    cmd, stdin=None if self.from_stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, start_new_session=True,  # Ctrl+C goes to us; we stop the child ourselves
                    pass_fds=self.keep_fds + ((prog_w,) if prog_w is not None else ()), bufsize=0,
                )
        finally:
            if prog_w is not None:
                os.close(prog_w)
        _grow_pipe(self._proc.stdout.fileno())
        self._stderr = StderrTail(self._proc.stderr, "dhlive-decode-err")
        return self

    # ------------------------------------------------------------------ reading both pipes
    def _read_some(self, view: memoryview) -> int:
        """One read of analysis bytes into view (0 at its end). While it waits, program bytes
        that arrive are moved into the program ring, so the decoder never blocks on that pipe."""
        out_fd = self._proc.stdout.fileno()
        prog = self.program
        if prog is None or prog.fd < 0:
            return self._proc.stdout.readinto(view) or 0
        while True:
            want_prog = prog.wants_read()
            ready = wait_readable([out_fd, prog.fd] if want_prog else [out_fd], None if want_prog else STALL_S)
            if not ready:
                raise EngineError(f"{self.path}: decoder stalled (its two outputs are out of step)")
            if prog.fd in ready and want_prog:
                prog.on_readable()
            if out_fd in ready:
                return os.readv(out_fd, [view])

    def program_hint(self) -> tuple[int, int] | None:
        """(rate in Hz, channels) that program_format() will return, known from the input's own
        header before the decoder has started: its rate when AAC has it (PROGRAM_RATES) and its
        layout when mono or stereo, which the program filter keeps as they are. None when the
        header does not tell (stdin, other rates or layouts, a probe without one audio stream):
        then only the decoder's output says."""
        if self.program_mode == "same":
            return SAMPLE_RATE, 1
        info = self.info
        if self.program_mode != "source" or info.rate not in PROGRAM_RATES or info.channels not in (1, 2):
            return None
        return info.rate, info.channels

    def program_format(self) -> tuple[int, int]:
        """(rate in Hz, channels) of the program audio; waits for its header. InputError when
        the decoder ends without one (the input cannot be decoded)."""
        prog = self.program
        if prog is None:
            raise EngineError("no program audio was asked for")
        while not prog.header_done:
            if prog.eof:
                self._finish_check()
                raise InputError(f"{self.path}: no audio stream")
            wait_readable([prog.fd], None)
            prog.on_readable()
        return prog.rate, prog.channels

    def pump_program(self) -> None:
        """After the analysis stream ended: read the program pipe until it ends or the ring is full."""
        prog = self.program
        if prog is None or prog.fd < 0:
            return
        while prog.wants_read():
            wait_readable([prog.fd], None)
            prog.on_readable()
        if prog.eof and not prog.header_done:
            self._finish_check()
            raise InputError(f"{self.path}: no audio stream")

    def _read_exact(self, n: int) -> bytes:
        data = bytearray(n)
        view = memoryview(data)
        got = 0
        while got < n:
            k = self._read_some(view[got:])
            if not k:
                self._finish_check()
                raise InputError(f"{self.path}: no audio stream")
            got += k
        return bytes(data)

    def _read_layout(self) -> None:
        """Read the decoder's WAV header up to its data chunk: 1 or 2 channels of float32."""
        head = self._read_exact(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":  # pragma: no cover - ffmpeg writes what we asked
            raise EngineError(f"{self.path}: the decoder did not write WAV")
        while True:
            cid, clen = struct.unpack("<4sI", self._read_exact(8))
            if cid == b"data":
                return
            body = self._read_exact(clen + (clen & 1))
            if cid == b"fmt ":
                self._channels = struct.unpack("<H", body[2:4])[0]
                if self._channels not in (1, 2):  # pragma: no cover - aformat allows only these
                    raise EngineError(f"{self.path}: decoder gave {self._channels} channels")

    def read_into(self, buf: np.ndarray) -> int:
        """Fill buf (float32, 1-D, 16 kHz mono) as far as the stream allows; 0 at the end."""
        assert self._proc is not None and self._proc.stdout is not None, "open() first"
        if self._channels is None:
            self._read_layout()
        ch = self._channels
        if ch == 2 and self._stereo.shape[0] < 2 * buf.shape[0]:
            self._stereo = np.zeros(2 * buf.shape[0], dtype=np.float32)
        pair = self._stereo[: 2 * buf.shape[0]] if ch == 2 else buf
        view = memoryview(pair).cast("B")
        want = view.nbytes
        got = 0
        while got < want:
            n = self._read_some(view[got:])
            if not n:
                break
            got += n
        if got < want:
            self._finish_check()
        got -= got % (4 * ch)  # a partial trailing frame can only come with a failed decode
        n = got // (4 * ch)
        if n:
            self._sanitize(pair[: ch * n])
            if ch == 2:
                self._downmix(pair[: 2 * n], buf[:n])
        self.samples_read += n
        prog = self.program
        if prog is not None and prog.fd < 0:  # "same": the program is this very stream
            prog.fifo.write(buf[:n])
            if got < want:
                prog.eof = True
        return n

    def _downmix(self, pair: np.ndarray, out: np.ndarray) -> None:
        """Interleaved L/R (2n,) -> out (n,): their average, or the stronger one when they cancel."""
        left, right = pair[0::2], pair[1::2]
        if self.fallback_channel is not None:
            out[:] = right if self.fallback_channel else left
            return
        np.add(left, right, out=out)
        out *= 0.5
        e = self._energy
        e[0] += float(np.dot(out, out))
        e[1] += float(np.dot(left, left))
        e[2] += float(np.dot(right, right))
        strong = max(e[1], e[2])
        if strong >= CANCEL_MIN_ENERGY and e[0] < CANCEL_RATIO * strong:
            self.fallback_channel = int(e[2] > e[1])
            out[:] = right if self.fallback_channel else left
            if self.program is not None:
                self.program.use_channel = self.fallback_channel
            drop = 10 * np.log10(strong / max(e[0], 1e-30))
            log.warning("%s: the two channels cancel out when mixed to mono (the mix is %s dB below the stronger "
                        "channel: one is phase-inverted?); using the %s channel alone", self.path,
                        f"{drop:.0f}" if drop < 60 else "over 60", "right" if self.fallback_channel else "left")

    def _sanitize(self, x: np.ndarray) -> None:
        """Float files may hold NaN, inf or values far past full scale: they would poison the
        features (NaN mouth) and make the AAC encoder fail. Two reductions find them without
        allocating; only a bad chunk is repaired (NaN -> silence, the rest clipped to +-1)."""
        lo, hi = x.min(), x.max()
        if lo >= -1.0 and hi <= 1.0:  # False for NaN too
            return
        np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(x, -1.0, 1.0, out=x)
        if not self._warned:
            self._warned = True
            log.warning("%s: samples outside [-1, 1] or not numbers (NaN/inf): clipped, NaN played as silence",
                        self.path)

    def why_empty(self) -> str:
        """For a decode that ended without one sample: ffmpeg's own last line as " (ffmpeg: ...)",
        or "" when it said nothing. An mp4/m4a with its index (moov) at the end cannot be read
        from a pipe (ffmpeg reports a partial file and exits 0): for stdin that gets a hint."""
        line = self._stderr.last("", wait=2.0) if self._stderr is not None else ""
        line = re.sub(r"^\[[^\]]*\]\s*", "", line)[:200]  # drop ffmpeg's "[demuxer @ 0x...]" prefix
        if not line:
            return ""
        hint = ""
        said = " ".join(self._stderr.lines) if self._stderr is not None else ""
        if self.from_stdin and ("partial file" in said or "moov atom not found" in said):
            hint = ("; an mp4/m4a on a pipe needs its index first: give the file's path, "
                    "or remux it with ffmpeg -movflags +faststart")
        return f" (ffmpeg: {line}{hint})"

    def _finish_check(self) -> None:
        assert self._proc is not None
        rc = self._proc.wait()
        if rc < 0:  # killed (OOM killer, a user's kill): not the file's fault
            raise EngineError(f"{self.path}: decoder ffmpeg was killed by signal {-rc}")
        if rc != 0:
            why = self._stderr.last("", wait=2.0) if self._stderr else f"exit {rc}"
            if not why:
                # ffmpeg names what it cannot read; a binary that fails without a word is not
                # the input's fault (DHLIVE_FFMPEG=/bin/false blamed the speech file)
                env = " (DHLIVE_FFMPEG)" if os.environ.get("DHLIVE_FFMPEG") else ""
                raise DependencyError(f"{ffmpeg_path()}{env} exited with code {rc} and said nothing while "
                                      f"decoding {self.path}: is it a working ffmpeg?")
            if self.from_stdin and "Invalid data found" in why:
                # an empty pipe and one carrying no audio look alike to ffmpeg (and to us: stdin
                # is read once, by the decoder)
                why = ("nothing readable as audio came in (was it empty, or not an audio stream?); "
                       f"ffmpeg: {why.replace('pipe:0: ', '', 1)}")
            elif self.from_stdin and "does not contain any stream" in why:
                why = "no audio stream in what came in"
            raise InputError(f"{self.path}: cannot decode audio: {why}")

    def _close_stdin_copy(self) -> None:
        if self._stdin_copy is not None:
            os.close(self._stdin_copy)
            self._stdin_copy = None

    def close(self) -> None:
        self._close_stdin_copy()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()
        if self.program is not None and self.program.fd >= 0:
            os.close(self.program.fd)
            self.program.fd = -1
            self.program.eof = True
        if self._stderr is not None:
            self._stderr.join()

    def __enter__(self) -> "FileAudioSource":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
