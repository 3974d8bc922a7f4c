"""dhlive render end to end: real ffmpeg, real onnxruntime, the embedded avatar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf
from typer.testing import CliRunner

from dhlive_cli.avatar.drawn import MouthShape
from dhlive_cli.cli import app
from dhlive_cli.compositor import load_avatar
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.mouth import REST_CLOSE
from tests.conftest import ffprobe_json, ignore_sigint, needs_ffprobe, tone
from tests.loadcheck import Starvation

runner = CliRunner()
W, H = 640, 360


def _render(args):
    return runner.invoke(app, ["render", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def rendered_10s(speech_10s, tmp_path_factory):
    path, audio = speech_10s
    out = tmp_path_factory.mktemp("r") / "speech.mp4"
    res = _render([str(path), "-o", str(out), "--preset", "low", "--json"])
    assert res.exit_code == 0, res.output
    return out, audio


@needs_ffprobe
def test_10s_speech_frames_fps_audio_and_sync(rendered_10s):
    out, audio = rendered_10s
    info = ffprobe_json(out)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    duration = len(audio) / 16000
    assert v["r_frame_rate"] == "25/1" and v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert abs(int(v["nb_read_frames"]) - round(duration * 25)) <= 1
    assert a["codec_name"] == "aac"
    assert abs(float(v["duration"]) - float(a["duration"])) < 0.040
    assert (int(v["width"]), int(v["height"])) == (W, H)


def _mouth_opening(out: Path) -> np.ndarray:
    """Per frame of a render with the embedded avatar: dark pixels in the mouth box beyond what
    the same frame shows with the lips at rest (the inner mouth is the only dark thing there)."""
    av = load_avatar(None, W, H, 25)
    x0, y0, x1, y1 = av.mouth_box()
    x0, y0 = x0 & ~1, y0 & ~1  # the decoder crops yuv420p on even coordinates
    w, h = (x1 - x0 + 1) & ~1, (y1 - y0 + 1) & ~1
    x1, y1 = x0 + w, y0 + h
    raw = subprocess.run(
        [ffmpeg_path(), "-v", "error", "-i", str(out), "-vf", f"crop={w}:{h}:{x0}:{y0}", "-f", "rawvideo",
         "-pix_fmt", "bgr24", "pipe:1"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    n = len(frames)
    ref = np.zeros((H, W, 3), np.uint8)

    def dark(img):  # codec noise does not flip a pixel this dark
        return int((img.max(axis=2) < 70).sum())

    opening = np.zeros(n)
    for k in range(n):
        av.render(ref, k, MouthShape(close=REST_CLOSE))  # the same frame, lips at rest as in silence
        opening[k] = max(0, dark(frames[k]) - dark(ref[y0:y1, x0:x1]))
    return opening


def _speech_frames(audio: np.ndarray, n: int) -> np.ndarray:
    rms = np.sqrt(np.mean(np.pad(audio, (0, n * 640 - len(audio)))[: n * 640].reshape(n, 640) ** 2, axis=1))
    return rms > 10 ** (-50 / 20)


def test_mouth_moves_with_speech_and_closes_in_silence(rendered_10s):
    out, audio = rendered_10s
    opening = _mouth_opening(out)
    n = len(opening)
    speech = _speech_frames(audio, n)
    # silent frames at least 3 frames (120 ms) after speech stops, and not just before it starts
    quiet = np.array([not speech[max(0, k - 3) : k + 3].any() for k in range(n)])
    assert speech.sum() > 50 and quiet.sum() > 20
    # envelope as speech activity: how wide a phoneme opens the mouth is the model's business;
    # the engine's is that the mouth is open while speech plays and shut when it does not
    is_open = opening > 0
    r = np.corrcoef(is_open.astype(float), speech.astype(float))[0, 1]
    print(f"r={r:.2f} open_in_speech={is_open[speech].mean():.2f} mean_px={opening[speech].mean():.1f} "
          f"quiet_max={opening[quiet].max()}")
    assert r > 0.5, f"mouth open vs speech activity r={r:.2f}"
    assert is_open[speech].mean() > 0.5, "the mouth is open in most speech frames"
    assert opening[quiet].max() <= 2, "the mouth is closed in silence"


def test_phase_inverted_stereo_renders_audible_with_a_moving_mouth(speech_10s, tmp_path):
    """One channel inverted (a wiring fault) cancels in a plain mono mix: the render must play the
    stronger channel, move the mouth, and say so in one warning line."""
    path, audio = speech_10s
    src = tmp_path / "inverted.wav"
    sf.write(src, np.stack([audio, -audio], axis=1), 16000, subtype="PCM_16")
    out = tmp_path / "out.mp4"
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(src), "-o", str(out), "--preset", "low",
                        "--quiet", "--metrics", "off"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len([ln for ln in lines if "cancel" in ln]) == 1 and len(lines) == 2, lines  # the warning + "wrote"
    assert "warning" in lines[0].lower() and lines[1].startswith("wrote"), lines
    # the file keeps the input's two channels (both now carry the stronger one): their plain
    # average is what a mono speaker plays (ffmpeg's own -ac 1 adds 3 dB)
    played = np.frombuffer(subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(out), "-f", "f32le", "-ac", "2",
                                           "-ar", "16000", "pipe:1"], capture_output=True, check=True).stdout,
                           np.float32).reshape(-1, 2).mean(axis=1)
    level = 20 * np.log10(np.sqrt(np.mean(played ** 2)) / np.sqrt(np.mean(audio ** 2)))
    assert -3 < level < 3, f"played {level:.1f} dB against the input channel"
    opening = _mouth_opening(out)
    speech = _speech_frames(audio, len(opening))
    assert (opening[speech] > 0).mean() > 0.5, "the mouth is open in most speech frames"


BAD = {
    "missing": None,
    "empty": b"",
    "text": b"this is a text file, not audio\n" * 10,
}


@pytest.mark.reliability
@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "zero-length"])
def test_bad_input_one_line_exit_2_no_output(tmp_path, kind):
    src = tmp_path / "in.wav"
    if kind in ("empty", "text"):
        src.write_bytes(BAD[kind])
    elif kind == "truncated":
        sf.write(src, tone(2.0), 16000)
        src.write_bytes(src.read_bytes()[:9000])
    elif kind == "zero-length":
        sf.write(src, np.zeros(0, np.float32), 16000)
    out = tmp_path / "out.mp4"
    res = _render([str(src), "-o", str(out)])
    assert res.exit_code == 2
    msg = res.output.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("error:") and "Traceback" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"] if kind != "missing" else not any(tmp_path.iterdir())


@pytest.mark.reliability
@pytest.mark.parametrize("target", ["nodir/out.mp4", "adir", "/proc/dhlive-test.mp4"])
def test_unwritable_output(tmp_path, target):
    src = tmp_path / "in.wav"
    sf.write(src, tone(0.5), 16000)
    (tmp_path / "adir").mkdir()
    out = target if target.startswith("/") else str(tmp_path / target)
    res = _render([str(src), "-o", out])
    assert res.exit_code == 2 and res.output.startswith("error:") and len(res.output.strip().splitlines()) == 1


@pytest.mark.reliability
def test_bad_options(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, tone(0.5), 16000)
    for extra in (["--size", "123x45"], ["--size", "huge"], ["--preset", "nope"], ["--fps", "61"], ["--fps", "0"], ["--device", "tpu"]):
        res = _render([str(src), "-o", str(tmp_path / "o.mp4"), *extra])
        assert res.exit_code == 2, (extra, res.output)
        assert "Traceback" not in res.output


@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg"])
def test_other_formats_render(tmp_path, fmt):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(1.0, 44100, 2), 44100)
    src = tmp_path / f"in.{fmt}"
    codec = {"flac": "flac", "mp3": "libmp3lame", "ogg": "libvorbis"}[fmt]
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(wav), "-c:a", codec, str(src)], check=True)
    res = _render([str(src), "-o", str(tmp_path / "o.mp4"), "--size", "320x240", "--json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.mp4").stat().st_size > 1000


def test_help_has_examples():
    res = runner.invoke(app, ["render", "--help"])
    assert res.exit_code == 0 and "Examples" in res.output and "dhlive render" in res.output


def _children_named(pid, name="ffmpeg"):
    try:
        return [c for c in psutil.Process(pid).children(recursive=True) if name in c.name()]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.reliability
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_fast_removes_output_leaves_no_ffmpeg(tmp_path, sig):
    src = tmp_path / "long.wav"
    sf.write(src, tone(600.0), 16000)  # 10 minutes: far longer than the test waits
    out = tmp_path / "out.mp4"
    # started as a shell script's background job is (`dhlive render ... &` inherits SIGINT
    # ignored): Ctrl+C / kill -INT must still stop it, whatever started the test run
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(src), "-o", str(out), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ignore_sigint)
    deadline = time.monotonic() + 30
    while not _children_named(p.pid) or not list(tmp_path.glob(".out.mp4.dhlive-partial*")):
        assert time.monotonic() < deadline, "render did not start"
        time.sleep(0.1)
    time.sleep(1.0)  # mid-render
    kids = [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
    t0 = time.monotonic()
    with Starvation(pid=p.pid, children=True, poll_s=0.05) as starved:
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    took = time.monotonic() - t0
    # fast: 2 s, plus only what the machine's other work kept dhlive from a CPU (tests/loadcheck.py)
    assert took < 2.0 + starved.seconds, f"took {took:.2f} s to stop (CPU wait {starved.seconds:.2f} s)"
    assert p.returncode == 130, err
    assert b"Traceback" not in err
    assert not any(psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE for k in kids)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["long.wav"], "no output, no partial file"


def _dhlive(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dhlive_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


@needs_ffprobe
@pytest.mark.parametrize("fmt", ["mkv", "mp4"])
def test_stdin_to_stdout(speech_10s, tmp_path, fmt):
    """`render - -o -`: an mp3 on stdin (any container ffmpeg reads), a streamable container out."""
    path, audio = speech_10s
    mp3 = tmp_path / "in.mp3"
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-c:a", "libmp3lame", str(mp3)], check=True)
    with open(mp3, "rb") as stdin:
        p = _dhlive("render", "-", "-o", "-", "--format", fmt, "--preset", "low", "--metrics", "off",
                    stdin=stdin, cwd=tmp_path)
        out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    assert err.decode().strip().startswith("wrote stdout")
    import re

    kids = re.search(r"peak (\d+) MB \+ (\d+) MB in ffmpeg children", err.decode())
    assert kids and int(kids.group(2)) > 10, err.decode()  # the encoder and decoder are counted
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.mp3"], "no file named '-'"
    if fmt == "mkv":
        assert out[:4] == b"\x1a\x45\xdf\xa3"  # EBML: Matroska
    else:
        assert out[4:8] == b"ftyp" and b"moof" in out and out.index(b"moov") < out.index(b"moof")  # fragmented
    got = tmp_path / f"got.{fmt}"
    got.write_bytes(out)
    info = ffprobe_json(got)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    duration = len(audio) / 16000
    assert v["codec_name"] == "h264" and a["codec_name"] == "aac"
    assert abs(int(v["nb_read_frames"]) - round(duration * 25)) <= 2  # mp3 pads a few ms at either end
    played = np.frombuffer(subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(got), "-f", "f32le", "-ac", "1",
                                           "-ar", "16000", "pipe:1"], capture_output=True, check=True).stdout,
                           np.float32)
    n = min(len(played), len(audio))
    lag = int(np.argmax(np.correlate(played[:16000 * 3], audio[:16000 * 3 - 2000], "valid")))
    assert lag < 2000 and np.corrcoef(played[lag : n], audio[: n - lag])[0, 1] > 0.9


def test_stdout_streams_while_rendering(tmp_path):
    """Bytes reach stdout while the render is still running: a player can start at once."""
    src = tmp_path / "long.wav"
    sf.write(src, tone(120.0), 16000)
    p = _dhlive("render", src, "-o", "-", "--preset", "low", "--metrics", "off", "--quiet")
    try:
        head = p.stdout.read(256 * 1024)
        assert len(head) == 256 * 1024 and head[:4] == b"\x1a\x45\xdf\xa3"
        assert p.poll() is None, "still rendering the two minutes when the first bytes arrived"
    finally:
        p.kill()
        p.communicate()


@pytest.mark.parametrize("args,stdin,says", [
    (["-", "-o", "-", "--json"], b"", "--json"),
    (["-", "-o", "-", "--format", "avi"], b"", "--format"),
    (["-", "-o", "{d}/o.mkv", "--format", "mp4"], b"", "suffix"),
    (["-", "-o", "{d}/o.mp4"], b"", "stdin"),
    (["-", "-o", "{d}/o.mp4"], b"this is text, not audio\n" * 50, "stdin"),
])
def test_pipe_errors(tmp_path, args, stdin, says):
    p = _dhlive("render", *[a.format(d=tmp_path) for a in args], "--metrics", "off", stdin=subprocess.PIPE,
                cwd=tmp_path)
    out, err = p.communicate(stdin, timeout=120)
    lines = [ln for ln in err.decode().splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], lines
    assert out == b"" and list(tmp_path.iterdir()) == []


def test_stdin_m4a_with_its_index_at_the_end_says_why_and_what_to_do(tmp_path):
    """ffmpeg writes an .m4a's index (moov) last by default; on a pipe it cannot be read, and
    ffmpeg exits 0 having decoded nothing. The error line carries its reason and the remedy."""
    wav, m4a, fast = tmp_path / "in.wav", tmp_path / "in.m4a", tmp_path / "fast.m4a"
    sf.write(wav, tone(8.0, 44100, 2), 44100)  # longer than what ffmpeg's read buffer can seek back over
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    p = _dhlive("render", "-", "-o", str(tmp_path / "o.mp4"), "--metrics", "off", stdin=subprocess.PIPE)
    _, err = p.communicate(m4a.read_bytes(), timeout=120)
    lines = [ln for ln in err.decode().splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: stdin:"), lines
    assert "ffmpeg:" in lines[0] and "+faststart" in lines[0], lines
    assert not (tmp_path / "o.mp4").exists()
    # and the remedy it names works
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(m4a), "-c", "copy", "-movflags", "+faststart", str(fast)],
                   check=True)
    p = _dhlive("render", "-", "-o", str(tmp_path / "o.mp4"), "--metrics", "off", "--quiet", "--preset", "low",
                stdin=subprocess.PIPE)
    _, err = p.communicate(fast.read_bytes(), timeout=300)
    assert p.returncode == 0, err.decode()


def _first_pts(path: Path, stream: str) -> float:
    """Presentation time (s) of the first frame ffmpeg decodes from `stream` ("v" or "a"), edit
    lists and the encoder's skipped priming applied, as a player shows it."""
    filt = "showinfo" if stream == "v" else "ashowinfo"
    r = subprocess.run([ffmpeg_path(), "-hide_banner", "-i", str(path), "-map", f"0:{stream}", f"-{stream}f" if stream == "v"
                        else "-af", filt, "-frames:" + stream, "1", "-f", "null", "-"],
                       capture_output=True, text=True, check=True)
    import re

    return float(re.search(r"pts_time:\s*(-?[\d.]+)", r.stderr).group(1))


