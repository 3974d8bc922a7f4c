"""Draw processes: live sessions' pictures drawn outside the process that runs the clock.

Why: in one process every session's draw thread, its output thread and the shared clock take
turns on one interpreter lock. At 16 360p sessions on 2 cores the clock's own work per session
and tick (pull the audio, log-mel, model windows: ~0.3 ms of CPU) took ~3 ms of wall time
waiting for that lock behind the draw threads, so the shared clock, and with it every stream,
fell to 16-21 fps while the cores were not full (bench_sessions, 2026-12-01).

A DrawPool runs worker processes (live.draw_worker). Each owns, per session given to it, a thread,
the avatar and the Composer, and draws one frame at a time (of any of its sessions), straight
into the session's frame ring, which lives in shared memory (an anonymous memfd passed over the
session's Unix socket). A session's draw thread sends (slot, frame index, mouth shape, fresh)
and waits for the worker's answer with the lock released: the clock's process keeps the clock,
the inference and the encoder pipes.
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Client, Connection
from multiprocessing.reduction import send_handle

import numpy as np

from dhlive_cli.errors import EngineError

log = logging.getLogger(__name__)


def shared_frames(shape: tuple[int, ...], name: str) -> tuple[np.ndarray, int]:
    """A zeroed uint8 array of `shape` in an anonymous shared-memory file (memfd), and that file's
    descriptor (the caller closes it once the worker has its own copy, see DrawPool.connect).
    The mapping lives as long as the array. Raises OSError when memory cannot be had."""
    size = int(np.prod(shape))
    fd = os.memfd_create(f"dhlive-{name}"[:200], os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return np.ndarray(shape, dtype=np.uint8, buffer=mm), fd


# ----------------------------------------------------------------------------- parent side

class RemoteDrawer:
    """A session's link to its draw process: draw(slot, f, mouth, fresh) draws frame f with
    mouth into ring slot `slot` of the session's shared frames and returns when it is there.
    Raises EngineError when the worker reported an error or is gone."""

    def __init__(self, conn: Connection, on_close=None):
        """on_close(gone): called by close(); gone is True when the process was found gone."""
        self._conn = conn
        self._on_close = on_close
        self._gone = False

    def draw(self, slot: int, frame_index: int, mouth, fresh: bool) -> None:
        try:
            self._conn.send(("draw", slot, frame_index, mouth.open, mouth.spread, mouth.round, mouth.close, fresh))
            reply = self._conn.recv()
        except (EOFError, OSError) as e:
            self._gone = True
            raise EngineError(f"the draw process is gone ({type(e).__name__})") from None
        if reply[0] != "ok":
            raise EngineError(reply[1])

    def close(self) -> None:
        """Tell the process this session is done (it frees the session's avatar). Idempotent."""
        if self._conn.closed:
            return
        try:
            self._conn.send(("close",))
        except (OSError, ValueError):
            pass
        self._conn.close()
        if self._on_close is not None:
            self._on_close(self._gone)


class DrawPool:
    """Up to `processes` draw processes shared by the live sessions of one Studio. Each session
    is given to a process without sessions, started for it when there is none and fewer than
    `processes` run, else to the one with the fewest; a process found dead is dropped (and so
    replaced when needed). Thread-safe.

    close() ends the processes (their sessions' next draw raises EngineError)."""

    def __init__(self, processes: int):
        if processes < 1:
            raise ValueError("a DrawPool needs at least one process")
        self.processes = processes
        self._lock = threading.Lock()
        self._workers: list[dict] = []  # {"proc": Popen, "address": socket path, "sessions": count}
        self._dir: str | None = None
        self._dirfd: int | None = None  # the sockets' folder, open (see _add)
        self._key = secrets.token_bytes(32)
        self._closed = False
        self._spawned = 0  # draw processes started so far (names their sockets)

    def _add(self) -> dict:
        """Start one more process (under self._lock), making the sockets' folder first if there
        is none. Raises EngineError; a pool left without processes also removes its folder."""
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="dhlive-draw-")  # 0700: only we reach the sockets
            # the sockets are named through this descriptor (/proc/self/fd/N/wK, the same N in
            # the children, which are given it): a Unix socket's path is at most 107 bytes,
            # which a long TMPDIR would pass
            self._dirfd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            w = self._spawn()
        except BaseException:
            if not self._workers:
                self._remove_dir()
            raise
        self._workers.append(w)
        return w

    def _remove_dir(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            os.close(self._dirfd)
            self._dir = self._dirfd = None

    def _spawn(self) -> dict:
        """Start one draw process and wait until it listens. Raises EngineError when it does not
        start (it is ended, its socket removed)."""
        self._spawned += 1
        # a fresh name per process: a replaced one's socket may still be on disk
        address = f"/proc/self/fd/{self._dirfd}/w{self._spawned}"
        # a plain child (not multiprocessing's spawn, which would run the caller's main
        # script again in the child when it lacks a __main__ guard); stdin is its lifeline.
        # In a session of its own, as the encoders: a signal to the whole process group (a
        # service manager's stop, the terminal's hang-up) is ours to handle, fading the
        # sessions out; it must not end the draw processes under them first
        proc = subprocess.Popen([sys.executable, "-m", "dhlive_cli.live.draw_worker", address],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                                pass_fds=(self._dirfd,), start_new_session=True)
        w = {"proc": proc, "address": address, "sessions": 0}
        try:
            proc.stdin.write(self._key.hex().encode() + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()  # "ready" once it listens; nothing if it died
        except OSError:
            line = b""
        if line.strip() != b"ready":
            self._end(w, 1.0)
            raise EngineError(f"a draw process did not start (exit status {proc.poll()})")
        return w

    def _end(self, w: dict, timeout: float) -> None:
        """Close a draw process's pipes (it returns on its stdin's end of file), wait for it
        (killed after `timeout` s) and remove its socket."""
        for f in (w["proc"].stdin, w["proc"].stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            w["proc"].wait(timeout)
        except subprocess.TimeoutExpired:
            w["proc"].kill()
            w["proc"].wait(1)
        try:
            os.unlink(w["address"])
        except OSError:
            pass

    def connect(self, name: str, avatar_dir, width: int, height: int, fps: int,
                frames: np.ndarray, fd: int) -> RemoteDrawer:
        """Give session `name` (its avatar as load_avatar takes it, its shared frame ring and the
        memfd behind it) to a draw process; returns its RemoteDrawer once the avatar is loaded
        there. Raises EngineError (pool closed, process failed, avatar refused)."""
        with self._lock:
            if self._closed:
                raise EngineError("the draw processes are closed")
            for dead in [w for w in self._workers if w["proc"].poll() is not None]:
                # its sessions were stopped with it; were it kept, every later session would be
                # given to it, having the fewest
                log.warning("draw process %d ended (exit status %s)", dead["proc"].pid, dead["proc"].returncode)
                self._workers.remove(dead)
                self._end(dead, 1.0)
            w = min(self._workers, key=lambda x: x["sessions"], default=None)
            if w is None or (w["sessions"] > 0 and len(self._workers) < self.processes):
                # started on need (a process is ~50 MB and ~0.5 s of CPU to start): one
                # session beyond the cores does not start all of them
                w = self._add()
            w["sessions"] += 1
        conn = None
        try:
            conn = Client(w["address"], family="AF_UNIX", authkey=self._key)
            conn.send(("open", None if avatar_dir is None else str(avatar_dir), width, height, fps,
                       tuple(frames.shape)))
            send_handle(conn, fd, w["proc"].pid)
            reply = conn.recv()
        except (EOFError, OSError) as e:
            if conn is not None:
                conn.close()
            with self._lock:
                w["sessions"] -= 1
            raise EngineError(f"session {name!r}: the draw process is gone ({type(e).__name__})") from None
        if reply[0] != "ok":
            conn.close()
            with self._lock:
                w["sessions"] -= 1
            raise EngineError(f"session {name!r}: {reply[1]}")
        return RemoteDrawer(conn, on_close=lambda gone: self._release(w, gone))

    def _release(self, w: dict, gone: bool) -> None:
        with self._lock:
            w["sessions"] = max(0, w["sessions"] - 1)
        if gone:  # its session lost it: reap it now, not leave a zombie until the next session
            try:
                w["proc"].wait(1.0)  # it closed its end of the socket on its way out
            except subprocess.TimeoutExpired:
                pass

    def pids(self) -> list[int]:
        with self._lock:
            return [w["proc"].pid for w in self._workers]

    def close(self, timeout: float = 5.0) -> None:
        """End the draw processes (each sees its stdin close and returns) and remove the
        sockets' folder. Idempotent."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for w in workers:
            for f in (w["proc"].stdin, w["proc"].stdout):
                try:
                    f.close()
                except OSError:
                    pass
        for w in workers:
            self._end(w, timeout)
        self._remove_dir()


__all__ = ["DrawPool", "RemoteDrawer", "shared_frames"]
