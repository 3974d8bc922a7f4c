"""procstat: /proc read directly gives what psutil gives for this process and its descendants."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from dhlive_cli import procstat

pytestmark = pytest.mark.skipif(not procstat.available(), reason="needs Linux /proc with task children files")


def _ready(proc: subprocess.Popen) -> None:
    assert proc.stdout.readline().strip() == "ready"


def test_rss_and_descendants_match_psutil():
    # a child that allocates 50 MB and starts a grandchild: both counted, the grandchild too
    code = ("import subprocess, sys; b = bytearray(50 * 2**20); "
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('ready', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        _ready(child)
        me = psutil.Process()
        assert child.pid in procstat.children()  # (the test runner may have other children: not counted here)
        c = psutil.Process(child.pid)
        grand = c.children(recursive=True)
        assert len(grand) == 1
        assert procstat.children(child.pid) == [grand[0].pid]
        # the child's subtree: the child and its grandchild
        want = c.memory_info().rss + grand[0].memory_info().rss
        got = procstat.rss_bytes(child.pid) + procstat.descendants_rss_bytes(child.pid)
        assert got > 50 * 2**20
        assert abs(got - want) < 4 * 2**20  # read a moment apart: pages may move, not 4 MB
        # this process's own subtree holds the child's (other children of the runner, e.g. a
        # parallel worker's servers, change their memory meanwhile: not compared to the byte)
        assert procstat.descendants_rss_bytes() > want - 4 * 2**20
        assert abs(procstat.rss_bytes() - me.memory_info().rss) < 4 * 2**20
    finally:
        for k in psutil.Process(child.pid).children(recursive=True):
            k.kill()
        child.kill()
        child.wait()


def test_a_process_that_is_gone():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    with pytest.raises(OSError):
        procstat.rss_bytes(p.pid)
    assert procstat.children(p.pid) == []
    assert procstat.descendants_rss_bytes(p.pid) == 0
