"""Where a live session's frames go: a ring of frames shared by all outputs, and one Output
(queue, encode thread, reconnect loop) per destination."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np

from dhlive_cli.compositor import i420_shape
from dhlive_cli.errors import DhliveError
from dhlive_cli.live.options import LiveOptions
from dhlive_cli.queues import BoundedQueue
from dhlive_cli.queues import Cancelled as QueueCancelled
from dhlive_cli.redact import redact_text, redact_url, secrets_of
from dhlive_cli.sinks import STREAM_AUDIO, EncoderOptions, FfmpegSink
from dhlive_cli.timebase import SAMPLE_RATE

log = logging.getLogger(__name__)


class HoldRing:
    """Preallocated I420 frames (slots, height * 3 / 2, width) uint8 whose slots are
    reference-counted: a frame may sit in several output queues at once. Unlike render's
    FrameRing, acquiring never waits: the clock must not block."""

    def __init__(self, slots: int, height: int, width: int, frames: np.ndarray | None = None):
        """frames: the (slots, height * 3 / 2, width) uint8 memory to use (e.g. shared with a
        draw process, see live.drawing); None: allocated here."""
        shape = (slots, *i420_shape(height, width))
        if frames is not None and (frames.shape != shape or frames.dtype != np.uint8):
            raise ValueError(f"frames must be {shape} uint8, got {frames.shape} {frames.dtype}")
        self.frames = np.zeros(shape, dtype=np.uint8) if frames is None else frames
        self.drawn = np.zeros(slots, dtype=bool)  # see FrameRing.drawn
        self._refs = np.zeros(slots, dtype=np.int32)
        self._lock = threading.Lock()
        self._free_list = list(range(slots))

    def acquire_free(self) -> int:
        """A free slot (held once by the caller) or -1; never waits: the clock must not block."""
        with self._lock:
            if not self._free_list:
                return -1
            s = self._free_list.pop()
            self._refs[s] = 1
            return s

    def hold(self, slot: int) -> None:
        with self._lock:
            self._refs[slot] += 1

    def unhold(self, slot: int) -> None:
        with self._lock:
            self._refs[slot] -= 1
            if self._refs[slot] == 0:
                self._free_list.append(slot)


def _test_gate() -> None:
    """Security tests only: with DHLIVE_TEST_ENCODER_GATE naming a FIFO that exists, wait until
    a writer opens and closes it before an API recording's encoder starts, so a test can swap the
    path for a link in that window deterministically. Unset (always, outside tests): nothing."""
    gate = os.environ.get("DHLIVE_TEST_ENCODER_GATE")
    if gate and os.path.exists(gate):
        try:
            with open(gate, "rb") as f:
                f.read()
        except OSError:
            pass


class Output:
    """One destination (RTMP URL or file) with its own encode thread, queue and reconnect loop."""

    def __init__(self, target: str, fmt: str, width: int, height: int, fps: int, enc: EncoderOptions,
                 ring: HoldRing, opts: LiveOptions, cancel: threading.Event, reconnect: bool,
                 fd: int | None = None, queue_frames: int | None = None):
        self.target, self.fmt = target, fmt
        self.label = redact_url(target)  # what status, metrics, panels and logs show (no stream key)
        self._secrets = secrets_of(target)
        self.fd = fd  # a recording file already open (API sessions): ffmpeg writes through it
        self.width, self.height, self.fps, self.enc = width, height, fps, enc
        self.ring, self.opts, self.cancel = ring, opts, cancel
        self.reconnect = reconnect
        self.queue: BoundedQueue[tuple] = BoundedQueue(f"out:{self.label}", queue_frames or opts.queue_frames,
                                                  "drop_oldest", cancel)
        self.sink: FfmpegSink | None = None
        self.connected = False
        self.reconnects = 0
        self.frames_written = 0
        self.frames_dropped = 0
        self.last_error: str | None = None
        # RTMP: publishes the server refused (a wrong or already-used stream key, an on_publish
        # check answering 403), and whether the latest attempt was one of them
        self.publish_refusals = 0
        self.refused = False
        # the target took at least one publish (RTMP accepted, file opened): a timed run whose
        # target never did delivered nothing there, and says so (commands/live.py)
        self.went_on_air = False
        self.failed = False
        self._closing = threading.Event()
        self._audio = np.zeros(-(-SAMPLE_RATE // fps), dtype=np.float32)  # the longest tick
        self.thread = threading.Thread(target=self._run, name=f"dhlive-out-{fmt}", daemon=True)

    def offer(self, slot: int, audio: np.ndarray) -> None:
        self.ring.hold(slot)
        dropped = self.queue.put((slot, audio))
        if dropped is not None:
            self.frames_dropped += 1
            self.ring.unhold(dropped[0])

    def _open(self) -> bool:
        if self.fd is not None:
            _test_gate()
        try:
            # streams and recordings alike carry 48 kHz stereo AAC (from the 16 kHz mono live mix)
            self.sink = FfmpegSink(self.target, self.width, self.height, self.fps, self.enc, fmt=self.fmt,
                                   fragmented=True, fd=self.fd, audio_out=STREAM_AUDIO).open()
            return True
        except DhliveError as e:
            self.last_error = redact_text(str(e), self._secrets)
            return False

    def _run(self) -> None:
        backoff = self.opts.reconnect_min_s
        retry_at = 0.0
        since_open = 0
        while True:
            if self.sink is None and not self._closing.is_set():
                if time.monotonic() >= retry_at:
                    if self._open():
                        # an RTMP output is connected once the server accepted the publish
                        self.connected = self.sink.on_air
                        self.went_on_air = self.went_on_air or self.connected
                        since_open = 0
                    else:
                        retry_at = time.monotonic() + backoff
                        backoff = min(backoff * 2, self.opts.reconnect_max_s)
            try:
                item = self.queue.get(timeout=0.2)
            except TimeoutError:
                if self._closing.is_set():
                    break
                continue
            except QueueCancelled:
                break
            slot, tick_audio = item
            # the clock's tick ring is reused a few dozen ticks later: take our copy now
            audio = self._audio[: tick_audio.shape[0]]
            audio[:] = tick_audio
            try:
                if self.sink is None:
                    self.frames_dropped += 1  # disconnected: the stream's clock does not wait
                    continue
                self.sink.write(self.ring.frames[slot], audio)
                if not self.connected and self.sink.on_air:
                    self.connected, self.refused, self.went_on_air = True, False, True
                self.frames_written += 1
                since_open += 1
                if since_open == 250:  # 10 s up again: the next loss starts from the short wait
                    backoff = self.opts.reconnect_min_s
            except DhliveError as e:
                self.last_error = redact_text(str(e), self._secrets)
                self.connected = False
                refused = self.sink.publish_refused
                self.sink.abort()
                self.sink = None
                if refused is not None:
                    # the reason is the server's own text, which may echo the key it refused
                    refused = redact_text(refused, self._secrets)
                    self.last_error = refused
                    self.publish_refusals += 1
                    self.reconnects += 1
                    if not self.refused:  # one line per run of refusals, not one per retry
                        log.warning("output %s: publish refused: %s; retrying every %.0f-%.0f s", self.label,
                                    refused, backoff, self.opts.reconnect_max_s)
                    self.refused = True
                    retry_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, self.opts.reconnect_max_s)
                    continue
                if not self.reconnect:
                    self.failed = True  # the studio stops the session and says why, once
                    log.debug("output %s failed: %s", self.label, self.last_error)
                    break
                self.reconnects += 1
                log.warning("output %s lost (%s); reconnecting in %.0f s", self.label, self.last_error, backoff)
                retry_at = time.monotonic() + backoff
                backoff = min(backoff * 2, self.opts.reconnect_max_s)
            finally:
                self.ring.unhold(slot)
        # drain what is left so its slots are free again
        while (item := self.queue.get_nowait()) is not None:
            self.ring.unhold(item[0])

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Flush the queued frames, then finish the file/stream."""
        self._closing.set()
        self.thread.join(timeout)
        if self.sink is not None:
            # a publish the server accepted while the last frames were flushed counts too
            self.went_on_air = self.went_on_air or self.sink.on_air
            try:
                self.sink.close(timeout=timeout)
            except DhliveError as e:
                self.last_error = redact_text(str(e), self._secrets)
            self.sink = None

    def abort(self) -> None:
        self._closing.set()
        if self.sink is not None:
            self.sink.abort()
            self.sink = None
        self.thread.join(1.0)
