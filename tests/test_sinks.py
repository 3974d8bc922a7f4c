import numpy as np

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
