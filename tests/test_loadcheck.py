"""The test suite's starvation meter (tests/loadcheck.py) on processes that end under it."""

import os
from pathlib import Path

from tests.loadcheck import Starvation, run_delay_seconds


def test_a_process_that_ends_while_its_threads_are_listed_counts_nothing_and_raises_nothing(monkeypatch):
    # An encoder child exiting between being listed and its /proc folder being read: pathlib's
    # glob checks that /proc/PID/task is a folder, then scandir finds it gone. The poller thread
    # of a loaded suite died of that FileNotFoundError. The race, made certain:
    real_glob = Path.glob
    gone = f"/proc/{os.getpid()}/task"

    def glob(self, pattern):
        if str(self) == gone:
            raise FileNotFoundError(2, "No such file or directory", gone)
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", glob)
    assert run_delay_seconds() == 0.0
    s = Starvation(children=True).start()
    assert s.stop() == 0.0
