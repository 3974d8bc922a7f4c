"""Installing and meeting dhlive: the wheel's layout, one onnxruntime per environment, help text
as written, global options after the subcommand, output folders created as promised."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dhlive_cli import __version__, resources
from dhlive_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "presets" / "samples" / "hello.flac"
runner = CliRunner()


def dhlive(*args, cwd=None, env=None, timeout=300):
    env = dict(os.environ if env is None else env)
    return subprocess.run([sys.executable, "-m", "dhlive_cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- bundled data -------------------------------------------------------------------------------


def test_checkout_resources_are_the_top_level_folders():
    assert resources.models_dir() == ROOT / "models" and resources.in_checkout()
    assert (resources.presets_dir() / "default.toml").is_file()
    assert (resources.default_avatar_dir() / "avatar.toml").is_file()
    assert resources.sample_speech().is_file()


def test_version_comes_from_one_place():
    r = dhlive("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"dhlive {__version__}"
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.slow
def test_built_wheel_carries_its_data_and_runs_from_an_empty_folder(tmp_path):
    """The wheel, as `make dist` builds it, unpacked where nothing of the checkout is visible:
    models, presets, the default avatar and the face models come from inside the package.
    (.ci/wheel-smoke does the full install with dependencies into a fresh venv.)"""
    if not (ROOT / "models" / "face" / "face_landmark.onnx").is_file():
        pytest.skip("face models not converted (make setup)")
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # every folder that ships files is a declared package (setuptools' "Package would be ignored"
    # box for dhlive_cli/api/static greeted everyone who built the wheel)
    assert "absent from the `packages` configuration" not in r.stdout + r.stderr
    wheel = next(dist.glob("dhlive-*.whl"))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "from dhlive_cli import resources as r; print(r.models_dir()); "
                            "print(r.in_checkout()); print(r.face_models_dir())"],
                           cwd=empty, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0] == str(site / "dhlive_cli" / "bundled_models") and where[1] == "False", where
    assert (Path(where[2]) / "face_landmark.onnx").is_file()
    speech = empty / "speech.flac"
    speech.write_bytes(SAMPLE.read_bytes())
    for args in (["render", "speech.flac", "-o", "out.mp4", "--preset", "low", "--quiet"],
                 ["lipsync", "speech.flac", "-o", "t.json"]):
        r = dhlive(*args, cwd=empty, env=env)
        assert r.returncode == 0, r.stderr
    assert (empty / "out.mp4").stat().st_size > 0 and (empty / "t.json").stat().st_size > 0
    cv2.imwrite(str(empty / "face.png"), _astronaut())
    r = dhlive("avatar", "prepare", "face.png", "-o", "av/a", "--quiet", cwd=empty, env=env)
    assert r.returncode == 0, r.stderr
    r = dhlive("render", "speech.flac", "--avatar", "av/a", "-o", "a.mp4", "--preset", "low", "--quiet", cwd=empty, env=env)
    assert r.returncode == 0, r.stderr
    # a damaged installed face model (bytes flipped in its weights: onnxruntime still loads it) is
    # one error line that says to reinstall, not "use a sharper picture"; nothing is written
    mesh_file = Path(where[2]) / "face_landmark.onnx"
    data = bytearray(mesh_file.read_bytes())
    data[len(data) // 2:len(data) // 2 + 4096] = bytes(4096)
    mesh_file.write_bytes(bytes(data))
    r = dhlive("avatar", "prepare", "face.png", "-o", "av/b", "--quiet", cwd=empty, env=env)
    assert r.returncode != 0 and not (empty / "av" / "b").exists()
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: face model ") and "reinstall dhlive" in r.stderr, r.stderr


@pytest.mark.slow
def test_wheel_build_without_face_models_is_refused(tmp_path):
    """A fresh clone's `python -m build` (no `make setup`, so no converted face models) must not
    produce a wheel that installs and then fails at `avatar prepare`: one error line, no wheel."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    for name in filter(None, files.stdout.split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    assert not list((src / "models" / "face").glob("*.onnx"))  # git-ignored: a fresh clone has none
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and not list(dist.glob("*.whl")), r.stdout[-1500:]
    assert "error: models/face lacks face_detection_short_range.onnx, face_landmark.onnx: run `make setup`" in r.stdout + r.stderr


def _astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)


