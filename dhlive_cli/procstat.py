"""Resident memory of this process and of its descendants, read from Linux's /proc directly.

A render samples both every quarter second (RenderStats: rss, children's rss). psutil reads the
same files, but importing it took 10-40 ms with the interpreter lock held, on the path of a
short render's last frames (python -X importtime, 2026-12-01); the two numbers it needs are
two short reads. Where /proc lacks what is read here (not Linux, or a kernel without
CONFIG_PROC_CHILDREN), `available()` is False and callers use psutil.

Sources: proc(5), /proc/PID/statm (the second field: resident pages, what psutil's
memory_info().rss reports) and /proc/PID/task/TID/children (Linux 3.5+: the children each
thread started, as they are at the time of reading).
"""

from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE")


def available() -> bool:
    """True when this process's statm and its main thread's children file can be read."""
    try:
        rss_bytes()
        with open(f"/proc/self/task/{os.getpid()}/children", "rb"):
            pass
    except OSError:
        return False
    return True


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of pid in bytes. Raises OSError (FileNotFoundError, ProcessLookupError)
    when the process is gone or /proc does not have it."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def children(pid: int | str = "self") -> list[int]:
    """pids of the live children of pid (every thread's); [] when pid is gone."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out += [int(v) for v in f.read().split()]
        except OSError:  # the thread ended between the listing and the read
            pass
    return out


def descendants_rss_bytes(pid: int | str = "self") -> int:
    """Bytes resident in all of pid's descendants (children, their children, ...), summed; a
    process that exits while they are read counts 0."""
    total = 0
    todo = children(pid)
    seen: set[int] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            total += rss_bytes(p)
        except (OSError, ValueError, IndexError):
            continue
        todo += children(p)
    return total
