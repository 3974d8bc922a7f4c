"""Where dhlive's bundled data lives: models, presets, the default avatar, the speech sample.

Installed from a wheel, the top-level `models/` and `presets/` folders of the source tree are
the subpackages `dhlive_cli.bundled_models` and `dhlive_cli.bundled_presets` (setup.py maps
them), so they are found with importlib.resources next to the code. In a source checkout run without installing
(`PYTHONPATH=.` or an editable install whose finder does not map them), the same folders are
found at the top of the checkout. Every module that reads bundled data asks here, so the two
layouts cannot drift apart.

Only real directories are returned (a zipped install is not supported): onnxruntime, ffmpeg and
tomllib all want file-system paths.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE = "dhlive_cli"
# the top of a source checkout: dhlive_cli/ sits in it next to models/ and presets/
_CHECKOUT = Path(__file__).resolve().parent.parent


def _bundled(name: str) -> Path:
    """The folder `name` ("models" or "presets") of the installed package, else of the checkout.

    Returns the installed folder when it exists, otherwise the checkout's one (which may be
    missing too: callers report a missing file with the file's own path).
    """
    try:
        installed = resources.files(_PACKAGE) / f"bundled_{name}"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - the package imports itself
        installed = None
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return _CHECKOUT / name


def models_dir() -> Path:
    """Folder of the ONNX mouth models (lipsync-v*.onnx, baseline.onnx) and their card."""
    return _bundled("models")


def face_models_dir() -> Path:
    """Folder of the converted MediaPipe face detector and face mesh (`make setup` in a
    checkout; built into the wheel by `make dist`)."""
    return models_dir() / "face"


def presets_dir() -> Path:
    """Folder of the preset TOML files (low, default, high)."""
    return _bundled("presets")


def default_avatar_dir() -> Path:
    """The embedded drawn avatar used when no --avatar is given."""
    return presets_dir() / "avatars" / "default"


def sample_speech() -> Path:
    """The bundled speech sample (FLAC, about 3 s, see presets/samples/README.md)."""
    return presets_dir() / "samples" / "hello.flac"


def in_checkout() -> bool:
    """True when the data comes from a source checkout rather than an installed package;
    error messages then point at `make setup` instead of reinstalling."""
    return models_dir() == _CHECKOUT / "models"
