"""Output paths of a render: checked before anything starts, written beside and renamed into place.

A render writes `.NAME.dhlive-partial-RANDOM.EXT` next to its output (a new file of its own:
`create_sibling`) and renames it when complete, so a file at the output path is always whole; a device (/dev/null, /dev/full) or a FIFO is written in
place; an output that is a symbolic link keeps it: the file it leads to is the one replaced
(`replaced_path`). Errors are OutputError, one line each.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from dhlive_cli.errors import OutputError


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as e:  # a name too long, a path through a file
        raise OutputError(f"{path}: {e.strerror or e}") from e


def is_special_file(path: str | os.PathLike) -> bool:
    """An existing output that is not a regular file (/dev/null, /dev/full, a FIFO): it is
    written in place. Writing beside it and renaming over it would replace the device node."""
    st = _stat(Path(path))
    return st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def _own_fd_dirs() -> set[str]:
    pid = os.getpid()
    dirs = {f"/proc/{pid}/fd"}
    try:
        dirs |= {f"/proc/{pid}/task/{t}/fd" for t in os.listdir(f"/proc/{pid}/task")}
    except OSError:  # no /proc: then no path names a descriptor either
        pass
    return dirs


_inherited: frozenset[int] | None = None  # the descriptors the process started with (the entry point notes them)


def note_inherited_descriptors() -> None:
    """Remember the descriptors this process was started with (the entry point calls this before
    it opens anything): `-o /dev/fd/N` may name only those, never one dhlive opened itself (its
    metrics socket, its pipes), which a recording would otherwise be written into."""
    global _inherited
    try:
        listed = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: names of descriptors do not resolve either
        return
    alive = set()
    for fd in listed:  # the listing's own descriptor is among them, closed again by now
        try:
            os.fstat(fd)
            alive.add(fd)
        except OSError:
            pass
    _inherited = frozenset(alive)


def own_descriptor(path: str | os.PathLike) -> int | None:
    """The number N of this process's open descriptor that path names (/dev/stdout -> 1,
    /dev/fd/N, /proc/self/fd/N, or a chain of links leading to one), else None. Such a name
    means something else in a child, whose descriptors are its own (an encoder whose stdout is
    /dev/null would write there): the descriptor itself is handed over (`writable_descriptor`).
    Each link is followed one at a time (at most 40, as the kernel does) and each folder on the
    way resolved as the kernel does ("links/../fd" is the folder the link leads to, then up)."""
    dirs = _own_fd_dirs()
    p = os.fspath(path)
    for _ in range(40):
        parent, name = os.path.split(p)
        real_parent = os.path.realpath(parent or ".")
        if name.isdigit() and name == str(int(name)) and real_parent in dirs:  # /proc has no "01"
            return int(name)
        try:
            link = os.readlink(p)
        except OSError:  # not a link (or not there): the chain ends on an ordinary name
            return None
        p = os.path.join(real_parent, link)
    return None


def names_own_descriptor(path: str | os.PathLike) -> bool:
    """True when path names one of this process's descriptors (own_descriptor)."""
    return own_descriptor(path) is not None


def writable_descriptor(path: str | os.PathLike, input_path: str | os.PathLike | None = None) -> int:
    """A duplicate (close-on-exec) of the descriptor path names (own_descriptor), for an encoder
    child to write to as it is: a file given with `>>` is appended to, a socket or pipe written,
    nothing opened again or truncated. Raises OutputError when it is not open, was closed when
    the process started (dhlive then holds /dev/null there: the output would be lost), is open
    for reading only, is standard error's file, or is the input (stdin included:
    `-o /dev/stdin < speech.wav`)."""
    fd = own_descriptor(path)
    if fd is None:
        raise ValueError(f"{path} names no descriptor of this process")
    check_output_descriptor(fd, str(path), input_path)
    return os.dup(fd)


def closed_at_start(fd: int) -> str | None:
    """"standard input/output/error" when fd is one of those and was closed when the process
    started (dhlive then holds /dev/null there: what is written is lost), else None."""
    import sys

    started = {0: sys.__stdin__, 1: sys.__stdout__, 2: sys.__stderr__}
    if fd in started and started[fd] is None:
        return ("standard input", "standard output", "standard error")[fd]
    return None


