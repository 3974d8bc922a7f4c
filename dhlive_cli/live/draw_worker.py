"""A draw process of live.drawing's DrawPool: `python -m dhlive_cli.live.draw_worker SOCKET`.

Kept apart from live.drawing (the parent side) so that running it as a module does not import
it a second time through the dhlive_cli.live package. Every session that connects to SOCKET (a
Unix socket, key-checked) gets a thread of its own here, which loads the session's avatar and
then draws its frames straight into the session's shared frame ring. One frame is drawn at a
time in the whole process (a lock): the threads only let a session's avatar load (0.1-0.3 s for
a photo or video avatar) go on beside the other sessions' drawing instead of stalling them, and
keep a video avatar's decoder, which belongs to the thread that draws, with its session.
"""

from __future__ import annotations

import mmap
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection, Listener
from multiprocessing.reduction import recv_handle

import numpy as np


def _serve_session(conn: Connection, state: dict, draw_lock: threading.Lock) -> bool:
    """One request of one session; False when the session is done with (closed or gone)."""
    try:
        req = conn.recv()
    except (EOFError, OSError):
        return False
    kind = req[0]
    if kind == "draw":
        _, slot, f, m0, m1, m2, m3, fresh = req
        try:
            with draw_lock:
                state["composer"].draw(state["frames"][slot], f, state["shape"](m0, m1, m2, m3), fresh=fresh)
        except Exception as e:  # noqa: BLE001 - told to the session, which logs it in one line and stops
            from dhlive_cli.errors import DhliveError

            # dhlive's own errors (an avatar video cut short) read as they would in the session's
            # thread; anything else is named. No traceback: the process's stderr is the operator's
            conn.send(("error", str(e) if isinstance(e, DhliveError) else f"drawing failed: {type(e).__name__}: {e}"))
            return True
        conn.send(("ok",))
        return True
    if kind == "open":
        _, avatar_dir, width, height, fps, shape = req
        fd = recv_handle(conn)
        try:
            from dhlive_cli.avatar.drawn import MouthShape
            from dhlive_cli.compositor import Composer, load_avatar

            size = int(np.prod(shape))
            mm = mmap.mmap(fd, size)
            state["frames"] = np.ndarray(shape, dtype=np.uint8, buffer=mm)
            # one avatar per session, loaded in the session's own thread: a video avatar keeps
            # a decoder per drawing thread, which thus stays with its session
            avatar = load_avatar(avatar_dir, width, height, fps)
            state["avatar"] = avatar
            state["composer"] = Composer(avatar)
            state["shape"] = MouthShape
            warm = getattr(avatar, "warm", None)
            if warm is not None:
                warm()
        except Exception as e:  # noqa: BLE001 - the session reports it
            from dhlive_cli.errors import DhliveError

            conn.send(("error", str(e) if isinstance(e, DhliveError) else f"{type(e).__name__}: {e}"))
            return False
        finally:
            os.close(fd)
        conn.send(("ok",))
        return True
    return False  # "close"


def _end_session(conn: Connection, state: dict) -> None:
    """Close a session's connection and free what it held here: its avatar (a video avatar's
    decoder) and its frame ring's mapping, as soon as the session ends."""
    conn.close()
    close = getattr(state.get("avatar"), "close", None)
    if close is not None:
        close()
    state.clear()


def _session(conn: Connection, draw_lock: threading.Lock) -> None:
    """A session's thread: open (load its avatar), then draw until it closes or goes away."""
    state: dict = {}
    try:
        while _serve_session(conn, state, draw_lock):
            pass
    finally:
        _end_session(conn, state)


def _worker_main(address: str, authkey: bytes, parent_fd: int) -> None:
    """A draw process: a thread per session that connects (see the module docstring), until
    `parent_fd` (its stdin, a pipe from the DrawPool) reaches end of file: the pool closed or
    its process died."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    import cv2

    cv2.setNumThreads(1)  # one frame at a time: OpenCV's pool would only add hand-offs
    listener = Listener(address, family="AF_UNIX", authkey=authkey)
    closing = threading.Event()
    draw_lock = threading.Lock()

    def accept_loop() -> None:
        n = 0
        while True:
            try:
                c = listener.accept()
            except Exception:  # noqa: BLE001 - one caller's failure is not the listener's
                if closing.is_set():
                    return  # the listener is closed
                # this caller had a wrong key, hung up or sent junk in the handshake
                # (AuthenticationError, EOFError, OSError "bad message length"): refused, go on
                continue
            n += 1
            threading.Thread(target=_session, args=(c, draw_lock), name=f"dhlive-draw-session-{n}",
                             daemon=True).start()

    threading.Thread(target=accept_loop, name="dhlive-draw-accept", daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while os.read(parent_fd, 64):
            pass  # end of file: the pool closed, or its process is gone
    finally:
        closing.set()
        listener.close()  # removes the socket
        # the last process out removes the sockets' folder: its pool may have been killed
        # before it could (the others' sockets still in it make this fail, as it should)
        try:
            os.rmdir(os.path.dirname(os.path.realpath(address)))
        except OSError:
            pass


def main() -> None:
    """`python -m dhlive_cli.live.draw_worker SOCKET`: a draw process (started by DrawPool only). The
    first line on stdin is the sockets' key (hex); stdin's end of file ends the process."""
    import dhlive_cli  # noqa: F401 - the CLI's process settings (one OpenBLAS thread)

    try:
        key = bytes.fromhex(sys.stdin.buffer.readline().decode().strip())
    except ValueError:
        key = b""
    if len(key) < 16:  # no key (the pool died before sending it): an empty one would turn the check off
        sys.stderr.write("dhlive draw process: no key on stdin\n")
        sys.exit(1)
    try:
        _worker_main(sys.argv[1], key, sys.stdin.fileno())
    except OSError as e:  # e.g. the socket cannot be made: the pool reports that it did not start
        sys.stderr.write(f"dhlive draw process: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
