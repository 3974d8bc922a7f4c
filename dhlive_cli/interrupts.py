"""Ctrl+C and SIGTERM held back for the few steps that must not be cut in half.

Python raises KeyboardInterrupt (and dhlive's SIGTERM handlers the same) at whatever bytecode
the main thread is running when the signal lands. Two steps of a command's start-up go wrong
when cut there:

- starting a child: subprocess.Popen raises out of its own constructor once the child has been
  forked, so the caller never gets the Popen and cannot stop it. An encoder started that way
  lives on, unseen by abort(), and creates the partial file after the render removed it.
- importing onnxruntime: its extension imports numpy's C API and reports any failure, an
  interrupt included, as ImportError ("import numpy failed"), which read as "onnxruntime is not
  installed".

    with interrupts_held():
        self._proc = subprocess.Popen(...)   # a signal that arrives here is raised below,
                                             # once the child has a name to be stopped by

Outside the main thread the block runs as it is: Python runs signal handlers in the main
thread only, so nothing is raised in another one.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_held(signals: tuple[int, ...] = HELD):
    """Run the block with `signals` only noted; on leaving it, the handlers that were in place
    get back, and each signal that arrived meanwhile is raised again (signal.raise_signal), once,
    for that handler to act on (KeyboardInterrupt for SIGINT, exit for a default SIGTERM, nothing
    for an ignored one). A signal whose handler was not set from Python is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def note(signum, frame):
        arrived.append(signum)

    old: dict[int, object] = {}
    try:
        for sig in signals:
            if signal.getsignal(sig) is not None:
                old[sig] = signal.signal(sig, note)
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(arrived):
            signal.raise_signal(sig)


class SignalFlag:
    """A stop flag that a signal handler may set, for a main thread that waits on it.

    threading.Event is not one: its set() takes the lock that the main thread holds while it
    enters or leaves Event.wait(), and a handler runs in the main thread, between two of its
    bytecodes, so set() can wait for a lock its own thread holds, for ever (a `live` given
    SIGINT kept streaming, its main thread in Event.set called from the handler inside
    Event.wait; py-spy, 2026-12-02). set() here takes no lock: it notes the flag and writes a
    byte to a pipe that wait() selects on, so a wait in progress ends at once.

        stop = SignalFlag()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(0.25):
            ...
        stop.close()
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        for fd in (self._r, self._w):
            os.set_blocking(fd, False)
        self._set = False

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):  # full (set already) or closed: the flag says it
            os.write(self._w, b"!")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Until set() or `timeout` seconds have passed; returns is_set()."""
        if not self._set:
            with contextlib.suppress(OSError, ValueError):  # closed meanwhile: say the flag
                select.select([self._r], [], [], max(0.0, timeout))
        return self._set

    def close(self) -> None:
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._r = self._w = -1


__all__ = ["SignalFlag", "interrupts_held"]
