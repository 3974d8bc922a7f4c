import os

import numpy as np
import pytest

from dhlive_cli.sinks import EncoderOptions, FfmpegSink
from tests.conftest import ffprobe_json, needs_ffprobe


@needs_ffprobe
def test_ffmpeg_sink_writes_exact_frames_and_samples(tmp_path):
    out = tmp_path / "s.mp4"
    frame = np.zeros((180, 160), np.uint8)  # one 160x120 I420 picture
    audio = np.zeros(640, np.float32)
    with FfmpegSink(str(out), 160, 120, 25, EncoderOptions(preset="ultrafast")) as sink:
        for k in range(50):
            frame[:] = k * 5
            audio[:] = np.sin(np.arange(640) * 0.1 + k) * 0.2
            sink.write(frame, audio)
        pid = sink.pids[0]
    info = ffprobe_json(out)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert int(v["nb_read_frames"]) == 50 and v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert a["codec_name"] == "aac"
    assert abs(float(v["duration"]) - float(a["duration"])) < 0.04
    import psutil

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_abort_kills_encoder_now(tmp_path):
    import psutil

    sink = FfmpegSink(str(tmp_path / "a.mp4"), 160, 120, 25).open()
    pid = sink.pids[0]
    sink.write(np.zeros((180, 160), np.uint8), np.zeros(640, np.float32))
    sink.abort()
    assert not psutil.pid_exists(pid)


def test_a_frame_of_the_wrong_size_is_refused_before_it_reaches_ffmpeg(tmp_path):
    import pytest

    with FfmpegSink(str(tmp_path / "w.mp4"), 160, 120, 25, EncoderOptions(preset="ultrafast")) as sink:
        with pytest.raises(ValueError, match="160x120 yuv420p"):
            sink.write(np.zeros((120, 160, 3), np.uint8), np.zeros(640, np.float32))  # BGR, not I420
        sink.write(np.zeros((180, 160), np.uint8), np.zeros(640, np.float32))
    assert sink.frames == 1


@needs_ffprobe
@pytest.mark.parametrize("coder", ["twoloop", "fast"])
def test_stream_audio_keeps_the_whole_speech_band_with_the_aac_cutoff(tmp_path, coder):
    """16 kHz speech sent as 48 kHz stereo (RTMP): AAC is told the input's Nyquist (8 kHz), which
    halves its CPU, and every tone the input can hold still arrives at its level -- with the
    default coder and with live's fast one (no mid/side search: both channels are the same)."""
    import subprocess

    from dhlive_cli.ffmpeg_bin import ffmpeg_path
    from dhlive_cli.sinks import build_encode_command

    cmd = build_encode_command("x.flv", "flv", 160, 120, 25, 3, EncoderOptions(aac_coder=coder), None)
    assert cmd[cmd.index("-cutoff") + 1] == "8000"
    if coder == "fast":
        assert cmd[cmd.index("-aac_coder") + 1] == "fast" and cmd[cmd.index("-aac_ms") + 1] == "0"
        assert cmd[cmd.index("-aac_pns") + 1] == "0" and cmd[cmd.index("-aac_tns") + 1] == "0"
        stereo_in = build_encode_command("x.flv", "flv", 160, 120, 25, 3, EncoderOptions(aac_coder=coder), None,
                                         audio_rate=48000, audio_channels=2)
        assert "-aac_ms" not in stereo_in  # real stereo keeps its mid/side coding
    else:
        assert "-aac_coder" not in cmd
    same_rate = build_encode_command("x.mp4", "mp4", 160, 120, 25, 3, EncoderOptions(), None)
    assert "-cutoff" not in same_rate  # nothing to skip when the rate is kept

    out = tmp_path / "s.flv"
    t = np.arange(640) / 16000
    frame = np.zeros((180, 160), np.uint8)
    with FfmpegSink(str(out), 160, 120, 25, EncoderOptions(preset="ultrafast", aac_coder=coder), fmt="flv") as sink:
        for k in range(75):  # 3 s: 1 s at 300 Hz, 1 s at 3 kHz, 1 s at 7.5 kHz, each at -12 dBFS
            f = (300, 3000, 7500)[k // 25]
            sink.write(frame, (0.25 * np.sin(2 * np.pi * f * (t + k * 0.04))).astype(np.float32))
    a = next(s for s in ffprobe_json(out)["streams"] if s["codec_type"] == "audio")
    assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == ("aac", 48000, 2)
    pcm = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(out), "-f", "f32le", "-ac", "1", "-"],
                         capture_output=True, check=True).stdout
    x = np.frombuffer(pcm, np.float32)
    want = 20 * np.log10(0.25 / np.sqrt(2))
    for i in range(3):  # the middle 0.6 s of each tone
        seg = x[int((i + 0.2) * 48000) : int((i + 0.8) * 48000)]
        rms_db = 20 * np.log10(np.sqrt(np.mean(seg**2)) + 1e-12)
        assert abs(rms_db - want) < 1.5, f"tone {i}: {rms_db:.1f} dBFS, want {want:.1f}"


def test_encoder_env_adds_the_reuse_tunables_and_keeps_the_callers(monkeypatch):
    from dhlive_cli.sinks import encoder_env

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000:glibc.malloc.arena_max=1")
    assert encoder_env(EncoderOptions()) is None  # live: the child inherits our environment unchanged
    env = encoder_env(EncoderOptions(reuse_freed=True))
    got = dict(t.split("=", 1) for t in env["GLIBC_TUNABLES"].split(":"))
    assert got == {"glibc.malloc.trim_threshold": "1000", "glibc.malloc.arena_max": "1",
                   "glibc.malloc.mmap_threshold": "33554432"}
    monkeypatch.delenv("GLIBC_TUNABLES")
    env = encoder_env(EncoderOptions(reuse_freed=True))
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"
    assert env["PATH"] == os.environ["PATH"]


def test_a_render_encoder_runs_with_the_reuse_tunables_and_encodes_the_same(tmp_path):
    """The flag reaches the real ffmpeg child's environment (and only with it), and only its
    memory reuse changes: the same frames give the same H.264 bytes either way."""
    import subprocess

    from dhlive_cli.ffmpeg_bin import ffmpeg_path

    streams = []
    for reuse in (False, True):
        out = tmp_path / f"r{int(reuse)}.mp4"
        frame = np.zeros((180, 160), np.uint8)
        with FfmpegSink(str(out), 160, 120, 25, EncoderOptions(preset="ultrafast", threads=1, reuse_freed=reuse)) as sink:
            (pid,) = sink.pids
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            for k in range(25):
                frame[:] = 8 * k
                sink.write(frame, np.zeros(640, np.float32))
        tun = [v for v in environ if v.startswith(b"GLIBC_TUNABLES=")]
        assert (b"glibc.malloc.mmap_threshold=33554432" in b"".join(tun)) == reuse, tun
        streams.append(subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(out), "-map", "0:v", "-c", "copy",
                                       "-f", "h264", "-"], capture_output=True, check=True).stdout)
    assert len(streams[0]) > 1000 and streams[0] == streams[1]
