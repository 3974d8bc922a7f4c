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

import logging
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dhlive_cli.compositor import AvatarCache
from dhlive_cli.errors import EngineError, InputError
from dhlive_cli.inference import InferencePool
from dhlive_cli.live import LiveOptions, LiveSession, TickConductor
from dhlive_cli.presets import Preset, parse_size
from dhlive_cli.sinks import EncoderOptions
from dhlive_cli.timebase import Timebase

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_MAX_SESSIONS = 16
SPEC_KEYS = {"name", "avatar", "rtmp", "output", "input", "loop", "size", "crossfade_ms", "hangover_ms"}


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What one session shows and where it goes. Paths are absolute once parsed."""

    name: str
    avatar: Path | None = None  # None: the embedded drawn avatar
    rtmp: tuple[str, ...] = ()
    output: Path | None = None  # a recording (.mp4 / .mkv)
    inputs: tuple[str, ...] = ()  # files, "-" (stdin PCM) or "mic[:DEVICE]"
    loop: bool = False
    size: str | None = None  # None: the preset's size
    crossfade_ms: int = 160
    hangover_ms: int = 400
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, d: dict, *, base: Path, where: str, local_inputs: bool = True) -> "SessionSpec":
        """One session table (TOML) or JSON object. Relative paths are taken from `base`."""
        if not isinstance(d, dict):
            raise InputError(f"{where}: a session must be a table/object, not {type(d).__name__}")
        unknown = sorted(set(d) - SPEC_KEYS)
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(SPEC_KEYS))})")
        name = d.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InputError(f"{where}: name {name!r} must be 1-64 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit")
        where = f"{where} ({name})"

        def strings(key: str) -> tuple[str, ...]:
            v = d.get(key, ())
            v = (v,) if isinstance(v, str) else v
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
                raise InputError(f"{where}: {key} must be a string or a list of strings")
            return tuple(v)

        def path(v) -> Path:
            p = Path(v).expanduser()
            return p if p.is_absolute() else base / p

        rtmp = strings("rtmp")
        for url in rtmp:
            if not url.startswith(("rtmp://", "rtmps://")):
                raise InputError(f"{where}: rtmp {url!r} must start with rtmp:// or rtmps://")
        inputs = []
        for i in strings("input"):
            if i == "-" or i == "mic" or i.startswith("mic:"):
                if not local_inputs:
                    raise InputError(f"{where}: input {i!r} is only for sessions started from the command line")
                inputs.append(i)
            else:
                inputs.append(str(path(i)))
        output = d.get("output")
        if output is not None and (not isinstance(output, str) or not output):
            raise InputError(f"{where}: output must be a file name")
        if not rtmp and output is None:
            raise InputError(f"{where}: nothing to stream to: give rtmp and/or output")
        avatar = d.get("avatar")
        if avatar is not None and (not isinstance(avatar, str) or not avatar):
            raise InputError(f"{where}: avatar must be a directory name")
        size = d.get("size")
        if size is not None:
            if not isinstance(size, str):
                raise InputError(f"{where}: size must be a string such as \"360p\" or \"640x360\"")
            parse_size(size)
        loop = d.get("loop", False)
        if not isinstance(loop, bool):
            raise InputError(f"{where}: loop must be true or false")
        ms = {}
        for key, default in (("crossfade_ms", 160), ("hangover_ms", 400)):
            v = d.get(key, default)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 5000:
                raise InputError(f"{where}: {key} must be an integer 0..5000")
            ms[key] = v
        return cls(name=name, avatar=path(avatar) if avatar else None, rtmp=rtmp,
                   output=path(output) if output else None, inputs=tuple(inputs), loop=loop, size=size, **ms)


def load_sessions_file(path: Path) -> tuple[dict, list[SessionSpec]]:
    """A sessions TOML: optional top-level `preset`/`size`, then [[session]] tables."""
    try:
        d = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: {e}") from None
    tables = d.pop("session", None)
    if not isinstance(tables, list) or not tables:
        raise InputError(f"{path}: no [[session]] tables")
    top = {k: d.pop(k) for k in ("preset", "size") if k in d}
    if d:
        raise InputError(f"{path}: unknown top-level key {sorted(d)[0]!r} (known: preset, size, [[session]])")
    base = path.resolve().parent
    specs = [SessionSpec.from_dict(t, base=base, where=f"{path} session {i + 1}") for i, t in enumerate(tables)]
    names = [s.name for s in specs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"{path}: two sessions are named {dup!r}")
    if sum(i == "-" for s in specs for i in s.inputs) > 1:
        raise InputError(f"{path}: only one session can read stdin (input \"-\")")
    if sum(i.startswith("mic") for s in specs for i in s.inputs) > 1:
        raise InputError(f"{path}: only one session can use the microphone")
    return top, specs


def live_encoder(preset: Preset, sessions: int = 1) -> EncoderOptions:
    """Encoder settings for live streams from a preset.

    The stream must keep its clock, so x264 never runs slower than veryfast, and keyframes
    come at most 2 s apart so viewers can join quickly. With several sessions each encoder gets
    one x264 thread where the preset says "auto": N encoders already fill the cores, and N times
    x264's automatic thread count only adds switching."""
    fast = ("ultrafast", "superfast", "veryfast")
    threads = preset.encoder_threads
    if threads == 0 and sessions > 1:
        threads = 1
    return EncoderOptions(preset=preset.encoder_preset if preset.encoder_preset in fast else "veryfast",
                          crf=preset.crf, threads=threads, audio_bitrate=preset.audio_bitrate,
                          gop_seconds=min(2.0, preset.gop_seconds))


