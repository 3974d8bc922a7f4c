"""Mouth model on onnxruntime: one loaded model, a pool of sessions shared by every session.

ONNX contract: input `mel` float32 [N, past + ahead, 40] (features.model windows), output
`mouth` float32 [N, 4] in [0, 1] (open, spread, round, close); metadata names the feature
spec and the window. Sessions are built once with explicit options; `infer` is thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dhlive_cli import resources
from dhlive_cli.errors import DependencyError, InputError
from dhlive_cli.features import FEATURE_SPEC, N_MELS

log = logging.getLogger(__name__)

MODELS_DIR = resources.models_dir()
PARAMS = ("open", "spread", "round", "close")


def default_model_path() -> Path:
    """$DHLIVE_MODEL, else the newest trained model there is (lipsync-v2, then v1), else the baseline."""
    env = os.environ.get("DHLIVE_MODEL")
    if env:
        return Path(env)
    for name in ("lipsync-v2.onnx", "lipsync-v1.onnx", "baseline.onnx"):
        p = MODELS_DIR / name
        if p.is_file():
            return p
    fix = "run `make setup`" if resources.in_checkout() else "reinstall dhlive (the wheel carries the models)"
    raise DependencyError(f"no mouth model in {MODELS_DIR}: {fix}")


def _import_ort():
    from dhlive_cli.interrupts import interrupts_held
    from dhlive_cli.runtime_check import installed_onnxruntime, mixed_install_message

    if len(installed_onnxruntime()) > 1:  # both wheels: the module on disk may match neither
        raise DependencyError(mixed_install_message())
    # onnxruntime's import writes a telemetry device ID and event database into the user's cache
    # ($XDG_CACHE_HOME/Microsoft/DeveloperTools) and, where that is read-only (a service account,
    # a container), prints a warning on every start. dhlive writes nowhere it was not asked to:
    # off unless the user sets ORT_DISABLE_TELEMETRY=0 (onnxruntime's own switch).
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        # an interrupt during this import comes out as ImportError("import numpy failed") from
        # onnxruntime's extension; held, it is raised as itself once the import is done (interrupts)
        with interrupts_held():
            import onnxruntime as ort
    except ImportError as e:
        raise DependencyError(
            "onnxruntime is not installed: pip install 'dhlive[cpu]' (or 'dhlive[gpu]' for CUDA)"
        ) from e
    # CUDA-missing warnings on CPU-only hosts are noise for a user: errors only.
    ort.set_default_logger_severity(3)
    return ort


def check_device(device: str) -> None:
    """--device as InferencePool will take it: auto, cpu or cuda, and for cuda an onnxruntime
    with the CUDA provider. Raises InputError / DependencyError (the same lines the pool
    raises), so a command can refuse before it starts anything or warns about the encoder."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, not {device!r}")
    if device == "cuda" and "CUDAExecutionProvider" not in _import_ort().get_available_providers():
        raise DependencyError("--device cuda: this onnxruntime has no CUDA provider (install dhlive[gpu])")


@dataclass(frozen=True, slots=True)
class InferenceOptions:
    """How the model runs. `sessions` > 1 lets several callers infer truly in parallel."""

    device: str = "auto"  # auto | cpu | cuda
    sessions: int = 1
    intra_threads: int = 1  # per session; the encoder wants the other cores
    max_batch: int = 256


class InferencePool:
    def __init__(self, model_path: str | os.PathLike | None = None, options: InferenceOptions | None = None):
        ort = _import_ort()
        self.options = options or InferenceOptions()
        self.model_path = Path(model_path) if model_path else default_model_path()
        # a path set long ago in a shell profile is not obvious: errors say where it came from
        origin = " (from DHLIVE_MODEL)" if not model_path and os.environ.get("DHLIVE_MODEL") else ""
        if not self.model_path.is_file():
            raise InputError(f"model not found: {self.model_path}{origin}")
        device = self.options.device
        check_device(device)
        want_cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
        self._sessions = []
        self._locks = []
        for _ in range(max(1, self.options.sessions)):
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.options.intra_threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                sess = ort.InferenceSession(str(self.model_path), sess_options=so, providers=providers)
            except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
                raise InputError(f"cannot load model {self.model_path}{origin}: {e}") from e
            self._sessions.append(sess)
            self._locks.append(threading.Lock())
        # get_available_providers() lists CUDA even where no GPU works; the session knows.
        self.provider = self._sessions[0].get_providers()[0]
        if device == "cuda" and self.provider != "CUDAExecutionProvider":
            raise DependencyError("--device cuda: CUDA provider failed to initialise (no usable GPU)")
        meta = self._sessions[0].get_modelmeta().custom_metadata_map
        spec = meta.get("dhlive.features")
        if spec != FEATURE_SPEC:
            raise InputError(f"model {self.model_path.name}{origin} expects features {spec!r}, engine makes {FEATURE_SPEC!r}")
        self.past = int(meta["dhlive.window_past"])
        self.ahead = int(meta["dhlive.window_ahead"])
        self.name = meta.get("dhlive.model", self.model_path.stem)
        self.kind = meta.get("dhlive.kind", "unknown")
        self.window = self.past + self.ahead
        self._next = 0
        self._rr_lock = threading.Lock()
        self.calls = 0  # inference calls made (for stats: calls per tick)
        log.info("model %s (%s) on %s, window %d+%d", self.name, self.kind, self.provider, self.past, self.ahead)

    @property
    def n_mels(self) -> int:
        return N_MELS

    def infer(self, windows: np.ndarray, out: np.ndarray) -> None:
        """windows (n, T, 40) -> out (n, 4). Splits batches larger than max_batch."""
        n = windows.shape[0]
        if n == 0:
            return
        with self._rr_lock:
            i = self._next
            self._next = (i + 1) % len(self._sessions)
            self.calls += 1
        sess, lock = self._sessions[i], self._locks[i]
        step = self.options.max_batch
        with lock:
            for s in range(0, n, step):
                res = sess.run(("mouth",), {"mel": windows[s : s + step]})[0]
                np.clip(res, 0.0, 1.0, out=out[s : s + step])
