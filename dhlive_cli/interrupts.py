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


__all__ = ["interrupts_held"]