class Studio:
    """The live sessions of one process. Thread-safe: the CLI and the API both call it."""

    def __init__(self, pool: InferencePool, preset: Preset, enc: EncoderOptions, *,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, stdin=None):
        self.pool, self.preset, self.enc = pool, preset, enc
        self.tb = Timebase(preset.fps)
        self.conductor = TickConductor(pool, self.tb, max_sessions=max_sessions)
        self.avatars = AvatarCache()
        self.max_sessions = max_sessions
        self._stdin = stdin
        self._sessions: dict[str, LiveSession] = {}
        self._removing: set[str] = set()
        self._lock = threading.Lock()
        self.removed: list[tuple[str, str]] = []  # (name, why) of sessions stopped by supervise()

    # ------------------------------------------------------------------ sessions
    def sessions(self) -> dict[str, LiveSession]:
        with self._lock:
            return dict(self._sessions)

    def get(self, name: str) -> LiveSession | None:
        with self._lock:
            return self._sessions.get(name)

    def create(self, spec: SessionSpec) -> LiveSession:
        """Start a session; raises InputError/OutputError for a bad spec (nothing is left behind)."""
        from dhlive_cli.engine import check_not_input, check_output_path
        from dhlive_cli.errors import OutputError
        from dhlive_cli.inputs import FileFeeder, MicFeeder, PcmFeeder

        with self._lock:
            if spec.name in self._sessions or spec.name in self._removing:
                raise InputError(f"a session named {spec.name!r} already exists")
            if len(self._sessions) >= self.max_sessions:
                raise EngineError(f"at most {self.max_sessions} live sessions per process")
            for other in self._sessions.values():
                targets = {o.target for o in other.outputs}
                clash = next((t for t in (*spec.rtmp, str(spec.output) if spec.output else None) if t in targets), None)
                if clash:
                    raise InputError(f"session {other.name!r} already streams to {clash}")
            self._removing.add(spec.name)  # reserve the name while we build outside the lock
        session = None
        avatar = None
        try:
            w, h = parse_size(spec.size) if spec.size else (self.preset.width, self.preset.height)
            outs = [(u, "flv") for u in spec.rtmp]
            files = [Path(i) for i in spec.inputs if i != "-" and not (i == "mic" or i.startswith("mic:"))]
            if spec.output is not None:
                suffix = spec.output.suffix.lower()
                if suffix not in (".mp4", ".m4v", ".mov", ".mkv", ""):  # "" as render: a device, mp4
                    raise OutputError(f"{spec.output}: unsupported recording type {spec.output.suffix!r} (use .mp4 or .mkv)")
                check_output_path(spec.output)
                for f in files:
                    check_not_input(spec.output, f)
                outs.append((str(spec.output), "matroska" if suffix == ".mkv" else "mp4"))
            avatar = self.avatars.get(spec.avatar, w, h, self.preset.fps)
            session = LiveSession(avatar=avatar, pool=self.pool, tb=self.tb, enc=self.enc, outputs=outs,
                                  opts=LiveOptions(crossfade_ms=spec.crossfade_ms, hangover_ms=spec.hangover_ms,
                                                   queue_frames=max(2, self.preset.queue_frames)),
                                  name=spec.name, conductor=self.conductor)
            if files:
                session.feeders.append(FileFeeder(files, session.speech, session.cancel, loop=spec.loop))
            if "-" in spec.inputs:
                if self._stdin is None:
                    raise InputError(f"session {spec.name!r}: no stdin to read")
                session.feeders.append(PcmFeeder(self._stdin, session.speech, session.cancel))
            mic = next((i for i in spec.inputs if i == "mic" or i.startswith("mic:")), None)
            if mic is not None:
                session.feeders.append(MicFeeder(mic[4:] or None, session.speech, session.cancel))
            session.start()
        except BaseException:
            if session is not None:
                session.stop()
            if avatar is not None:
                self.avatars.release(avatar)
            with self._lock:
                self._removing.discard(spec.name)
            raise
        with self._lock:
            self._removing.discard(spec.name)
            self._sessions[spec.name] = session
        log.info("session %s started (%dx%d, %d output(s))", spec.name, w, h, len(outs))
        return session

    def remove(self, name: str) -> dict:
        """Stop a session and free all it holds; returns its last snapshot. KeyError if unknown."""
        with self._lock:
            session = self._sessions.pop(name)
            self._removing.add(name)
        try:
            session.stop()
            self.avatars.release(session.avatar)
            return session.snapshot()
        finally:
            with self._lock:
                self._removing.discard(name)

    def supervise(self) -> list[tuple[str, str]]:
        """Stop, alone, every session that can no longer stream (its outputs died for good, or it
        raised). Returns [(name, why)] of the sessions stopped now."""
        gone = []
        for name, s in self.sessions().items():
            if s.failed:
                why = "crashed" if s.crashed else "; ".join(
                    o.last_error if o.last_error and o.target in o.last_error else f"{o.target}: {o.last_error}"
                    for o in s.outputs)
                try:
                    self.remove(name)
                except KeyError:
                    continue  # removed meanwhile
                log.info("session %s stopped: %s", name, why)  # the caller tells the user
                gone.append((name, why))
        self.removed.extend(gone)
        return gone

    def close(self) -> None:
        """Stop every session (in parallel: each fade-out takes a few ticks) and the clock."""
        names = list(self.sessions())
        threads = [threading.Thread(target=self._remove_quiet, args=(n,), name=f"dhlive-stop-{n}") for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5.0)
        self.conductor.close()

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


__all__ = ["SessionSpec", "Studio", "load_sessions_file", "live_encoder", "NAME_RE"]
