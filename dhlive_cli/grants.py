"""Grants: the folders and hosts an operator lets API clients use, and file identity.

A client of the live API never gives a path or an address; it names a file inside a folder the
operator granted at start (`--output-dir`, `--media-dir`) or a host the operator allowed
(`--allow-rtmp`). Resolving a name either yields something inside the grant or fails with one
message that says nothing about what exists elsewhere.

Outputs are compared by identity, not by string: `output_identity()` gives the realpath and, for
a file that exists, its (st_dev, st_ino), so `/d/../d/a.mkv`, `//d/a.mkv` and a hard link of
`/d/a.mkv` are all the same recording.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dhlive_cli.errors import InputError, OutputError

# a client's file name: no separators, no leading dot or dash, no control characters
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
RECORDING_SUFFIXES = (".mp4", ".mkv")
RTMP_DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}  # the ports a URL without one connects to


def clean_text(value: str, what: str) -> str:
    """A client-supplied string that can become a path or an argument: no NUL, no lone
    surrogates (neither can be encoded for the OS). Raises InputError."""
    if "\x00" in value:
        raise InputError(f"{what}: contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what}: not valid Unicode text") from None
    return value


def output_identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(realpath, (st_dev, st_ino) or None when it does not exist yet) of a recording path."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real, None
    return real, (st.st_dev, st.st_ino)


def same_output(a: tuple[str, tuple[int, int] | None], b: tuple[str, tuple[int, int] | None]) -> bool:
    """Two output_identity() results name the same file: same realpath, or same (st_dev, st_ino)."""
    return a[0] == b[0] or (a[1] is not None and a[1] == b[1])


PORT_RE = re.compile(r"[1-9][0-9]{0,4}")  # a port as written plainly: no sign, no leading zero


def rtmp_key(url: str) -> tuple[str, str, int, str]:
    """An RTMP URL -> (scheme, host, port, path?query) that compares equal for every spelling of
    the same stream: scheme and host in lower case without a trailing dot, an IP address in its
    canonical form, the port as an int (1935 for rtmp, 443 for rtmps when absent). A port written
    oddly (leading zero, sign, empty, out of range) is refused. Raises InputError."""
    odd = InputError(f"rtmp {url[:120]!r}: expected rtmp[s]://HOST[:PORT]/APP/KEY with a plain port number")
    try:
        u = urlsplit(url)
        host = u.hostname
    except ValueError:
        raise odd from None
    scheme = u.scheme.lower()
    if scheme not in RTMP_DEFAULT_PORTS or not host:
        raise odd
    hostport = u.netloc.rpartition("@")[2]
    after = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    if ":" in after:
        raw = after.rpartition(":")[2]
        if not PORT_RE.fullmatch(raw) or int(raw) > 65535:
            raise odd
        port = int(raw)
    else:
        port = RTMP_DEFAULT_PORTS[scheme]
    host = host.lower().rstrip(".")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    path = u.path + (f"?{u.query}" if u.query else "")
    return scheme, host, port, path


def parse_rtmp_hosts(spec: str | None) -> frozenset[tuple[str, int]]:
    """`--allow-rtmp HOST[:PORT],...` -> {(host, port)}; a HOST alone means port 1935."""
    out = set()
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [v6]:port
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = item.partition(":") if item.count(":") <= 1 else (item, "", "")
        if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
            raise InputError(f"--allow-rtmp {item!r}: expected HOST or HOST:PORT")
        host = host.lower().rstrip(".")
        try:
            host = str(ipaddress.ip_address(host))  # as rtmp_key() writes it
        except ValueError:
            pass
        out.add((host, int(port) if port else 1935))
    return frozenset(out)


@dataclass(frozen=True)
class Grants:
    """What API-created sessions may use. Defaults: nothing (no file outputs, no media files,
    no RTMP hosts: such a session can only be asked for the embedded avatar and nothing else)."""

    output_dir: Path | None = None  # realpath of --output-dir
    media_dir: Path | None = None  # realpath of --media-dir
    rtmp_hosts: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def from_options(cls, output_dir: Path | None, media_dir: Path | None, allow_rtmp: str | None) -> "Grants":
        """Checks the folders exist and are folders. Raises InputError."""
        dirs = []
        for flag, d in (("--output-dir", output_dir), ("--media-dir", media_dir)):
            if d is None:
                dirs.append(None)
                continue
            real = Path(os.path.realpath(d))
            if not real.is_dir():
                raise InputError(f"{flag} {d}: not a directory")
            if flag == "--output-dir" and not os.access(real, os.W_OK | os.X_OK):
                raise InputError(f"{flag} {d}: not writable")
            dirs.append(real)
        return cls(output_dir=dirs[0], media_dir=dirs[1], rtmp_hosts=parse_rtmp_hosts(allow_rtmp))

    # ------------------------------------------------------------------ outputs
    def output_path(self, name: str, where: str) -> Path:
        """A client's recording name -> its path inside --output-dir (not created yet)."""
        if self.output_dir is None:
            raise InputError(f"{where}: file outputs are not granted (the operator starts dhlive with --output-dir DIR)")
        if not isinstance(name, str) or not FILE_NAME_RE.fullmatch(name) or ".." in name \
                or not name.lower().endswith(RECORDING_SUFFIXES):
            raise InputError(f"{where}: output must be a new file name such as \"take1.mkv\" (letters, digits, "
                             "'_', '-', '.', '+'; .mp4 or .mkv) inside the output folder")
        return self.output_dir / name

    def create_output(self, path: Path, where: str) -> int:
        """Create the recording file, refusing anything that exists (file, link, FIFO...).
        Returns the open descriptor (O_EXCL | O_NOFOLLOW): the caller owns it."""
        assert self.output_dir is not None and path.parent == self.output_dir
        dir_fd = os.open(self.output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                           0o644, dir_fd=dir_fd)
        except FileExistsError:
            raise OutputError(f"{where}: output {path.name!r} already exists in the output folder "
                              "(nothing is overwritten: pick a new name)") from None
        except OSError as e:
            raise OutputError(f"{where}: cannot create {path.name!r} in the output folder: {e.strerror or e}") from None
        finally:
            os.close(dir_fd)

    # ------------------------------------------------------------------ inputs
    def _media(self, name, where: str, what: str, want_dir: bool) -> Path:
        refused = InputError(f"{where}: {what} {str(name)[:80]!r}: no such {'avatar' if want_dir else 'media file'} "
                             "in the media folder")
        if self.media_dir is None:
            raise InputError(f"{where}: {what} files are not granted (the operator starts dhlive with --media-dir DIR)")
        if not isinstance(name, str) or not name:
            raise refused
        clean_text(name, where)
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") or p.startswith("-") for p in parts):
            raise refused
        real = Path(os.path.realpath(self.media_dir / name))
        if real != self.media_dir and self.media_dir not in real.parents:
            raise refused  # a symlink that leads out of the grant: the same answer as "not there"
        try:
            st = os.stat(real)
        except OSError:
            raise refused from None
        if (stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)) is False:
            raise refused
        return real

    def media_file(self, name, where: str) -> Path:
        """A client's input name -> a regular file inside --media-dir. Raises InputError."""
        return self._media(name, where, "input", want_dir=False)

    def media_identity(self, path: Path, where: str) -> tuple[int, int]:
        """(st_dev, st_ino) of a file media_file() accepted, taken from a descriptor opened with
        O_NOFOLLOW whose real location (/proc/self/fd) is checked to lie inside --media-dir: the
        identity a player compares against when it opens the file later. Raises InputError."""
        refused = InputError(f"{where}: input {path.name!r}: no such media file in the media folder")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            raise refused from None
        try:
            st = os.fstat(fd)
            real = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if not stat.S_ISREG(st.st_mode) or self.media_dir is None or self.media_dir not in real.parents:
                raise refused
            return st.st_dev, st.st_ino
        finally:
            os.close(fd)

    def avatar_dir(self, name, where: str) -> Path:
        """A client's avatar name -> a folder inside --media-dir. Raises InputError."""
        return self._media(name, where, "avatar", want_dir=True)

    # ------------------------------------------------------------------ hosts
    def rtmp_url(self, url: str, where: str) -> str:
        """A client's RTMP URL, allowed only to a granted host:port. Raises InputError."""
        refused = InputError(f"{where}: rtmp target not allowed (the operator grants hosts with --allow-rtmp HOST[:PORT])")
        clean_text(url, where)
        try:
            u = urlsplit(url)
            _, host, port, _ = rtmp_key(url)
        except (ValueError, InputError):
            raise refused from None
        if u.username or u.password or "@" in u.netloc:
            raise refused
        if (host, port) not in self.rtmp_hosts and (u.hostname.lower().rstrip("."), port) not in self.rtmp_hosts:
            raise refused
        return url


__all__ = ["Grants", "clean_text", "output_identity", "same_output", "parse_rtmp_hosts", "rtmp_key", "FILE_NAME_RE"]
