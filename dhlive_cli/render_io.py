"""The two ends of one render: the decoder of its input and the encoder of its output.

    io = RenderIO(input_path, output, width, height, fps, preset=preset, encoder=enc)
    io.start()            # both ffmpeg children start now (the encoder when the input's header
                          # already tells its sound format), while the caller loads the model
                          # and the avatar on this process's own core
    rate, channels = io.open_sink()   # the program audio's format; the encoder is running
    ... write frames ...
    io.finish()           # the encoder ends the file; the partial file becomes the output
    io.abort()            # or: both children killed, the partial file removed

An ffmpeg child takes 0.07-0.1 s to start (loading its libraries) and the decoder as long again
before its first output; started only once the model and the avatar were loaded, both waits
added to every render's start-up. Everything the command line can get wrong (the input's
format, the output's path and type) is checked in the constructor, before anything starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dhlive_cli.errors import EngineError, InputError, OutputError
from dhlive_cli.ffmpeg_bin import file_arg
from dhlive_cli.interrupts import interrupts_held
from dhlive_cli.outpaths import (check_not_input, check_not_recording, check_output_descriptor, check_output_path,
                                 create_sibling, is_special_file, names_own_descriptor, remove_stale_siblings,
                                 replaced_path, writable_descriptor)
from dhlive_cli.presets import Preset
from dhlive_cli.sinks import EncoderOptions, FfmpegSink, NullSink
from dhlive_cli.sources import FileAudioSource
from dhlive_cli.timebase import MODEL_FPS

STDOUT = "-"  # the output that means: stream the video to this process's standard output
STREAM_FORMATS = {"mkv": "matroska", "mp4": "mp4"}  # what `-o -` can write (both play while written)


class RenderIO:
    """The source (FileAudioSource) and sink (FfmpegSink, NullSink or a caller's own) of one render.

    input_path: an audio file or "-" (stdin). output: an .mp4/.mkv path, "-" for stdout
    (stream_format "mkv", or "mp4" written as fragmented mp4), or None for the null sink.
    width x height at fps: the frames write() will get (I420). preset: its block size sets the
    program audio's buffer (one block of look-ahead plus 2 s of slack between the decoder's two
    outputs). encoder: the H.264/AAC settings (engine.render_encoder). sink: a caller's own sink
    instead (tests, benchmarks); one without set_audio() gets the 16 kHz mono analysis stream.
    Raises InputError (unreadable input, --format against stdout) or OutputError (unsupported
    output type, output path refused) before any child starts. A file output is written to a
    sibling partial file and renamed over the output by finish() only.
    """

    def __init__(self, input_path: str | os.PathLike, output: str | os.PathLike | None, width: int, height: int,
                 fps: int, *, preset: Preset, encoder: EncoderOptions, stream_format: str = "mkv", sink=None):
        self.width, self.height, self.fps = width, height, fps
        self.to_stdout = output is not None and str(output) == STDOUT
        if self.to_stdout and stream_format not in STREAM_FORMATS:
            raise InputError(f"--format {stream_format}: stdout takes mkv or mp4 (fragmented)")
        if self.to_stdout and sink is None:  # not stderr's file (our lines in the video), not the input
            check_output_descriptor(1, "-o -", input_path)
        self.output: Path | None = check_output_path(output) if output is not None and not self.to_stdout else None
        if self.output is not None:
            check_not_input(self.output, input_path)
        own_audio = sink is None or hasattr(sink, "set_audio")
        # program audio waits in the source's ring for its frames' mouth: one read block plus
        # the model's look-ahead, and slack for the decoder's two outputs to be out of step
        self.source = FileAudioSource(input_path, program="source" if own_audio else "same",
                                      program_buffer_s=preset.block_frames / MODEL_FPS + 2.0)  # probes
        self.tmp_path: Path | None = None
        self.fd: int | None = None  # a copy of our descriptor that the output names (/dev/stdout)
        self._tmp_fd: int | None = None  # the work file's, held until the encoder has finished
        self.complete = False  # finish() has written the whole output where it belongs
        self.final_path: Path | None = None  # where tmp_path is renamed to (the output, or its link's target)
        self._started = False
        self.started_at: float | None = None  # time.monotonic() when start() began the children
        self._sink_format: tuple[int, int] | None = None  # what the running encoder was told
        try:
            self._make_sink(output, input_path, width, height, fps, encoder, stream_format, sink)
        except BaseException:
            # a signal (Ctrl+C, SIGTERM, SIGHUP) or an error after the work file was made: the
            # caller never gets this object to abort, so the file goes now (it was left behind)
            self._close_fd()
            self._remove_partial()
            raise

    def _make_sink(self, output, input_path, width, height, fps, encoder, stream_format, sink) -> None:
        if sink is not None:
            self.sink = sink
        elif self.to_stdout:
            fmt = STREAM_FORMATS[stream_format]
            self.sink = FfmpegSink("pipe:1", width, height, fps, encoder, fmt=fmt, fragmented=fmt == "mp4")
        elif self.output is not None:
            suffix = self.output.suffix.lower()
            fmt = "mp4" if suffix in (".mp4", ".m4v", ".mov", "") else "matroska" if suffix == ".mkv" else None
            if fmt is None:
                raise OutputError(f"{self.output}: unsupported output type {self.output.suffix!r} (use .mp4 or .mkv)")
            target = file_arg(self.output)
            special = is_special_file(self.output)
            if names_own_descriptor(self.output):
                # /dev/stdout, /dev/fd/N: in the encoder child that name is the child's own
                # descriptor (its stdout is /dev/null); it gets a copy of ours and writes it as
                # it is (a `>>` file appended to), so, as to `-o -`, MP4 goes out fragmented
                self.fd = writable_descriptor(self.output, input_path)
                target, special = f"pipe:{self.fd}", True
            elif not special:  # a device (/dev/null, /dev/full) or a FIFO is written in place
                self.final_path = replaced_path(self.output)  # resolved once: a link retargeted meanwhile changes nothing
                check_not_recording(self.final_path)
                # a new file of our own beside it (random name, O_EXCL | O_NOFOLLOW), which the
                # encoder writes through its descriptor (/dev/fd/N): never a link planted at a
                # guessable name, never another render's work file
                with interrupts_held():  # the file and our note of it, together
                    self.tmp_path, self._tmp_fd = create_sibling(self.final_path, "dhlive-partial",
                                                                 self.output.suffix or ".mp4")
                remove_stale_siblings(self.final_path, "dhlive-partial")  # of renders killed outright
                target = file_arg(self.tmp_path)
            # a FIFO or device cannot seek back to write the index at the front: MP4 goes out
            # fragmented there, as to stdout (the muxer failed: "Error initializing output stream")
            self.sink = FfmpegSink(target, width, height, fps, encoder, fmt=fmt,
                                   fd=self.fd if self._tmp_fd is None else self._tmp_fd,
                                   fragmented=special and fmt == "mp4")
            if self.fd is not None or self._tmp_fd is not None:  # messages name what the user gave
                self.sink.label = str(self.output)
        else:
            self.sink = NullSink()

    @property
    def output_name(self) -> str | None:
        """The output as results name it: its path, "-" for stdout, None for the null sink."""
        return str(self.output) if self.output else STDOUT if self.to_stdout else None

    def start(self) -> None:
        """Start the decoder, and the encoder too when the input's header tells the program
        audio's format (FileAudioSource.program_hint); a second call does nothing."""
        if self._started:
            return
        self._started = True
        self.started_at = time.monotonic()
        self.source.open()
        hint = self.source.program_hint()
        if hint is not None and isinstance(self.sink, FfmpegSink):
            self._open_sink(hint)

    def _open_sink(self, fmt: tuple[int, int]) -> None:
        if hasattr(self.sink, "set_audio"):
            self.sink.set_audio(*fmt)
        self.sink.open()
        self._sink_format = fmt

    def open_sink(self) -> tuple[int, int]:
        """Wait for the decoder's program format, (rate in Hz, channels), and return it with the
        sink open for it: the encoder start() began is kept when the hint was right, restarted
        (it has been given nothing yet) when it was not. Calls start() if it was not.
        Raises InputError when the input holds no audio the decoder can read."""
        self.start()
        fmt = self.source.program_format()
        if self._sink_format is not None and self._sink_format != fmt and hasattr(self.sink, "set_audio"):
            self.sink.abort()  # the header misled us: nothing was written to this encoder yet
            self._sink_format = None
        if self._sink_format is None:
            self._open_sink(fmt)
        return fmt

    def finish(self) -> None:
        """The encoder finishes the file, then the partial file takes the output's name.
        Raises EngineError/OutputError as FfmpegSink.close."""
        if self._sink_format is None:
            raise EngineError("finish() before open_sink()")
        try:
            self.sink.close()
        finally:
            self._close_fd()
        with interrupts_held():  # the rename and the note that it happened go together
            if self.tmp_path is not None:
                # a recording that began at this name while we rendered (checked at the start
                # too): renaming over it left its encoder writing into a deleted file
                check_not_recording(self.final_path)
                os.replace(self.tmp_path, self.final_path)  # a link to the output stays a link
                self.tmp_path = None
            self.complete = True

    def _close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self._tmp_fd is not None:
            os.close(self._tmp_fd)
            self._tmp_fd = None

    def abort(self) -> None:
        """Idempotent: both children killed, the partial file removed, the output left as it was."""
        self.sink.abort()
        self._close_fd()
        self.source.close()
        self._remove_partial()

    def _remove_partial(self) -> None:
        if self.tmp_path is not None:
            try:
                self.tmp_path.unlink()
            except FileNotFoundError:
                pass
            self.tmp_path = None


__all__ = ["RenderIO", "STDOUT", "STREAM_FORMATS"]
