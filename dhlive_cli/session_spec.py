"""What one live session is: its name, avatar, outputs and inputs, from a sessions file
(`dhlive live --sessions FILE.toml`), the command line or POST /v1/sessions, checked before
anything starts. The Studio runs them (studio.py).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dhlive_cli.errors import InputError
from dhlive_cli.grants import Grants, clean_text, rtmp_key
from dhlive_cli.presets import parse_size

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SPEC_KEYS = {"name", "avatar", "rtmp", "output", "input", "loop", "size", "crossfade_ms", "hangover_ms"}


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What one session shows and where it goes. Paths are absolute once parsed."""

    name: str
    avatar: Path | None = None  # None: the embedded drawn avatar
    rtmp: tuple[str, ...] = ()
    srt: tuple[str, ...] = ()  # SRT targets (MPEG-TS): the command line's session only
    output: Path | None = None  # a recording (.mp4 / .mkv)
    inputs: tuple[str, ...] = ()  # files, "-" (stdin PCM) or "mic[:DEVICE]"
    loop: bool = False
    size: str | None = None  # None: the preset's size
    crossfade_ms: int = 160
    hangover_ms: int = 400
    # made by an API client: its output is created exclusively (O_EXCL) inside the granted folder,
    # its size is capped and counted against the pixel budget
    from_api: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, d: dict, *, base: Path, where: str, local_inputs: bool = True,
                  grants: "Grants | None" = None) -> "SessionSpec":
        """One session table (TOML) or JSON object. Relative paths are taken from `base`.

        With `grants` (an API client's spec) nothing is a path: inputs and the avatar are names
        inside the media folder, the output a new file name inside the output folder, RTMP URLs
        only to allowed hosts; stdin and the microphone are refused. Raises InputError."""
        if grants is not None:
            local_inputs = False
        if not isinstance(d, dict):
            raise InputError(f"{where}: a session must be a table/object, not {type(d).__name__}")
        unknown = sorted(set(d) - SPEC_KEYS)
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(SPEC_KEYS))})")
        name = d.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InputError(f"{where}: name {name!r} must be 1-64 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit")
        where = f"{where} ({name})"

        def strings(key: str) -> tuple[str, ...]:
            v = d.get(key, ())
            v = (v,) if isinstance(v, str) else v
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
                raise InputError(f"{where}: {key} must be a string or a list of strings")
            return tuple(clean_text(x, f"{where}: {key}") for x in v)

        def path(v) -> Path:
            p = Path(v).expanduser()
            return p if p.is_absolute() else base / p

        rtmp = strings("rtmp")
        for url in rtmp:
            if not url.startswith(("rtmp://", "rtmps://")):
                raise InputError(f"{where}: rtmp must start with rtmp:// or rtmps://")  # not echoed: it may hold a key
            if grants is not None:
                grants.rtmp_url(url, where)
            else:
                try:
                    rtmp_key(url)  # an odd port spelling is refused here too
                except InputError as e:
                    raise InputError(f"{where}: {e}") from None
        inputs = []
        for i in strings("input"):
            if i == "-" or i == "mic" or i.startswith("mic:"):
                if not local_inputs:
                    raise InputError(f"{where}: input {i!r} is only for sessions started from the command line")
                inputs.append(i)
            elif grants is not None:
                inputs.append(str(grants.media_file(i, where)))
            else:
                inputs.append(str(path(i)))
        output = d.get("output")
        if output is not None and (not isinstance(output, str) or not output):
            raise InputError(f"{where}: output must be a file name")
        if output is not None:
            clean_text(output, f"{where}: output")
            if output == "-":  # a file named "-" beside the sessions file was written
                raise InputError(f'{where}: output "-": a sessions file names files; to stream one session '
                                 'to standard output, give output = "/dev/stdout"')
        if not rtmp and output is None:
            raise InputError(f"{where}: nothing to stream to: give rtmp and/or output")
        avatar = d.get("avatar")
        if avatar is not None and (not isinstance(avatar, str) or not avatar):
            raise InputError(f"{where}: avatar must be a directory name")
        if grants is not None:
            out_path = grants.output_path(output, where) if output is not None else None
            av_path = grants.avatar_dir(avatar, where) if avatar is not None else None
        else:
            out_path = path(clean_text(output, where)) if output else None
            av_path = path(clean_text(avatar, where)) if avatar else None
        size = d.get("size")
        if size is not None:
            if not isinstance(size, str):
                raise InputError(f"{where}: size must be a string such as \"360p\" or \"640x360\"")
            parse_size(clean_text(size, where))
        loop = d.get("loop", False)
        if not isinstance(loop, bool):
            raise InputError(f"{where}: loop must be true or false")
        ms = {}
        for key, default in (("crossfade_ms", 160), ("hangover_ms", 400)):
            v = d.get(key, default)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 5000:
                raise InputError(f"{where}: {key} must be an integer 0..5000")
            ms[key] = v
        return cls(name=name, avatar=av_path, rtmp=rtmp, output=out_path, inputs=tuple(inputs), loop=loop,
                   size=size, from_api=grants is not None, **ms)


def load_sessions_file(path: Path) -> tuple[dict, list[SessionSpec]]:
    """A sessions TOML: optional top-level `preset`/`size`, then [[session]] tables."""
    try:
        d = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: {e}") from None
    tables = d.pop("session", None)
    if not isinstance(tables, list) or not tables:
        raise InputError(f"{path}: no [[session]] tables")
    top = {k: d.pop(k) for k in ("preset", "size") if k in d}
    if d:
        raise InputError(f"{path}: unknown top-level key {sorted(d)[0]!r} (known: preset, size, [[session]])")
    for k, v in top.items():
        if not isinstance(v, str) or not v:
            raise InputError(f"{path}: {k} must be a string such as "
                             + ('"low"' if k == "preset" else '"360p" or "640x360"') + f", not {v!r}")
    if "size" in top:
        parse_size(top["size"])
    base = path.resolve().parent
    specs = [SessionSpec.from_dict(t, base=base, where=f"{path} session {i + 1}") for i, t in enumerate(tables)]
    names = [s.name for s in specs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"{path}: two sessions are named {dup!r}")
    if sum(i == "-" for s in specs for i in s.inputs) > 1:
        raise InputError(f"{path}: only one session can read stdin (input \"-\")")
    if sum(i.startswith("mic") for s in specs for i in s.inputs) > 1:
        raise InputError(f"{path}: only one session can use the microphone")
    return top, specs

__all__ = ["NAME_RE", "SPEC_KEYS", "SessionSpec", "load_sessions_file"]
