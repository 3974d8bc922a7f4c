"""Job lists for `dhlive batch`: a CSV file with a header row, or JSON Lines (one object a line).

Keys (CSV columns): `audio` (speech file), `output` (a file name under the output folder,
.mp4 or .mkv, sub-folders allowed) and the optional `avatar` (avatar folder), `size`
(360p, 720p, 1080p or WxH) and `preset` (low, default, high or a .toml path). Relative
`audio` and `avatar` paths are taken from the job file's folder, so a job list can travel
with its media. Everything that can be checked without rendering is checked here, before
any job starts: the keys, output names (relative, unique, no `..`), sizes, presets and
avatar folders. The audio itself is not opened here: a bad audio file fails its own job only.
"""

from __future__ import annotations

import csv
import errno
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from dhlive_cli.errors import InputError

KEYS = ("audio", "output", "avatar", "size", "preset")
REQUIRED = ("audio", "output")
OUTPUT_SUFFIXES = (".mp4", ".mkv")
RESERVED_NAMES = ("results.jsonl",)
MAX_JOBS = 1_000_000  # a job list is read whole; this keeps a wrong file from eating memory


@dataclass(frozen=True, slots=True)
class Job:
    """One render: plain data (str/int/None), so it pickles cheaply to any worker.

    `index` is the job's 1-based position in the list and `line` the line of the file it came
    from (for messages); `audio` and `avatar` are absolute paths; `output` is the normalised
    relative name under the output folder (POSIX separators); `width`/`height` are pixels.
    """

    index: int
    line: int
    audio: str
    output: str
    avatar: str | None
    preset: str
    width: int
    height: int

    def to_dict(self) -> dict:
        return asdict(self)


