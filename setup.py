"""Package layout that pyproject.toml cannot express: models/ and presets/ ship inside the wheel.

The source tree keeps models/ and presets/ at the top (the tree reads as the data flow); in the
wheel they become the subpackages dhlive_cli.bundled_models and dhlive_cli.bundled_presets
(not .presets: that is the module dhlive_cli/presets.py), which
dhlive_cli/resources.py finds with importlib.resources. Packages are discovered, so a new
dhlive_cli subpackage or a new data folder is picked up without editing this file; which files
ship is the package-data globs in pyproject.toml. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.bdist_wheel import bdist_wheel

DATA_FOLDERS = {"dhlive_cli.bundled_models": "models", "dhlive_cli.bundled_presets": "presets"}
# Converted by `make setup` (git-ignored): a wheel without them installs fine and then fails at
# `avatar prepare`, so building one is refused (editable installs do not build a wheel: exempt).
FACE_MODELS = ("face_detection_short_range.onnx", "face_landmark.onnx")


def data_packages(package: str, folder: str) -> list[str]:
    """`package` and one package per subfolder whose name Python could import (setuptools
    warns about each such folder left out, since it would be an importable namespace)."""
    names = [package]
    for sub in sorted(Path(folder).rglob("*")):
        parts = sub.relative_to(folder).parts
        if sub.is_dir() and all(p.isidentifier() for p in parts) and "__pycache__" not in parts:
            names.append(".".join((package, *parts)))
    return names


class bdist_wheel_with_face_models(bdist_wheel):
    """bdist_wheel that stops with one `error:` line when the face models were not converted."""

    def run(self):
        folder = Path(__file__).resolve().parent / "models" / "face"
        missing = [name for name in FACE_MODELS if not (folder / name).is_file()]
        if missing:
            raise SystemExit(f"error: models/face lacks {', '.join(missing)}: run `make setup` (it converts "
                             "MediaPipe's face models) before building the wheel, or use `make dist`")
        super().run()


setup(
    cmdclass={"bdist_wheel": bdist_wheel_with_face_models},
    # namespace discovery: data-only folders such as dhlive_cli/api/static are packages too
    packages=find_namespace_packages(include=["dhlive_cli", "dhlive_cli.*"], exclude=["*.__pycache__"])
    + [name for package, folder in DATA_FOLDERS.items() for name in data_packages(package, folder)],
    package_dir=DATA_FOLDERS,
)
