"""Which onnxruntime wheel this environment has: exactly one of onnxruntime / onnxruntime-gpu.

Both wheels install the same `onnxruntime` module, so whichever pip installed last silently
overwrites the other's files and the result may match neither. `make setup` runs this module
after installing (`python -m dhlive_cli.runtime_check`, exit 1 with one `error:` line when
both or neither are present) and inference refuses to start in a mixed environment.
The list of distribution names is onnxruntime's own packaging (PyPI projects that ship the
`onnxruntime` import package).
"""

from __future__ import annotations

import functools
import os
import re
import sys

# PyPI distributions that provide the `onnxruntime` import package
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-silicon")


def _normalize(name: str) -> str:
    # PEP 503 name normalisation, with "_" (what wheels use in their .dist-info names) for "-"
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.lru_cache(maxsize=1)
def installed_onnxruntime() -> tuple[str, ...]:
    """Names (with versions, e.g. "onnxruntime 1.20.1") of the onnxruntime wheels installed
    where this interpreter looks (sys.path), sorted; empty when there is none.

    Read from the `NAME-VERSION.dist-info` folders an installer leaves beside the packages (the
    PyPA "Recording installed projects" specification), the first of each name along sys.path
    as importlib.metadata finds it: one directory listing per sys.path entry, about 1 ms, where
    importing importlib.metadata alone took 20-35 ms of every render's start-up."""
    wanted = {_normalize(d): d for d in ORT_DISTRIBUTIONS}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = [e.name for e in os.scandir(entry or ".") if e.name.endswith(".dist-info")]
        except OSError:  # not a folder (a zip), or gone
            continue
        for name in names:
            dist, sep, version = name[: -len(".dist-info")].partition("-")
            key = _normalize(dist)
            if sep and key in wanted and key not in found:
                found[key] = f"{wanted[key]} {version}"
    return tuple(sorted(found.values()))


def mixed_install_message() -> str | None:
    """The problem with this environment's onnxruntime wheels, or None when there is exactly one."""
    found = installed_onnxruntime()
    if len(found) > 1:
        return (f"{' and '.join(found)} are installed in one environment; they overwrite each other: "
                f"keep one (pip uninstall -y {' '.join(f.split()[0] for f in found)}, then install dhlive[cpu] or dhlive[gpu])")
    if not found:
        return "onnxruntime is not installed: pip install 'dhlive[cpu]' (or 'dhlive[gpu]' for CUDA)"
    return None


def main() -> int:
    problem = mixed_install_message()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"ok: {installed_onnxruntime()[0]} in {sys.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
