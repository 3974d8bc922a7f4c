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
import sys
from importlib import metadata

# PyPI distributions that provide the `onnxruntime` import package
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-silicon")


@functools.lru_cache(maxsize=1)
def installed_onnxruntime() -> tuple[str, ...]:
    """Names (with versions, e.g. "onnxruntime 1.20.1") of the onnxruntime wheels installed
    where this interpreter looks (sys.path), sorted; empty when there is none. Read once per
    process (about 1 ms, 200 ms with the first import of importlib.metadata)."""
    found = []
    for dist in ORT_DISTRIBUTIONS:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(sorted(found))


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
