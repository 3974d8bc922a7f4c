"""Finding the converted face models and opening them on onnxruntime.

The .onnx files are generated at set-up time (`python -m dhlive_cli.face.convert`, run by
`make setup`) and a wheel built by `make dist` carries them (dhlive_cli/models/face), so no
download or conversion happens at run time. A missing file means set-up did not run or the
wheel was built without them: that is a DependencyError with the command that fixes it, not an
InputError about the user's avatar. So is a file whose sha256 is not the one the converter writes
(checked once per process before the file is opened).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from dhlive_cli import resources
from dhlive_cli.errors import DependencyError, EngineError

DEFAULT_MODELS_DIR = resources.face_models_dir()
DETECTOR_FILE = "face_detection_short_range.onnx"
MESH_FILE = "face_landmark.onnx"
# sha256 of the two files as dhlive_cli/face/convert.py writes them. The conversion is
# deterministic (pinned IR version and opset, deterministic protobuf serialisation), so any other
# hash is a damaged file (flipped bytes in the weights still load and then find no face) or a
# converter changed without updating these lines.
SHA256 = {
    DETECTOR_FILE: "e41aa6fd7f8bb72e75c890b616bc1f110e47620be00971cfeaafeb36057eb1b1",
    MESH_FILE: "2150cc4fc3dbe34885843dee0dd2a5102f87c356776642decff937265cea7d99",
}


def _fix_hint(folder: Path) -> str:
    """What repairs the face models in `folder`: reinstalling the wheel, or converting again."""
    if folder == DEFAULT_MODELS_DIR and not resources.in_checkout():
        return "reinstall dhlive (pip install --force-reinstall --no-deps, with the wheel file or `dhlive`)"
    return f"convert them again: python -m dhlive_cli.face.convert --out {folder}"


@functools.lru_cache(maxsize=8)
def _sha256_mismatch(path: Path, size: int, mtime_ns: int) -> str | None:
    """None when the file at `path` has its expected sha256, else the hash it has (one read of
    a few MB per process and file version: size and mtime are part of the cache key)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    return None if digest == SHA256[path.name] else digest


def model_path(models_dir: str | os.PathLike | None, filename: str) -> Path:
    """The model file in `models_dir` (default: resources.face_models_dir()); DependencyError if absent."""
    folder = Path(models_dir) if models_dir is not None else DEFAULT_MODELS_DIR
    path = folder / filename
    if not path.is_file():
        if models_dir is None and not resources.in_checkout():
            fix = "this dhlive wheel was built without them: build it with `make dist` and reinstall"
        else:
            fix = f"run `make setup` (or `python -m dhlive_cli.face.convert --out {folder}`)"
        raise DependencyError(f"face models missing: {fix}; {path} not found")
    return path


def open_session(path: Path, *, threads: int = 1):
    """One CPU session with explicit options, like dhlive_cli.inference.

    These models are tiny (a few ms per call); one or two threads are enough and leave the
    other cores to the encoder and the mouth model. CPU only on purpose: per-call transfer to a
    GPU would cost more than the model itself.

    Raises DependencyError when the detector or mesh file's sha256 is not SHA256's (a damaged
    file), EngineError when onnxruntime cannot load the file.
    """
    from dhlive_cli.inference import _import_ort

    if path.name in SHA256:
        st = path.stat()
        digest = _sha256_mismatch(path, st.st_size, st.st_mtime_ns)
        if digest is not None:
            raise DependencyError(f"face model {path} is damaged (sha256 {digest[:12]}..., expected "
                                  f"{SHA256[path.name][:12]}...): {_fix_hint(path.parent)}")
    ort = _import_ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise EngineError(f"cannot load face model {path}: {e}; {_fix_hint(path.parent)}") from e
