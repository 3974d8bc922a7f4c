"""The encoder's device: NVENC only where it really opens, x264 everywhere else (the CPU path is
what this machine runs; the GPU path is checked by a real 1-frame NVENC encode)."""

import json
import subprocess
import sys

import pytest

from dhlive_cli import hwenc
from dhlive_cli.sinks import EncoderOptions, video_args


@pytest.fixture(autouse=True)
def _fresh_check():
    hwenc.nvenc_works.cache_clear()
    yield
    hwenc.nvenc_works.cache_clear()


def test_cpu_never_uses_nvenc():
    assert hwenc.pick_video_codec("cpu") == "libx264"


@pytest.mark.skipif(hwenc._nvidia_present(), reason="this host has an NVIDIA driver")
def test_auto_without_a_gpu_is_x264_and_costs_no_ffmpeg_run(monkeypatch):
    def no_run(*a, **k):
        raise AssertionError("no ffmpeg probe without NVIDIA device nodes")

    monkeypatch.setattr(subprocess, "run", no_run)
    assert hwenc.pick_video_codec("auto") == "libx264"


@pytest.mark.skipif(hwenc._nvidia_present(), reason="this host has an NVIDIA driver")
def test_device_nodes_without_a_working_nvenc_fall_back_to_x264(monkeypatch, caplog):
    """A container may show /dev/nvidia* yet have no driver libraries: the real 1-frame NVENC
    encode fails here, and auto (or cuda, with a warning) encodes with x264."""
    monkeypatch.setattr(hwenc, "_nvidia_present", lambda: True)
    assert hwenc.nvenc_works() is False
    assert hwenc.pick_video_codec("auto") == "libx264"
    with caplog.at_level("WARNING"):
        assert hwenc.pick_video_codec("cuda") == "libx264"
    assert "NVENC" in caplog.text


def test_nvenc_options_are_nvencs_own():
    args = video_args(EncoderOptions(codec="h264_nvenc", preset="veryfast", crf=23, tune="zerolatency"), 25)
    assert args["vcodec"] == "h264_nvenc" and args["preset"] == "p2" and args["cq"] == 23
    assert args["bf"] == 0 and args["zerolatency"] == 1 and "crf" not in args and "threads" not in args
    x = video_args(EncoderOptions(tune="zerolatency", lookahead=0, threads=1), 25)
    assert x["vcodec"] == "libx264" and x["tune"] == "zerolatency" and x["rc-lookahead"] == 0 and x["g"] == 50


@pytest.mark.skipif(hwenc._nvidia_present(), reason="this host has an NVIDIA driver")
def test_render_json_names_the_encoder_it_used(tmp_path, speech_10s):
    wav, _ = speech_10s
    out = tmp_path / "o.mp4"
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(wav), "-o", str(out), "--preset", "low",
                        "--json"], capture_output=True, text=True, check=True)
    res = json.loads(p.stdout)
    assert res["encoder"] == "libx264" and res["provider"] == "CPUExecutionProvider"
    assert res["cpu_s"] > 0 and out.stat().st_size > 0