@needs_ffprobe
@pytest.mark.parametrize("where, fmt", [("file", "mp4"), ("stdout", "mp4"), ("stdout", "mkv")])
def test_picture_and_sound_start_together_in_every_container(speech_10s, tmp_path, where, fmt):
    """`render x -o - --format mp4` (fragmented MP4) showed the first frame 80 ms into the
    stream (x264's B-frame delay, no edit list in a moov written before any frame) and the voice
    from 64 ms (16 kHz sound: AAC's 1024 priming samples played) to 21 ms (48 kHz): the lips
    16-59 ms behind it. The first frame shown and the first sound of the input must fall at the
    same time in every container the default preset (B-frames) writes."""
    path, audio = speech_10s
    out = tmp_path / f"o.{fmt}"
    args = ["render", path, "-o", out if where == "file" else "-", "--size", "320x180", "--metrics", "off", "--quiet"]
    if where == "stdout":
        args += ["--format", fmt]
    with open(out, "wb") if where == "stdout" else open(os.devnull, "wb") as sink:
        p = subprocess.run([sys.executable, "-m", "dhlive_cli", *map(str, args)], stdout=sink,
                           stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    video0 = _first_pts(out, "v")
    audio0 = _first_pts(out, "a")
    played = np.frombuffer(subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(out), "-map", "0:a", "-f", "f32le",
                                           "-ac", "1", "-ar", "16000", "pipe:1"], capture_output=True,
                                          check=True).stdout, np.float32)
    # where the input's first sound lies in the decoded sound (sample-exact: digital silence ends
    # where the first phrase begins)
    lag = int(np.argmax(np.correlate(played[: 16000 * 3], audio[: 16000 * 3 - 4000], "valid")))
    sound0 = audio0 + lag / 16000
    assert abs(video0 - sound0) < 0.002, (video0, audio0, lag)
