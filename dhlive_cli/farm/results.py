"""DIR/results.jsonl: one JSON object per finished job, appended (and fsynced) as jobs finish.

Each line: `job` (1-based index in the job list), `output` (name under DIR), `status` ("ok" or
"failed"), `seconds` (the job's wall time on its worker), `frames` (at the preset's fps),
`samples` (16 kHz), `bytes` (output size), `error` (one line, or null), `node` and `pid` of the
worker. A file holds at most one line per output: --resume keeps the lines of jobs that are
still complete and drops the rest before new lines are added.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path

from dhlive_cli.errors import InputError, OutputError
from dhlive_cli.farm.worker import WORK_DIR

RESULTS_NAME = "results.jsonl"
LOCK_NAME = ".dhlive-batch.lock"


def read_results(path: Path) -> list[dict]:
    """The records of a results file; a torn last line (a crash mid-write) is ignored."""
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("output"), str):
            out.append(rec)
    return out


def is_complete(out_dir: Path, rec: dict) -> bool:
    """A job is complete when its last record is ok and the output exists with the recorded size.

    Outputs only ever appear by an atomic rename of a finished file, so size agreement guards
    against a file replaced or truncated by someone else since."""
    if rec.get("status") != "ok":
        return False
    try:
        st = (out_dir / rec["output"]).stat()
    except OSError:
        return False
    return st.st_size == rec.get("bytes") and st.st_size > 0


class ResultsLog:
    """Owns DIR for one run: a lock (one batch per folder), the results file and the work folder.

    open(resume) returns the set of output names that are complete and need no rendering.
    Without resume, an existing results file is an error unless `overwrite` is set.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / RESULTS_NAME
        self._f = None
        self._lock_fd: int | None = None
        self.kept: dict[str, dict] = {}
        self._made_dir = False  # this run created out_dir
        self._made_file = False  # this run created the results file

    def open(self, *, resume: bool, overwrite: bool) -> set[str]:
        self._made_dir = not os.path.lexists(self.out_dir)
        if not self._made_dir and not self.out_dir.is_dir():
            raise OutputError(f"{self.out_dir}: not a folder")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{self.out_dir}: cannot create: {e.strerror or e}") from None
        if not os.access(self.out_dir, os.W_OK | os.X_OK):
            raise OutputError(f"{self.out_dir}: not writable")
        try:
            fd = os.open(self.out_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(f"{self.out_dir}: cannot write: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputError(f"{self.out_dir}: another dhlive batch is writing to this folder") from None
        self._lock_fd = fd
        try:
            return self._start(resume, overwrite)
        except BaseException:
            self.close()
            raise

    def _start(self, resume: bool, overwrite: bool) -> set[str]:
        # the lock is ours: anything in the work folder is left over from a stopped run
        shutil.rmtree(self.out_dir / WORK_DIR, ignore_errors=True)
        if self.path.exists() and not resume and not overwrite:
            raise OutputError(f"{self.path}: results of an earlier run are here; use --resume to finish "
                              "that run or --overwrite to render every job again")
        last: dict[str, dict] = {}
        if resume:
            for rec in read_results(self.path):
                last[rec["output"]] = rec
        self.kept = {name: rec for name, rec in last.items() if is_complete(self.out_dir, rec)}
        self._made_file = not self.path.exists()
        # rewrite with the kept lines only (temp + rename: a crash leaves the old file or the new)
        tmp = self.out_dir / f".{RESULTS_NAME}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in self.kept.values():
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        return set(self.kept)

    def write(self, rec: dict) -> None:
        """Append one record and push it to disk: a crash right after loses no finished job."""
        assert self._f is not None, "open() first"
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Release the folder. A run that finished no job (it could not start, or was stopped
        first) takes back the results file and folder it created, so trying again needs no
        --resume or --overwrite."""
        if self._f is not None:
            self._f.close()
            self._f = None
        work = self.out_dir / WORK_DIR
        shutil.rmtree(work, ignore_errors=True)
        if self._lock_fd is not None and self._made_file and _size(self.path) == 0:
            # (the file's size, not a count of write() calls: a stop can land inside write())
            _unlink(self.path)
            if self._made_dir:
                with contextlib.suppress(OSError):
                    if {p.name for p in self.out_dir.iterdir()} <= {LOCK_NAME}:
                        _unlink(self.out_dir / LOCK_NAME)
                        self.out_dir.rmdir()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return -1


def _unlink(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        p.unlink()


__all__ = ["RESULTS_NAME", "ResultsLog", "is_complete", "read_results"]
