"""Finding the converted face models and opening them on onnxruntime.

The .onnx files are generated at set-up time (`python -m dhlive_cli.face.convert`, run by
`make setup`) and a wheel built by `make dist` carries them (dhlive_cli/models/face), so no
download or conversion happens at run time. A missing file means set-up did not run or the
wheel was built without them: that is a DependencyError with the command that fixes it, not an
InputError about the user's avatar.
"""

from __future__ import annotations

import os
from pathlib import Path

from dhlive_cli import resources
from dhlive_cli.errors import DependencyError, EngineError

DEFAULT_MODELS_DIR = resources.face_models_dir()
DETECTOR_FILE = "face_detection_short_range.onnx"
MESH_FILE = "face_landmark.onnx"


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
    """
    from dhlive_cli.inference import _import_ort

    ort = _import_ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise EngineError(f"cannot load face model {path}: {e}; re-run `make setup`") from e
