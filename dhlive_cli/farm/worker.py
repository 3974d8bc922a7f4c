"""One farm worker's renderer: the model and avatars are loaded once, then many jobs run.

A job renders into the output folder's hidden work folder `.dhlive-partial/` under a name
unique to this attempt, and only a complete file is renamed to its output name (os.replace:
atomic within one filesystem). A worker killed mid-job (a lost node, SIGKILL) therefore
leaves at most a file in the work folder, never a partial file at an output path, and a retry
of the same job elsewhere cannot collide with what the lost attempt left behind.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

log = logging.getLogger(__name__)

WORK_DIR = ".dhlive-partial"
AVATAR_CACHE = 4  # avatars kept loaded per worker (each size counts); the oldest is dropped


def one_line(e: BaseException) -> str:
    """The first line of an error's message (its type name when the message is empty)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class JobRenderer:
    """Renders jobs (dicts from Job.to_dict()) to files under `out_dir`, one at a time.

    The inference pool (one onnxruntime session, `threads` intra-op threads) is built on the
    first job and kept; avatars are kept per (folder, width, height, fps), up to AVATAR_CACHE of
    them. render() never raises for a job's own problem (bad audio, unwritable output): it
    returns a result dict with status "failed" and the one-line error. KeyboardInterrupt
    (a stopped run) propagates after the work file is removed.
    """

    def __init__(self, out_dir: str | os.PathLike, *, model: str | None = None, device: str = "auto",
                 threads: int = 1):
        self.out_dir = Path(out_dir)
        self.model = model
        self.device = device
        self.threads = max(1, int(threads))
        self._pool = None
        self._avatars: OrderedDict[tuple, object] = OrderedDict()
        self._presets: dict[str, object] = {}
        self.node = socket.gethostname()
        self.jobs_done = 0

    def _inference(self):
        if self._pool is None:
            from dhlive_cli.inference import InferenceOptions, InferencePool

            self._pool = InferencePool(self.model, InferenceOptions(device=self.device, sessions=1,
                                                                     intra_threads=self.threads))
        return self._pool

    def _avatar(self, folder: str | None, width: int, height: int, fps: int):
        from dhlive_cli.compositor import load_avatar

        key = (folder, width, height, fps)
        av = self._avatars.get(key)
        if av is None:
            av = load_avatar(folder, width, height, fps)
            self._avatars[key] = av
            while len(self._avatars) > AVATAR_CACHE:
                self._avatars.popitem(last=False)
        else:
            self._avatars.move_to_end(key)
        return av

    def _preset(self, job: dict):
        from dhlive_cli.presets import load_preset

        base = self._presets.get(job["preset"])
        if base is None:
            base = self._presets[job["preset"]] = load_preset(job["preset"])
        return replace(base, width=job["width"], height=job["height"])

    def warm(self) -> dict:
        """Load the model now (a worker says it is ready only once it can render)."""
        pool = self._inference()
        return {"node": self.node, "pid": os.getpid(), "provider": pool.provider}

    def render(self, job: dict, attempt: str | None = None) -> dict:
        """Render one job; returns {job, output, status, seconds, frames, samples, bytes, error,
        node, pid}. `seconds` is this job's wall time on the worker, frames are at the preset's
        fps, samples at 16 kHz, bytes the output file's size."""
        from dhlive_cli.engine import RenderSession
        from dhlive_cli.errors import OutputError

        t0 = time.monotonic()
        final = self.out_dir / job["output"]
        work = self.out_dir / WORK_DIR / f"{job['index']}-{attempt or uuid.uuid4().hex[:12]}{final.suffix}"
        out = {"job": job["index"], "output": job["output"], "status": "failed", "seconds": 0.0,
               "frames": 0, "samples": 0, "bytes": 0, "error": None, "node": self.node, "pid": os.getpid()}
        session = None
        committed = False
        try:
            # a symlinked folder inside out_dir would put the output elsewhere (the name has no '..')
            if not final.parent.resolve().is_relative_to(self.out_dir.resolve()):
                raise OutputError(f"output {job['output']!r} leads out of the output folder through a symlink")
            work.parent.mkdir(parents=True, exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            _check_audio_is_a_file(job["audio"])
            preset = self._preset(job)
            pool = self._inference()
            av = self._avatar(job["avatar"], preset.width, preset.height, preset.fps)
            session = RenderSession(job["audio"], work, avatar=av, pool=pool, preset=preset)
            result = session.run()
            session.stop()
            session = None
            # the record is complete before the rename, and the rename is the last step: a stop
            # (SIGTERM -> KeyboardInterrupt) that comes after it still returns the finished job
            ok = dict(status="ok", frames=result.frames, samples=result.samples, bytes=work.stat().st_size)
            os.replace(work, final)
            committed = True
        except KeyboardInterrupt:
            if not committed:
                _unlink(work)
                raise
            # stopped after the rename: the job is done, its result goes back (below)
        except Exception as e:  # noqa: BLE001 - a job's failure is a result, not the worker's end
            _unlink(work)
            out["error"] = one_line(e)
            if not _is_user_error(e):
                log.warning("job %s failed", job["index"], exc_info=True)
        finally:
            if session is not None:
                session.stop()
        if committed:
            out.update(ok)
            self.jobs_done += 1
        out["seconds"] = round(time.monotonic() - t0, 3)
        return out


def _check_audio_is_a_file(path: str) -> None:
    """A job's audio is opened by whichever worker takes it, maybe more than once (a retry, a
    resumed run): a pipe would be read once, by one of them. render's advice for a pipe (give
    - and redirect it) has no batch equivalent, so batch says what it needs instead.
    Raises InputError for a FIFO or a socket; anything else is the decoder's to judge."""
    import stat

    from dhlive_cli.errors import InputError

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # named (no such file, permission denied) by the decoder's own check
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        kind = "pipe" if stat.S_ISFIFO(mode) else "socket"
        raise InputError(f"{path}: is a {kind}, which can be read once only; a batch job needs a file "
                         "(save the audio to one)")


def _is_user_error(e: BaseException) -> bool:
    from dhlive_cli.errors import DhliveError

    return isinstance(e, (DhliveError, OSError))


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass


__all__ = ["JobRenderer", "WORK_DIR", "one_line"]