def test_onnxruntime_writes_nothing_into_the_cache_and_warns_not_when_it_is_read_only(tmp_path):
    """onnxruntime's import keeps a telemetry device ID under $XDG_CACHE_HOME and warns when it
    cannot; dhlive turns that off (the user can still set ORT_DISABLE_TELEMETRY=0)."""
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    speech = tmp_path / "speech.flac"
    speech.write_bytes(SAMPLE.read_bytes())
    r = dhlive("lipsync", speech, "-o", tmp_path / "t.json", env=env | {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "cache" / "Microsoft").exists(), list((tmp_path / "cache").rglob("*"))
    r = dhlive("lipsync", speech, "-o", tmp_path / "u.json", env=env | {"XDG_CACHE_HOME": "/proc/x"})
    assert r.returncode == 0 and r.stderr.startswith("wrote ") and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("content", [None, b"not a model", "speech"])
def test_bad_dhlive_model_is_one_error_line_that_names_the_variable(tmp_path, content):
    """DHLIVE_MODEL pointing at a missing file, garbage or a non-model: one error line naming
    the variable (it may have been set long ago in a shell profile), no output file."""
    model = tmp_path / "m.onnx"
    if content == "speech":
        model.write_bytes(SAMPLE.read_bytes())
    elif content is not None:
        model.write_bytes(content)
    r = dhlive("lipsync", SAMPLE, "-o", tmp_path / "t.json", env=os.environ | {"DHLIVE_MODEL": str(model)})
    assert r.returncode != 0 and not (tmp_path / "t.json").exists()
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "(from DHLIVE_MODEL)" in r.stderr, r.stderr


# ---- one onnxruntime per environment --------------------------------------------------------------


def _fake_dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_both_onnxruntime_wheels_in_one_environment_are_refused(tmp_path):
    """The check `make setup` runs, and the engine itself, against an environment where
    onnxruntime-gpu's metadata sits next to onnxruntime's (metadata only: no GPU wheel needed)."""
    site = tmp_path / "site"
    _fake_dist(site, "onnxruntime-gpu", "1.20.0")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{site}")
    r = subprocess.run([sys.executable, "-m", "dhlive_cli.runtime_check"], env=env, capture_output=True, text=True)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "onnxruntime-gpu 1.20.0" in lines[0], r.stderr
    r = dhlive("lipsync", SAMPLE, "-o", tmp_path / "t.json", env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: onnxruntime") and "overwrite each other" in r.stderr
    assert not (tmp_path / "t.json").exists()
    r = subprocess.run([sys.executable, "-m", "dhlive_cli.runtime_check"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ok: onnxruntime"), r.stderr  # this environment: one


@pytest.mark.parametrize("extra, venv", [("cpu", ".venv"), ("gpu", ".venv-gpu")])
def test_make_setup_gives_each_extra_its_own_venv(extra, venv):
    r = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), f"EXTRA={extra}", "setup"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    installs = [ln for ln in r.stdout.splitlines() if "pip install" in ln and "-e" in ln]
    other = "gpu" if extra == "cpu" else "cpu"
    extras = [set(ln.split('".[', 1)[1].split("]", 1)[0].split(",")) for ln in installs if '".[' in ln]
    assert installs and len(extras) == len(installs), installs
    assert all(ln.startswith(f"{venv}/bin/pip ") for ln in installs), installs
    # its own onnxruntime extra and dev (plus webrtc, the browser preview), never the other one
    assert all({extra, "dev", "webrtc"} <= e and other not in e for e in extras), installs
    assert f"{venv}/bin/python -m dhlive_cli.runtime_check" in r.stdout


# ---- help and options -----------------------------------------------------------------------------


def test_help_keeps_brackets_defaults_and_readable_metavars():
    r = runner.invoke(app, ["live", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    out = r.output
    assert out.count("[[session]]") >= 3  # the example file and the --sessions help
    assert "mic[:DEVICE]" in out and "[default: 160]" in out and "[default: default]" in out
    assert re.search(r"--rtmp\s+URL\s", out) and re.search(r"--listen\s+HOST:PORT\s", out)
    flags = [ln for ln in out.splitlines() if re.search(r"--(quiet|loop|json)\b", ln)]
    assert flags and not [ln for ln in flags if "<bool>" in ln], flags  # a flag takes no value
    r = runner.invoke(app, ["avatar", "prepare", "--help"], env={"COLUMNS": "200"})
    assert re.search(r"--output\s+-o\s+DIR\s", r.output) and "[default: best]" in r.output


def test_verbose_is_accepted_after_the_subcommand(tmp_path):
    r = dhlive("lipsync", SAMPLE, "-o", tmp_path / "t.json", "-v")
    assert r.returncode == 0, r.stderr
    assert "dhlive: INFO" in r.stderr


# ---- output folders ------------------------------------------------------------------------------


def test_avatar_prepare_creates_missing_parents_and_removes_them_when_it_fails(tmp_path):
    cv2.imwrite(str(tmp_path / "face.png"), _astronaut())
    r = dhlive("avatar", "prepare", "face.png", "-o", "avatars/new/anna", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "avatars" / "new" / "anna" / "avatar.toml").is_file()
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((240, 320, 3), 128, np.uint8))  # no face in it
    r = dhlive("avatar", "prepare", "blank.png", "-o", "made/for/nothing", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert not (tmp_path / "made").exists()  # nothing half-made is left behind


def test_training_evaluate_without_a_trained_model_is_one_error_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "training.evaluate", "--data", str(tmp_path / "none")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "make model" in lines[0], r.stderr
