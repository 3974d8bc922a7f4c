"""Which ffmpeg binary to run: $DHLIVE_FFMPEG, else ffmpeg on PATH, else the imageio-ffmpeg wheel's."""

import functools
import os
import select
import shutil
import subprocess

from dhlive_cli.errors import DependencyError


@functools.cache
def ffmpeg_path() -> str:
    env = os.environ.get("DHLIVE_FFMPEG")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise DependencyError(f"DHLIVE_FFMPEG={env} is not an executable file")
        return env
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a hard dependency
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    raise DependencyError(
        "ffmpeg not found: install it (apt-get install ffmpeg), put it on PATH, "
        "or set DHLIVE_FFMPEG to its path"
    )


def file_arg(path: str | os.PathLike) -> str:
    """A local file's path as ffmpeg must be given it. ffmpeg reads the letters before a colon
    as a protocol when they are all letters, digits, "+", "-" or "." (libavformat's URL scheme
    characters): a relative name such as "talk:1.wav" is protocol "talk" to it ("Protocol not
    found"). "./" in front keeps such a name a file; every other path is given as it is."""
    s = os.fspath(path)
    first = s.split("/", 1)[0]
    return "./" + s if ":" in first and not s.startswith("/") else s


@functools.cache
def ffprobe_path() -> str | None:
    """ffprobe beside the ffmpeg in use ($DHLIVE_FFMPEG's folder), else on PATH; None where there
    is none (the imageio-ffmpeg wheel ships ffmpeg alone): callers then go without what it tells."""
    env = os.environ.get("DHLIVE_FFMPEG")
    if env:
        near = os.path.join(os.path.dirname(env), "ffprobe")
        if os.path.isfile(near) and os.access(near, os.X_OK):
            return near
    return shutil.which("ffprobe")


class StderrTail:
    """Drains a child's stderr on a thread (a full pipe would stall ffmpeg) and keeps the last
    few non-empty lines, so a failure can be told in ffmpeg's own words."""

    def __init__(self, stream, name: str, keep: int = 8):
        import threading

        self._stream, self._keep = stream, keep
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in self._stream:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.lines.append(line)
                del self.lines[: -self._keep]

    def last(self, default: str, wait: float = 1.0) -> str:
        self._thread.join(timeout=wait)
        return self.lines[-1] if self.lines else default

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)


def wait_child(proc: subprocess.Popen, timeout: float) -> int:
    """proc.wait(timeout) that returns the moment the child exits: Popen.wait with a timeout
    polls with sleeps that grow to 50 ms (a short render waited ~25 ms per child for nothing);
    this waits on a pidfd (Linux 5.3+, os.pidfd_open) and falls back to Popen.wait elsewhere.
    Returns the exit status as Popen.returncode (negative: killed by that signal); raises
    subprocess.TimeoutExpired as Popen.wait does."""
    rc = proc.poll()
    if rc is not None:
        return rc
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or reaped meanwhile
        return proc.wait(timeout=timeout)
    try:
        rc = proc.poll()  # reaped between the two calls: the pid may name another process now
        if rc is not None:
            return rc
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()