def check_output_descriptor(fd: int, label: str, input_path: str | os.PathLike | None = None) -> None:
    """Raise OutputError (its message starting with `label`) unless descriptor fd can take a
    video: open since the process started, writable, not a terminal, not where dhlive's messages go (standard
    error's file or pipe, a terminal excepted) and not the input file. `-o -` (fd 1) is judged
    by it as `-o /dev/fd/N` is."""
    closed = closed_at_start(fd)
    if closed:
        raise OutputError(f"{label}: {closed} is closed")
    try:
        if _inherited is not None and fd not in _inherited:
            raise OSError  # ours (a socket, a pipe), not one the user gave
        st = os.fstat(fd)
        mode = fcntl_flags(fd) & os.O_ACCMODE
    except OSError:
        raise OutputError(f"{label}: descriptor {fd} is not open") from None
    if mode == os.O_RDONLY:
        raise OutputError(f"{label}: descriptor {fd} is open for reading only")
    if os.isatty(fd):  # the video's bytes would be printed on it as text, garbling the terminal
        raise OutputError(f"{label}: is a terminal; pipe the video to a player (| ffplay -) or redirect it "
                          "to a file (> out.mkv)")
    if fd == 2 or same_open_file(fd, 2):
        raise OutputError(f"{label}: that is also standard error, where dhlive writes its messages "
                          "(send them elsewhere, e.g. 2>dhlive.log)")
    if input_path is not None:
        try:
            src = os.fstat(0) if str(input_path) == "-" else os.stat(input_path)
        except OSError:
            src = None
        if src is not None and (src.st_dev, src.st_ino) == (st.st_dev, st.st_ino) and stat.S_ISREG(st.st_mode):
            raise OutputError(f"{label}: is the input file; give a different output name")


def same_open_file(fd: int, other: int) -> bool:
    """fd and other lead to the same file, pipe or socket (not a terminal: one terminal is often
    every standard descriptor, and what is written there is read by a person)."""
    try:
        a, b = os.fstat(fd), os.fstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and not stat.S_ISCHR(a.st_mode)


def names_file_of(path: str | os.PathLike, other: int) -> bool:
    """path names one of our descriptors (own_descriptor) that leads where descriptor `other` does."""
    fd = own_descriptor(path)
    return fd is not None and (fd == other or same_open_file(fd, other))


def fcntl_flags(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL)


