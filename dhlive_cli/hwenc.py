"""Which H.264 encoder the ffmpeg child runs: NVENC on an NVIDIA GPU, x264 on the CPU.

`--device auto` (the default) takes NVENC (`h264_nvenc`) when it really works here, the same
way it takes onnxruntime's CUDA provider; `--device cpu` never does. "Really works" is decided
by one tiny encode, and only where the NVIDIA driver's device nodes exist, so a CPU-only host
pays nothing: ffmpeg builds list h264_nvenc whether or not there is a GPU (Debian's does), and
only opening the encoder tells.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess

log = logging.getLogger(__name__)

X264 = "libx264"
NVENC = "h264_nvenc"
_NVIDIA_NODES = ("/dev/nvidiactl", "/dev/nvidia0")


def _nvidia_present() -> bool:
    return any(os.path.exists(p) for p in _NVIDIA_NODES)


@functools.cache
def nvenc_works() -> bool:
    """True when this ffmpeg can open h264_nvenc on this machine (one 1-frame encode, ~0.2 s on a
    GPU host, cached for the process); False at once without the NVIDIA driver's device nodes."""
    if not _nvidia_present():
        return False
    from dhlive_cli.ffmpeg_bin import ffmpeg_path

    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
           "-i", "color=c=gray:s=256x144:r=25", "-frames:v", "1", "-c:v", NVENC, "-f", "null", "-"]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.info("NVENC check failed: %s", e)
        return False
    if r.returncode != 0:
        log.info("NVENC not usable: %s", r.stderr.decode("utf-8", "replace").strip()[-200:])
    return r.returncode == 0


def pick_video_codec(device: str) -> str:
    """"h264_nvenc" or "libx264" for --device auto|cpu|cuda. cuda asks for the GPU: without a
    working NVENC the encoder falls back to x264 with a warning (inference still needs CUDA,
    which inference.py enforces)."""
    if device == "cpu":
        return X264
    if nvenc_works():
        return NVENC
    if device == "cuda":
        log.warning("--device cuda: this ffmpeg cannot use NVENC here; encoding with x264 on the CPU")
    return X264
