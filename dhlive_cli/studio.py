"""Studio: many live sessions in one process, sharing one inference pool, one clock and avatars.

    specs (--sessions FILE.toml, or POST /v1/sessions) -> Studio.create(spec)
        -> LiveSession (own speech buffer, mouth track, frames, outputs, inputs, draw thread)
        -> all paced by one TickConductor, which batches every session's inference per tick

Shared, passed in and never global: the InferencePool (one model load, one call per tick for
all sessions) and the AvatarCache (an avatar used by several sessions is loaded once, and freed
with its last session). Everything else is per session and goes with Studio.remove(): threads,
encoder children, buffers. A session whose outputs all die is stopped alone by supervise(); the
others keep their pace.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from dhlive_cli.audio_probe import SAFE_AUDIO_DEMUXERS
from dhlive_cli.compositor import AvatarCache
from dhlive_cli.errors import EngineError, InputError
from dhlive_cli.ffmpeg_bin import file_arg
from dhlive_cli.grants import Grants, output_identity, rtmp_key, same_output
from dhlive_cli.inference import InferencePool
from dhlive_cli.live import LiveOptions, LiveSession, TickConductor
from dhlive_cli.live.drawing import DrawPool
from dhlive_cli.outpaths import hold_recording, names_own_descriptor, replaced_path, writable_descriptor
from dhlive_cli.presets import Preset, parse_size
from dhlive_cli.redact import redact_url
from dhlive_cli.session_spec import SessionSpec
from dhlive_cli.sinks import EncoderOptions
from dhlive_cli.sources import is_null_device
from dhlive_cli.timebase import Timebase

log = logging.getLogger(__name__)

DEFAULT_MAX_SESSIONS = 16



def live_encoder(preset: Preset, sessions: int = 1, codec: str = "libx264") -> EncoderOptions:
    """Encoder settings for live streams from a preset, for `sessions` encoders in one process.

    The stream must keep its clock, so x264 never runs slower than veryfast, and keyframes
    come at most 2 s apart so viewers can join quickly. `-tune zerolatency`: no B-frames and no
    rate-control look-ahead, so x264 holds no frames back (a frame goes out as soon as it is
    drawn) and keeps no look-ahead buffers (at 360p an encoder stays near 30 MB instead of
    about 64). Threads are sized to the session count: where the preset says "auto", N encoders
    share the cores (cores // N each, at least one) instead of each starting x264's own
    1.5 x cores. ffmpeg may queue only a few raw frames per input: a live encoder that falls
    behind drops at our queue (counted), never by growing its own. AAC uses ffmpeg's fast coder
    without noise substitution or temporal noise shaping: about 0.4 of the default coder's CPU,
    which was more than x264's at 360p (encode_command.build_encode_command)."""
    fast = ("ultrafast", "superfast", "veryfast")
    threads = preset.encoder_threads
    if threads == 0 and sessions > 1:
        threads = max(1, (os.cpu_count() or 1) // sessions)
    return EncoderOptions(preset=preset.encoder_preset if preset.encoder_preset in fast else "veryfast",
                          crf=preset.crf, threads=threads, audio_bitrate=preset.audio_bitrate,
                          gop_seconds=min(2.0, preset.gop_seconds), codec=codec, tune="zerolatency",
                          lookahead=0, input_queue=8, aac_coder="fast")


MAX_API_PIXELS = 1920 * 1080  # the largest frame an API client may ask for


def _rtmp_key_or_url(url: str):
    """grants.rtmp_key(url), or the URL itself when it does not parse (compared as a string)."""
    try:
        return rtmp_key(url)
    except InputError:
        return url


@dataclass(eq=False)
class _Prepared:
    """A session built but maybe not started, with what it claims: name, size, outputs."""

    spec: SessionSpec
    width: int
    height: int
    rtmp: frozenset
    output_ids: list
    session: LiveSession | None = None
    avatar: object = None
    fd: int | None = None  # the recording this session created (API sessions), held open
    created: Path | None = None
    lock_fd: int | None = None  # the command line's recording, claimed (outpaths.hold_recording)
    lock_created: Path | None = None  # ... and created empty by that claim

    def release(self, remove_file: bool = False) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
        if remove_file and self.lock_created is not None:
            try:  # a refused start leaves no file (one that was there before is left as it was)
                os.unlink(self.lock_created)
            except OSError:
                pass
        self.lock_created = None
        if remove_file and self.created is not None:
            try:  # ours, created empty a moment ago: a refused start leaves no file
                os.unlink(self.created)
            except OSError:
                pass
        self.created = None


class Studio:
    """The live sessions of one process. Thread-safe: the CLI and the API both call it."""

    def __init__(self, pool: InferencePool, preset: Preset, enc: EncoderOptions, *,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, stdin=None, grants: Grants | None = None,
                 pixel_budget: int | None = None, max_viewers: int = 4, stop_after_frames: int | None = None,
                 draw_processes: int | None = None):
        """pixel_budget: pixels per second (width x height x fps over all sessions) up to which
        API-made sessions are admitted; None: no limit. grants: where API sessions may write.
        stop_after_frames: the operator's sessions (command line, sessions file) end by
        themselves after exactly this many frames (`--duration` x fps); API sessions do not.
        The frame rate is the preset's (1..60). draw_processes: while more sessions run than the
        machine has cores, the further sessions are drawn in up to this many draw processes
        (live.drawing; each started when a session needs it); None: two per core, at most one per session
        beyond the cores; 0: every session draws in this process."""
        self.pool, self.preset, self.enc = pool, preset, enc
        # Each session draws in its own thread, so the sessions already fill the cores; OpenCV's
        # own worker pool on top only added hand-offs: at 16 360p sessions its threads took 0.34 ms
        # of CPU per frame, and dhlive's CPU per frame fell from 2.39 to 1.91 ms with one OpenCV
        # thread per call (process wide: live has nothing else that draws; bench_sessions,
        # 2026-12-01).
        import cv2

        cv2.setNumThreads(1)
        self.grants = grants or Grants()
        self.pixel_budget = pixel_budget
        self.max_viewers = max_viewers  # browser previews per session (LiveOptions.max_viewers)
        self.stop_after_frames = stop_after_frames
        self._claims: dict[str, _Prepared] = {}  # what each running session holds: outputs, size
        self._pending: dict[str, int] = {}  # sessions being built: name -> pixels per frame
        self._pending_here: set[str] = set()  # those of them to be drawn in this process
        self.on_remove: list = []  # callbacks(name) after a session stopped (the API closes its sockets)
        self.tb = Timebase(preset.fps)
        self.conductor = TickConductor(pool, self.tb, max_sessions=max_sessions)
        self.avatars = AvatarCache()
        cores = os.cpu_count() or 1
        # this many sessions draw in their own threads here; the ones beyond, in draw processes
        self.local_draws = cores
        if draw_processes is None:
            # two per core: a draw process serves its sessions one frame at a time, so fewer
            # sessions each means a shorter wait behind the others. 16 sessions on 2 cores, 40 s
            # runs: 2 processes 1.0 / 1.0 % late frames, 4 processes 0.40 / 0.00 % (bench_sessions,
            # 2026-12-01); never more than the sessions that could use them
            draw_processes = min(2 * cores, max(1, max_sessions - self.local_draws))
        self.draw_pool = DrawPool(draw_processes) if draw_processes > 0 else None
        self.max_sessions = max_sessions
        self._stdin = stdin
        self._sessions: dict[str, LiveSession] = {}
        self._removing: set[str] = set()
        self._lock = threading.Lock()
        self.removed: list[tuple[str, str]] = []  # (name, why) of sessions stopped by supervise()
        self._told: weakref.WeakSet = weakref.WeakSet()  # outputs whose failure supervise() logged

    # ------------------------------------------------------------------ sessions
    def sessions(self) -> dict[str, LiveSession]:
        with self._lock:
            return dict(self._sessions)

    def get(self, name: str) -> LiveSession | None:
        with self._lock:
            return self._sessions.get(name)

    def started_by_operator(self, name: str) -> bool:
        """True for a running session that the command line or the sessions file started (not an
        API client): the API may not stop those."""
        with self._lock:
            if name not in self._sessions:
                return False
            claim = self._claims.get(name)
            return claim is None or not claim.spec.from_api

    def create(self, spec: SessionSpec) -> LiveSession:
        """Start a session; raises InputError/OutputError/EngineError for a bad spec or a full
        studio. Nothing is left behind by a refused one (a recording it created is removed)."""
        return self.create_many([spec])[0]

    def create_many(self, specs: list[SessionSpec]) -> list[LiveSession]:
        """Validate and build every session first, then start them all: one invalid spec starts
        nothing and opens no output."""
        prepared: list[_Prepared] = []
        try:
            for spec in specs:
                prepared.append(self._prepare(spec, prepared))
            for p in prepared:
                p.session.start()
        except BaseException:
            for p in prepared:
                self._discard(p)
            raise
        out = []
        with self._lock:
            for p in prepared:
                self._removing.discard(p.spec.name)
                self._pending.pop(p.spec.name, None)
                self._pending_here.discard(p.spec.name)
                self._sessions[p.spec.name] = p.session
                self._claims[p.spec.name] = p
                out.append(p.session)
        for p in prepared:
            log.info("session %s started (%dx%d, %d output(s))", p.spec.name, p.width, p.height, len(p.session.outputs))
        return out

    def pixel_rate(self) -> int:
        """Pixels per second drawn by the running sessions (width x height x fps, summed)."""
        with self._lock:
            return sum(c.width * c.height for c in self._claims.values()) * self.tb.fps

    def _prepare(self, spec: SessionSpec, batch: list["_Prepared"]) -> "_Prepared":
        """Everything but start(): reserve the name, check outputs (by identity against every
        session's and the batch's), admit the size, load the avatar, build the session."""
        from dhlive_cli.engine import check_not_input, check_output_path
        from dhlive_cli.errors import OutputError
        from dhlive_cli.inputs import FileFeeder, MicFeeder, PcmFeeder

        w, h = parse_size(spec.size) if spec.size else (self.preset.width, self.preset.height)
        if spec.from_api and w * h > MAX_API_PIXELS:
            raise InputError(f"session {spec.name!r}: size {w}x{h} is over the API's limit of 1920x1080 pixels")
        outputs_ids = []
        # `-o -` on the command line: Matroska to our own stdout (fragmented as it streams, so a
        # player or a pipe reads it as it comes), like `render -o -`; not a file to check
        to_stdout = spec.output is not None and not spec.from_api and str(spec.output) == "-"
        if spec.output is not None and not to_stdout:
            suffix = spec.output.suffix.lower()
            if suffix not in (".mp4", ".m4v", ".mov", ".mkv", ""):  # "" as render: a device, mp4
                raise OutputError(f"{spec.output}: unsupported recording type {spec.output.suffix!r} (use .mp4 or .mkv)")
            if not spec.from_api:  # the operator's own path: checked as render checks it
                check_output_path(spec.output)
            outputs_ids.append(output_identity(spec.output))
        files = [Path(i) for i in spec.inputs if i != "-" and not (i == "mic" or i.startswith("mic:"))]
        if spec.output is not None and not to_stdout:
            for f in files:
                check_not_input(spec.output, f)
        with self._lock:
            if spec.name in self._sessions or spec.name in self._removing or any(p.spec.name == spec.name for p in batch):
                raise InputError(f"a session named {spec.name!r} already exists")
            # _pending: sessions being built (this batch, and other threads' creates) count too
            if len(self._sessions) + len(self._pending) >= self.max_sessions:
                raise EngineError(f"at most {self.max_sessions} live sessions per process")
            others = []
            for c in (*self._claims.values(), *batch):
                ids = list(c.output_ids)
                if c.spec.output is not None:
                    # and its identity now: a recording that ffmpeg created since has an inode now
                    ids.append(output_identity(c.spec.output))
                others.append((c.spec.name, c.rtmp, ids))
            for name, rtmp, ids in others:
                # compared as (scheme, host, port, path): rtmp://h:01936/a and rtmp://H.:1936/a are one stream
                theirs = {_rtmp_key_or_url(x) for x in rtmp}
                clash = next((u for u in spec.rtmp if _rtmp_key_or_url(u) in theirs), None)
                if clash is None and any(same_output(a, b) for a in outputs_ids for b in ids):
                    clash = spec.output.name if spec.from_api else str(spec.output)
                if clash:
                    raise InputError(f"session {name!r} already streams to {redact_url(clash)}")
            if spec.from_api and self.pixel_budget is not None:
                used = (sum(c.width * c.height for c in self._claims.values())
                        + sum(self._pending.values())) * self.tb.fps
                need = w * h * self.tb.fps
                if used + need > self.pixel_budget:
                    raise EngineError(f"session {spec.name!r}: {w}x{h} at {self.tb.fps} fps needs {need / 1e6:.1f} Mpx/s; "
                                      f"{max(0.0, (self.pixel_budget - used) / 1e6):.1f} of the "
                                      f"{self.pixel_budget / 1e6:.1f} Mpx/s budget is left")
            self._removing.add(spec.name)  # reserve the name while we build outside the lock
            self._pending[spec.name] = w * h
        p = _Prepared(spec=spec, width=w, height=h, rtmp=frozenset(spec.rtmp), output_ids=outputs_ids)
        try:
            if spec.output is not None and spec.from_api:
                # created here, exclusively: an existing file, link or FIFO is refused, and what
                # ffmpeg then opens is this empty file of ours
                p.fd = self.grants.create_output(spec.output, f"session {spec.name!r}")
                p.created = spec.output
                # claimed as a command line's recording is (outpaths.hold_recording): another
                # dhlive's live or render refuses it; ours, made just now, so never held elsewhere
                fcntl.flock(p.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                st = os.fstat(p.fd)
                p.output_ids = [(outputs_ids[0][0], (st.st_dev, st.st_ino))]
            elif spec.output is not None and names_own_descriptor(spec.output):
                # /dev/stdout, /dev/fd/N: the encoder child would open its own descriptor (its
                # stdout is /dev/null); it gets a copy of ours and writes it as it is
                p.fd = writable_descriptor(spec.output)
            elif spec.output is not None and not to_stdout:
                # claimed for this process: a second dhlive recording to it is refused, not let
                # truncate it under this one's encoder
                held = hold_recording(spec.output)
                if held is not None:
                    p.lock_fd, p.lock_created = held[0], replaced_path(spec.output) if held[1] else None
            outs = [(u, "flv") for u in spec.rtmp] + [(u, "mpegts") for u in spec.srt]
            if to_stdout:
                outs.append(("pipe:1", "matroska"))
            elif spec.output is not None:
                # a file, as ffmpeg must be given it: "rec:1.mkv" or "pipe:1" is a name, not a
                # protocol (stdout is the "pipe:1" above, never a name the user gave)
                name = f"pipe:{p.fd}" if p.fd is not None and p.created is None else file_arg(spec.output)
                outs.append((name, "matroska" if spec.output.suffix.lower() == ".mkv" else "mp4", p.fd))
            p.avatar = self.avatars.get(spec.avatar, w, h, self.preset.fps)
            with self._lock:
                # decided and counted in one hold of the lock: concurrent creates (API requests)
                # each counted only the running sessions and their own batch, so all of them
                # were drawn here, past one per core
                here = sum(1 for x in self._sessions.values() if x._draw_pool is None) + len(self._pending_here)
                remote = self.draw_pool if self.draw_pool is not None and here >= self.local_draws else None
                if remote is None:
                    self._pending_here.add(spec.name)
            session = LiveSession(avatar=p.avatar, pool=self.pool, tb=self.tb, enc=self.enc, outputs=outs,
                                  draw_pool=remote, avatar_dir=spec.avatar,
                                  opts=LiveOptions(crossfade_ms=spec.crossfade_ms, hangover_ms=spec.hangover_ms,
                                                   queue_frames=max(2, self.preset.queue_frames),
                                                   max_viewers=self.max_viewers,
                                                   stop_after_frames=None if spec.from_api else self.stop_after_frames),
                                  name=spec.name, conductor=self.conductor)
            p.session = session
            if files:
                ids = ({str(f): self.grants.media_identity(f, f"session {spec.name!r}") for f in files}
                       if spec.from_api else None)
                session.feeders.append(FileFeeder(files, session.speech, session.cancel, loop=spec.loop,
                                                  formats=SAFE_AUDIO_DEMUXERS if spec.from_api else None,
                                                  identities=ids))
            if "-" in spec.inputs:
                if self._stdin is None:
                    raise InputError(f"session {spec.name!r}: input -: standard input is closed; pipe the "
                                     "speech in (my_tts | dhlive live --input - ...)")
                try:
                    fd = self._stdin.fileno()
                except (OSError, ValueError, AttributeError):  # a test's BytesIO: no descriptor
                    fd = None
                if fd is not None and os.isatty(fd):  # nobody types speech: the session would wait for ever
                    raise InputError(f"session {spec.name!r}: input -: standard input is a terminal; "
                                     "pipe the speech in (my_tts | dhlive live --input - ...)")
                if fd is not None and is_null_device(fd):
                    # a live stream legitimately idles without speech: said, not refused
                    log.warning("session %r: input -: standard input is /dev/null, no speech will come from it",
                                spec.name)
                session.feeders.append(PcmFeeder(self._stdin, session.speech, session.cancel))
            mic = next((i for i in spec.inputs if i == "mic" or i.startswith("mic:")), None)
            if mic is not None:
                session.feeders.append(MicFeeder(mic[4:] or None, session.speech, session.cancel))
        except BaseException:
            self._discard(p)
            raise
        return p

    def _discard(self, p: "_Prepared") -> None:
        """Undo a prepared (maybe started) session that will not run: nothing stays behind."""
        if p.session is not None:
            p.session.stop()
        if p.avatar is not None:
            self.avatars.release(p.avatar)
            p.avatar = None
        p.release(remove_file=True)
        with self._lock:
            self._removing.discard(p.spec.name)
            self._pending.pop(p.spec.name, None)
            self._pending_here.discard(p.spec.name)

    def remove(self, name: str) -> dict:
        """Stop a session and free all it holds; returns its last snapshot. KeyError if unknown."""
        with self._lock:
            session = self._sessions.pop(name)
            claim = self._claims.pop(name, None)
            self._removing.add(name)
        try:
            session.stop()
            self.avatars.release(session.avatar)
            if claim is not None:
                claim.release()
            for cb in list(self.on_remove):
                cb(name)
            return session.snapshot()
        finally:
            with self._lock:
                self._removing.discard(name)

    def supervise(self) -> list[tuple[str, str]]:
        """Stop, alone, every session that can no longer stream (its outputs died for good, or it
        raised). Returns [(name, why)] of the sessions stopped now."""
        gone = []
        for name, s in self.sessions().items():
            for o in s.outputs:
                if o.failed and not s.failed and o not in self._told:
                    # one recording of several died: the session streams on, but say so once
                    self._told.add(o)
                    log.warning("session %s: output %s stopped (%s); its other outputs go on", name, o.label,
                                o.last_error)
            if s.failed:
                why = "crashed" if s.crashed else "; ".join(
                    o.last_error if o.last_error and o.label in o.last_error else f"{o.label}: {o.last_error}"
                    for o in s.outputs)
                try:
                    self.remove(name)
                except KeyError:
                    continue  # removed meanwhile
                log.info("session %s stopped: %s", name, why)  # the caller tells the user
                gone.append((name, why))
        self.removed.extend(gone)
        return gone

    def close(self, timeout: float = 5.0) -> None:
        """Stop every session (in parallel: each fade-out takes a few ticks) and the clock,
        waiting up to `timeout` s for them (a frame-exact recording flushes longer: 25 s)."""
        if self.stop_after_frames is not None:
            timeout = max(timeout, 25.0)
        names = list(self.sessions())
        threads = [threading.Thread(target=self._remove_quiet, args=(n,), name=f"dhlive-stop-{n}") for n in names]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.conductor.close()
        if self.draw_pool is not None:
            self.draw_pool.close()

    def _remove_quiet(self, name: str) -> None:
        try:
            self.remove(name)
        except KeyError:
            pass

    # ------------------------------------------------------------------ figures
    def snapshot(self) -> dict:
        """Process-wide figures: one session's snapshot as it is (plus clock figures), or for
        several the sums/worst cases on top and every session under "sessions"."""
        snaps = [s.snapshot() for s in self.sessions().values()]
        clock = self.conductor.snapshot()
        if len(snaps) == 1:
            top = dict(snaps[0])
        else:
            top = {
                "session": ",".join(s["session"] for s in snaps),
                "state": "talking" if any(s["state"] == "talking" for s in snaps) else "idle",
                "frames": sum(s["frames"] for s in snaps),
                "late_frames": sum(s["late_frames"] for s in snaps),
                "skipped_ticks": sum(s["skipped_ticks"] for s in snaps),
                "fps": min((s["fps"] for s in snaps), default=0.0),  # the slowest session's pace
                "frame_ms_p50": max((s["frame_ms_p50"] for s in snaps), default=0.0),
                "frame_ms_p99": max((s["frame_ms_p99"] for s in snaps), default=0.0),
                "queued_speech_s": sum(s["queued_speech_s"] for s in snaps),
                "latency_ms_median": None,
                "latency_samples": 0,
                "outputs": [o for s in snaps for o in s["outputs"]],
            }
        top["sessions"] = snaps
        top["clock"] = clock
        return top


__all__ = ["Studio", "MAX_API_PIXELS", "DEFAULT_MAX_SESSIONS", "live_encoder"]