def replaced_path(out: Path) -> Path:
    """The file a complete output is renamed onto: out itself, or, when out is a symbolic link,
    the path its link(s) lead to (renaming onto the link's own name would replace the link)."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def sibling_name(out: Path, tag: str, suffix: str = "") -> Path:
    """.NAME.TAG[SUFFIX] beside out, NAME shortened so the whole stays within NAME_MAX (255 bytes)."""
    name = out.name
    while len(f".{name}.{tag}{suffix}".encode()) > 255:
        name = name[:-1]
    return out.with_name(f".{name}.{tag}{suffix}")


def create_sibling(out: Path, tag: str, suffix: str = "") -> tuple[Path, int]:
    """A new, empty file beside out for work in progress: .NAME.TAG-PID-RANDOM[SUFFIX] (NAME
    shortened so the whole stays within NAME_MAX), created with O_CREAT | O_EXCL | O_NOFOLLOW,
    mode 0666 less the umask. A fixed name could be planted beforehand: a symbolic link there
    led the work, and then the rename, into another file (the link's target overwritten), and
    two runs to one output shared one work file (the second's video renamed away under the
    first, an empty output). Returns (path, descriptor open for writing, close-on-exec); the
    caller owns both. Raises OutputError when the folder refuses a new file."""
    import secrets

    for _ in range(16):
        path = sibling_name(out, f"{tag}-{os.getpid()}-{secrets.token_hex(4)}", suffix)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            return path, fd
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(f"{out}: cannot write in {path.parent}: {e.strerror or e}") from e
    raise OutputError(f"{out}: cannot find a free work-file name in {out.parent}")


def remove_stale_siblings(out: Path, tag: str) -> list[Path]:
    """Remove the work files create_sibling made beside out for processes that are gone (a
    render SIGKILLed, a machine that lost power): .NAME.TAG-PID-RANDOM* whose PID runs no
    process any more. Only regular files of this user are touched, never a link; a name that
    does not parse, or whose PID is alive (any process: a reused PID keeps its file), stays.
    Returns what was removed. Never raises."""
    import re

    removed = []
    prefix = sibling_name(out, f"{tag}-", "").name
    pattern = re.compile(re.escape(prefix) + r"([0-9]+)-[0-9a-f]{8}(\.[^/]*)?")
    try:
        names = os.listdir(out.parent if str(out.parent) else ".")
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        p = out.with_name(name)
        try:
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed


def check_output_path(output: str | os.PathLike) -> Path:
    out = Path(output)
    if names_own_descriptor(out):  # /dev/stdout: judged where it is taken (writable_descriptor)
        return out
    st = _stat(out)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{out}: is a directory; give a file name such as {out / 'out.mp4'}")
    if len(out.name.encode()) > 255:
        raise OutputError(f"{out}: file name too long")
    if st is not None and not stat.S_ISREG(st.st_mode):  # a device or FIFO: written in place
        if not os.access(out, os.W_OK):
            raise OutputError(f"{out}: not writable")
        return out
    place = replaced_path(out)  # a link's target is where the file is written
    parent = place.parent if str(place.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: directory {parent} is not writable")
    if st is not None and not os.access(out, os.W_OK):
        raise OutputError(f"{out}: file exists and is not writable")
    # os.access says yes to root everywhere; only creating a file proves the place is writable
    probe, fd = create_sibling(place, "dhlive-probe")  # OutputError when the folder refuses it
    os.close(fd)
    try:
        probe.unlink()
    except OSError:
        pass
    return out


def _recorded_elsewhere(output) -> OutputError:
    return OutputError(f"{output}: another dhlive process is recording to this file; give a different output name")


def hold_recording(output: Path) -> tuple[int, bool] | None:
    """Claim a live recording's file for this process: an exclusive advisory lock (flock(2)) on
    it, held while the returned descriptor is open, so a second dhlive (live or render) refuses
    that file instead of truncating or replacing it under the first one's encoder (the first
    recording was left with a broken header). The file is created empty if it did not exist
    (a link to a file not there yet: its target); an existing one is not truncated (its encoder
    does that once the start is accepted). Returns (descriptor, created) or None where the
    output is not a regular file: a device or a FIFO is written in place and never opened here
    (opening and closing a FIFO gave its waiting reader an end of file). Raises OutputError
    when another process holds it, or the file cannot be made or opened."""
    import fcntl

    target = replaced_path(output)
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"{output}: cannot open: {e.strerror or e}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        return None
    created = False
    try:
        if st is None:
            try:
                fd = os.open(target, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                created = True
            except FileExistsError:  # made by someone else just now: claimed like any existing file
                fd = os.open(target, flags)
        else:
            fd = os.open(target, flags)
    except OSError as e:
        raise OutputError(f"{output}: cannot open: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        if created:
            os.unlink(target)
        raise _recorded_elsewhere(output) from None
    return fd, created


def check_not_recording(output: Path) -> None:
    """A render's output that another dhlive process is recording to right now (hold_recording)
    is refused: renaming the finished video over it would leave that recording writing into a
    file nobody can reach. Raises OutputError; a path that is missing or cannot be opened for
    reading is left to the other checks."""
    try:
        fd = os.open(output, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise _recorded_elsewhere(output) from None
    finally:
        os.close(fd)  # our shared lock goes with it


def check_not_input(output: Path, input_path: str | os.PathLike) -> None:
    """Writing the output over the input would destroy the user's speech file (stdin's too:
    `render - -o talk.mp4 < talk.mp4`)."""
    try:
        if str(input_path) == "-":
            a, b = os.stat(output), os.fstat(0)
            same = (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and stat.S_ISREG(a.st_mode)
        else:
            same = os.path.samefile(output, input_path)
    except OSError:  # one of them does not exist (yet)
        return
    if same:
        raise OutputError(f"{output}: is the input file; give a different output name")


def write_png(path: str | os.PathLike, img) -> None:
    """img (uint8 array, (h, w) or (h, w, 3) BGR) to a PNG file at path: encoded in memory by
    OpenCV, written to a hidden file beside path and renamed over it, so path is either its old
    self or the whole new picture: a full disk leaves no cut-off PNG, an existing one is not
    truncated, and a symlink or FIFO at path is replaced rather than written through.
    (cv2.imwrite on a full disk printed libpng's own "libpng error: Write Error" on stderr beside
    dhlive's line and hid the reason.) The new file gets the old one's permissions, else 0644.
    Raises OutputError naming path and the reason (no space left on device, permission denied)."""
    import cv2
    import tempfile

    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OutputError(f"{path}: cannot encode the picture as PNG")
    path = os.fspath(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isfile(path) else 0o644
    except OSError:
        mode = 0o644
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".png.part", dir=os.path.dirname(os.path.abspath(path)))
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(buf.tobytes())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise OutputError(f"{path}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
