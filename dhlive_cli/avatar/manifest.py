"""avatar.toml, written by `dhlive avatar prepare` (read back with tomllib by compositor.load_avatar).

Values are ints, floats (6 decimals), booleans, strings and lists of them, top level or in one
level of tables; strings are TOML basic strings with backslash, quote and control characters
escaped (TOML 1.0, "String"), so any file name or --name reads back as written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_manifest"]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(round(float(v), 6))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    # a TOML basic string: backslash, quote and control characters escaped (a file name may hold
    # a newline, a --name an escape sequence; written raw they made the manifest unreadable)
    text = str(v).encode("utf-8", "replace").decode("utf-8")  # a name's undecodable bytes become "?"
    s = "".join(_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    return f'"{s}"'


_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def write_manifest(path: Path, spec: dict) -> None:
    """Write spec (a dict of values and of one level of tables) as avatar.toml, with a comment header."""
    lines = ["# An avatar made by `dhlive avatar prepare`; render with `dhlive render speech.wav -o out.mp4 --avatar DIR`.",
             "# [frames].loop: pingpong = the clip forwards then backwards; best = cut at the frame most like the",
             "# start with a short cross-fade; still = a photo (idle sway and blinks are made at run time).", ""]
    tables = {k: v for k, v in spec.items() if isinstance(v, dict)}
    for k, v in spec.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables.items():
        lines.append("")
        lines.append(f"[{name}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
    path.write_text("\n".join(lines) + "\n")
