"""Microphone input through a virtual PulseAudio mic fed in real time from a FIFO."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dhlive_cli.ffmpeg_bin import ffmpeg_path
from tests.loadcheck import Starvation
from tests.rtmp_server import free_port

PULSE = shutil.which("pulseaudio")
pytestmark = pytest.mark.skipif(PULSE is None or shutil.which("pactl") is None,
                                reason="pulseaudio not installed (make setup installs it)")


@pytest.fixture
def virtual_mic(tmp_path):
    run = tmp_path / "pulse"
    run.mkdir()
    sock = run / "native"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), PULSE_RUNTIME_PATH=str(run), HOME=str(tmp_path))
    pa = subprocess.Popen([PULSE, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
                           "-L", f"module-native-protocol-unix auth-anonymous=1 socket={sock}",
                           "-L", "module-null-sink sink_name=vout"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env["PULSE_SERVER"] = f"unix:{sock}"
    fifo = tmp_path / "mic.fifo"
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and pa.poll() is None, "pulseaudio did not start"
            time.sleep(0.1)
        # the module makes the FIFO itself (it refuses one that already exists)
        subprocess.run(["pactl", "load-module", "module-pipe-source", "source_name=vmic", f"file={fifo}",
                        "format=s16le", "rate=16000", "channels=1"], env=env, check=True, capture_output=True)
        subprocess.run(["pactl", "set-default-source", "vmic"], env=env, check=True)
        yield env, fifo
    finally:
        pa.kill()
        pa.wait(5)


def test_mic_speech_drives_the_mouth_and_reaches_the_recording(tmp_path, virtual_mic, speech_10s):
    env, fifo = virtual_mic
    src, _ = speech_10s
    rec = tmp_path / "rec.mkv"
    api = free_port()
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--input", "mic", "-o", str(rec), "--size", "320x240",
                          "--quiet", "--listen", f"127.0.0.1:{api}"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = None

    def wait_frames(n: int, what: str) -> None:
        deadline = time.monotonic() + 120  # an event timeout, not a speed bound
        while _frames(api) < n:
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline, f"no {what} within 120 s"
            time.sleep(0.05)

    try:
        # the mic speaks once the session has recorded 1 s (25 ticks) of its silence, and the
        # session stops 2 s of ticks after the mic fell silent: events, not guesses of how long
        # start-up or the feeder take on a busy machine
        wait_frames(25, "start")
        starved = Starvation(pid=p.pid, poll_s=0.1).start()
        feeder = subprocess.Popen(f"'{ffmpeg_path()}' -v error -re -t 6 -i '{src}' -f s16le -ac 1 -ar 16000 - > '{fifo}'",
                                  shell=True, env=env)
        feeder.wait(120)
        starved.stop()
        wait_frames(_frames(api) + 50, "2 s after the speech")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        if feeder is not None and feeder.poll() is None:
            feeder.kill()
            feeder.wait(10)
    assert p.returncode == 0, err.decode()
    pcm = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(rec), "-f", "f32le", "-ac", "1", "-ar", "16000",
                          "pipe:1"], capture_output=True, check=True).stdout
    a = np.frombuffer(pcm, np.float32)
    rms = np.sqrt(np.mean(a[: len(a) // 640 * 640].reshape(-1, 640) ** 2, axis=1))
    # A mic runs on its own clock: when dhlive is kept from the CPU, more than 250 ms queued is
    # trimmed (live/inputs), so on a busy machine less of the speech is kept (tests/loadcheck.py)
    need = max(1, 25 - math.ceil(25 * starved.seconds))
    assert (rms > 0.02).sum() >= need, ("the mic's speech is in the recorded audio", need, starved.seconds)
    assert rms[:20].max() < 0.01, "silence before the mic speaks"


def _frames(port: int) -> int:
    """Ticks the live session has done (its /v1/status), 0 while the API is not up yet."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=2) as r:
            return int(json.loads(r.read())["frames"])
    except (OSError, ValueError, KeyError):
        return 0


def test_no_audio_server_is_a_clear_error(tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), PULSE_RUNTIME_PATH=str(tmp_path), HOME=str(tmp_path))
    env.pop("PULSE_SERVER", None)
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--input", "mic", "-o", str(tmp_path / "x.mp4"),
                        "--duration", "1", "--quiet"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 2
    err = p.stderr.decode().strip()
    assert err.startswith("error:") and "input device" in err and "Traceback" not in err