def _output_name(raw: str, where: str) -> str:
    text = raw.strip()
    if not text:
        raise InputError(f"{where}: `output` is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InputError(f"{where}: output {raw!r} contains a control character")
    p = PurePosixPath(text.replace("\\", "/"))
    if p.is_absolute() or any(part in ("..", "") for part in p.parts) or text.startswith("~"):
        raise InputError(f"{where}: output {raw!r} must be a relative name inside --out-dir (no '..')")
    if any(part.startswith(".") for part in p.parts):
        raise InputError(f"{where}: output {raw!r}: names starting with '.' are reserved for work files")
    if p.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{where}: output {raw!r} must end in .mp4 or .mkv")
    if str(p) in RESERVED_NAMES:
        raise InputError(f"{where}: output {raw!r} is the results file's name")
    if any(len(part.encode()) > 200 for part in p.parts):
        raise InputError(f"{where}: output {raw!r}: a name part is longer than 200 bytes")
    return str(p)


class _RepeatedKey(ValueError):
    pass


def _no_repeated_keys(pairs: list[tuple]) -> dict:
    # json.loads keeps the last of two equal keys; a job line that names its output twice is a mistake
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise _RepeatedKey(k)
    return dict(pairs)


def _rows(path: Path):
    """(line number, dict of raw values) for each job row of a CSV or JSONL file."""
    suffix = path.suffix.lower()
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such job file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        try:
            if suffix == ".csv":
                reader = csv.DictReader(f)
                header = [h.strip() for h in (reader.fieldnames or [])]
                if not header:
                    raise InputError(f"{path}: empty CSV (expected a header row: {','.join(KEYS)})")
                unknown = [h for h in header if h not in KEYS]
                if unknown:
                    raise InputError(f"{path}: unknown column {unknown[0]!r} (columns: {', '.join(KEYS)})")
                twice = [h for h in KEYS if header.count(h) > 1]
                if twice:
                    raise InputError(f"{path}: column {twice[0]!r} appears twice in the header")
                missing = [k for k in REQUIRED if k not in header]
                if missing:
                    raise InputError(f"{path}: the header has no {missing[0]!r} column")
                reader.fieldnames = header
                for row in reader:
                    if None in row:  # more cells than columns
                        raise InputError(f"{path}:{reader.line_num}: more cells than header columns")
                    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
                    if not any(values.values()):
                        continue  # a blank line
                    yield reader.line_num, values
            elif suffix in (".jsonl", ".ndjson"):
                for n, text in enumerate(f, 1):
                    if not text.strip():
                        continue
                    try:
                        obj = json.loads(text, object_pairs_hook=_no_repeated_keys)
                    except _RepeatedKey as e:
                        raise InputError(f"{path}:{n}: key {e.args[0]!r} appears twice") from None
                    except ValueError as e:
                        raise InputError(f"{path}:{n}: not a JSON object: {e}") from None
                    if not isinstance(obj, dict):
                        raise InputError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
                    unknown = [k for k in obj if k not in KEYS]
                    if unknown:
                        raise InputError(f"{path}:{n}: unknown key {unknown[0]!r} (keys: {', '.join(KEYS)})")
                    bad = [k for k, v in obj.items() if v is not None and not isinstance(v, str)]
                    if bad:
                        raise InputError(f"{path}:{n}: {bad[0]!r} must be a string")
                    yield n, obj
            else:
                raise InputError(f"{path}: job file must be .csv or .jsonl")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except csv.Error as e:
            raise InputError(f"{path}: bad CSV: {e}") from None


def read_jobs(path: str | os.PathLike, *, default_preset: str = "default",
              default_size: str | None = None) -> list[Job]:
    """Parse and check a job file; raises InputError naming the file and line of the first problem.

    `default_preset` / `default_size` apply to rows that leave `preset` / `size` empty.
    """
    from dhlive_cli.presets import load_preset, parse_size

    path = Path(path)
    base = path.resolve().parent
    presets: dict[str, object] = {}
    avatars_ok: set[str] = set()
    seen: dict[str, int] = {}
    used_as_folder: dict[str, int] = {}  # lower-cased folder names of outputs -> first line using them
    jobs: list[Job] = []
    for line, row in _rows(path):
        where = f"{path}:{line}"
        for k in REQUIRED:
            if not (row.get(k) or "").strip():
                raise InputError(f"{where}: `{k}` is missing")
        output = _output_name(row["output"], where)
        key = output.lower()  # two names that differ only in case collide on some filesystems
        if key in seen:
            raise InputError(f"{where}: output {output!r} is already written by the job on line {seen[key]}")
        parts = PurePosixPath(key).parts
        folders = ["/".join(parts[:k]) for k in range(1, len(parts))]  # a/b/c.mp4 -> a, a/b
        other = used_as_folder.get(key) or next((seen[f] for f in folders if f in seen), None)
        if other is not None:
            raise InputError(f"{where}: output {output!r} and the output of the job on line {other} "
                             "would need one name as both a file and a folder")
        seen[key] = line
        for f in folders:
            used_as_folder.setdefault(f, line)
        audio = str((base / os.path.expanduser(row["audio"].strip())).absolute())
        avatar = (row.get("avatar") or "").strip() or None
        if avatar is not None:
            avatar = str((base / os.path.expanduser(avatar)).absolute())
            if avatar not in avatars_ok:
                if not (Path(avatar) / "avatar.toml").is_file():
                    raise InputError(f"{where}: avatar {row['avatar']!r} is not an avatar folder (no avatar.toml)")
                avatars_ok.add(avatar)
        preset_name = (row.get("preset") or "").strip() or default_preset
        if preset_name.endswith(".toml") and not Path(preset_name).is_absolute():
            preset_name = str(base / preset_name)
        if preset_name not in presets:
            try:
                presets[preset_name] = load_preset(preset_name)
            except InputError as e:
                raise InputError(f"{where}: {e}") from None
        preset = presets[preset_name]
        size = (row.get("size") or "").strip() or default_size
        try:
            w, h = parse_size(size) if size else (preset.width, preset.height)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
        jobs.append(Job(index=len(jobs) + 1, line=line, audio=audio, output=output, avatar=avatar,
                        preset=preset_name, width=w, height=h))
        if len(jobs) > MAX_JOBS:
            raise InputError(f"{path}: more than {MAX_JOBS} jobs; split the list")
    if not jobs:
        raise InputError(f"{path}: no jobs in the file")
    return jobs


def check_places(jobs: list[Job], out_dir: Path, jobs_file: str | os.PathLike) -> None:
    """What is already on disk under out_dir must let every job's output land there: no output
    whose place is a folder, none under a name that is a file (the results file included, which
    a fresh run has not made yet), none whose folder resolves (through symlinks) outside out_dir
    or into dhlive's work files, no two outputs that are one file through a symlinked folder, and
    the results file's name not taken by a folder. Checked before anything is created, so such a
    list is refused like a bad row (the worker checks the symlink again when it writes). Raises
    InputError naming the file and line."""
    from dhlive_cli.farm.results import RESULTS_NAME

    if out_dir.exists() and (out_dir / RESULTS_NAME).is_dir():
        raise InputError(f"{out_dir / RESULTS_NAME}: is a folder; the results file needs that name")
    try:
        root = out_dir.resolve() if out_dir.exists() else None
    except (OSError, RuntimeError) as e:
        raise InputError(f"{out_dir}: cannot follow its symlinks ({e})") from None
    same: dict[str, int] = {}  # resolved output, lower-cased -> first line
    for job in jobs:
        where = f"{jobs_file}:{job.line}: output {job.output!r}"
        parts = PurePosixPath(job.output).parts
        if parts[0].lower() == RESULTS_NAME:
            raise InputError(f"{where} would need {RESULTS_NAME}, the results file, as a folder")
        if root is None:
            continue  # nothing there yet: nothing in the way
        place = out_dir
        for k, part in enumerate(parts):
            place = place / part
            last = k == len(parts) - 1
            if not os.path.lexists(place):
                break
            try:
                os.stat(place)
            except OSError as e:  # there, yet it leads nowhere
                if e.errno == errno.ELOOP:
                    raise InputError(f"{where}: the symlinks at {place} loop") from None
                raise InputError(f"{where}: {place} is a symlink to nothing") from None
            if not last and not place.is_dir():
                raise InputError(f"{where} needs {place} as a folder, but it is a file")
            if last and place.is_dir():
                raise InputError(f"{where}: {place} is a folder")
        try:
            parent = (out_dir / job.output).parent.resolve()
        except (OSError, RuntimeError):
            raise InputError(f"{where}: its folder's symlinks cannot be followed (a loop?)") from None
        if not parent.is_relative_to(root):
            raise InputError(f"{where} leads out of --out-dir through a symlink (to {parent})")
        if any(p.startswith(".") for p in parent.relative_to(root).parts):
            raise InputError(f"{where} leads into dhlive's work files through a symlink (to {parent})")
        key = str(parent / PurePosixPath(job.output).name).lower()
        if key in same:
            raise InputError(f"{where} is the same file as the output of the job on line {same[key]} "
                             "(through a symlinked folder)")
        same[key] = job.line


__all__ = ["Job", "KEYS", "check_places", "read_jobs"]
