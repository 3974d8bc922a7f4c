"""interrupts.SignalFlag: a stop flag a signal handler may set while the main thread waits on it.

threading.Event deadlocked there: a `live` given SIGINT kept streaming for an hour, its main
thread in Event.set (called by the handler) waiting for the lock it held itself inside
Event.wait. These tests drive the real signal path (SIGALRM from an interval timer)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from dhlive_cli.interrupts import SignalFlag


@pytest.fixture
def alarm():
    old = signal.getsignal(signal.SIGALRM)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def test_a_handler_that_sets_it_ends_a_wait_in_progress(alarm):
    flag = SignalFlag()
    signal.signal(signal.SIGALRM, lambda *_: flag.set())
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    t0 = time.monotonic()
    try:
        assert flag.wait(60.0) is True  # not the 60 s: the handler's byte ends the select
    finally:
        flag.close()
    assert time.monotonic() - t0 < 30.0


def test_the_lock_an_event_would_take_is_not_there():
    """What deadlocked: the handler ran while its own thread held the Event's lock. Holding
    everything a SignalFlag has (nothing to hold) and setting it from that thread returns."""
    import threading

    ev = threading.Event()
    with ev._cond:  # where the main thread is while it enters or leaves Event.wait()
        assert ev._cond._lock.acquire(timeout=0.1) is False  # set() here would wait for ever
    flag = SignalFlag()
    try:
        flag.set()
        flag.set()  # again: the pipe's byte is there already, no error
        assert flag.is_set() and flag.wait(0) is True
    finally:
        flag.close()


def test_unset_it_waits_its_timeout_and_close_frees_its_pipe(alarm):
    before = len(os.listdir("/proc/self/fd"))
    flag = SignalFlag()
    signal.signal(signal.SIGALRM, lambda *_: None)  # another signal meanwhile: still waiting
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    t0 = time.monotonic()
    assert flag.wait(0.3) is False
    assert time.monotonic() - t0 >= 0.29
    flag.close()
    assert len(os.listdir("/proc/self/fd")) == before
    assert flag.wait(0) is False  # closed: says the flag, raises nothing
