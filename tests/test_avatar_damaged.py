"""Damaged files in and around `dhlive avatar prepare` are one `error:` line, never an avatar or a
render made of what happened to be readable:

- a source clip cut short (an AVI, an MP4 with its index first or last, a Matroska file), while a
  clip that is only short, and whole copies of the same clips, still prepare;
- an avatar whose frames.mp4 was cut (or swapped for another avatar's) at load, named as such;
- a landmarks.npy or mouths.npy that is not a .npy array of the right shape.

Real ffmpeg, real files made in each test's temp dir (a clip of scikit-image's astronaut photo).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from dhlive_cli.avatar.prepare import PrepareOptions, prepare_avatar
from dhlive_cli.compositor import load_avatar
from dhlive_cli.errors import InputError
from tests.conftest import FFPROBE
from tests.test_avatar_photo import pan_zoom_video

pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the test photo")


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dhlive_cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def one_error(p: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    return lines[0]


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """The same 4 s face clip as MP4 (index first, as FrameEncoder writes it), MP4 with the index
    last (ffmpeg's default), AVI (MPEG-4 part 2) and Matroska (H.264)."""
    d = tmp_path_factory.mktemp("clips")
    pan_zoom_video(d / "whole.mp4", frames=100)
    ffmpeg("-i", d / "whole.mp4", "-c", "copy", d / "moov_last.mp4")
    ffmpeg("-i", d / "whole.mp4", "-c:v", "mpeg4", "-q:v", "3", d / "whole.avi")
    ffmpeg("-i", d / "whole.mp4", "-c", "copy", d / "whole.mkv")
    return d


def _avi_cut_between_chunks(data: bytes) -> bytes:
    """An AVI cut just before its 40th video chunk: every packet left is whole, so ffmpeg prints
    no error; only the header's frame count tells."""
    starts = [m.start() for m in re.finditer(b"00dc", data)]
    assert len(starts) > 60
    return data[: starts[40]]


CUTS = {
    "head300k.avi": ("whole.avi", lambda b: b[:300000]),
    "between_chunks.avi": ("whole.avi", _avi_cut_between_chunks),
    "third_index_last.mp4": ("moov_last.mp4", lambda b: b[: len(b) // 3]),
    "third_index_first.mp4": ("whole.mp4", lambda b: b[: len(b) // 3]),
    "half.mkv": ("whole.mkv", lambda b: b[: len(b) // 2]),
}


@pytest.mark.parametrize("name", list(CUTS))
def test_a_source_clip_cut_short_is_one_error_and_writes_nothing(clips, tmp_path, name):
    if name == "between_chunks.avi" and FFPROBE is None:
        pytest.skip("ffprobe not installed: the header's frame count is what tells this cut")
    src_name, cut = CUTS[name]
    data = (clips / src_name).read_bytes()
    if name.startswith("head300k"):
        assert len(data) > 2 * 300000  # a longer AVI, cut mid-stream
    src = tmp_path / name
    src.write_bytes(cut(data))
    out = tmp_path / "av"
    line = one_error(run_cli("avatar", "prepare", src, "-o", out))
    assert line.startswith(f"error: {src}: the video is damaged or cut short ("), line
    assert not out.exists()
    assert not list(tmp_path.glob(".av.dhlive-partial-*"))


@pytest.mark.parametrize("suffix", [".mp4", ".wav", "+subtitles.mkv"])
def test_a_file_with_sound_and_no_picture_is_named_as_such(tmp_path, suffix):
    # it read "not an image or a video that can be decoded (corrupt or unsupported file)" of a
    # sound file that is neither corrupt nor unsupported (a reviewer's finding)
    if FFPROBE is None:
        pytest.skip("ffprobe not installed: it is what tells sound from a damaged file")
    src = tmp_path / f"sound{suffix}"
    if suffix.startswith("+"):  # a subtitle track beside the sound is still no picture
        srt = tmp_path / "s.srt"
        srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nhello\n")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", "-i", str(srt), str(src)],
                       check=True)
    else:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", str(src)], check=True)
    out = tmp_path / "av"
    line = one_error(run_cli("avatar", "prepare", src, "-o", out))
    assert line == f"error: {src}: holds sound but no picture: give a photo or a video of the face", line
    assert not out.exists()


@pytest.mark.parametrize("name", ["whole.avi", "whole.mkv", "moov_last.mp4", "short"])
def test_whole_clips_and_a_short_one_still_prepare(clips, tmp_path, name):
    if name == "short":  # 0.8 s, whole: short is not damaged
        src = pan_zoom_video(tmp_path / "short.mp4", frames=20)
        frames = 20
    else:
        # the first 40 frames of each whole clip, in its own container, keep the test quick
        src = tmp_path / name
        ffmpeg("-i", clips / name, "-frames:v", "40", "-c", "copy", src)
        frames = 40
    res = prepare_avatar(src, tmp_path / "av", PrepareOptions(loop="pingpong", preview=False))
    assert res.kind == "video" and res.frames == 2 * frames - 2
    spec = tomllib.loads((tmp_path / "av" / "avatar.toml").read_text())
    assert spec["frames"]["count"] == 2 * frames - 2
    load_avatar(tmp_path / "av", 320, 240, 25).close()


# --------------------------------------------------------------------------- a prepared avatar


@pytest.fixture(scope="module")
def video_avatar(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vid_avatar")
    prepare_avatar(pan_zoom_video(d / "clip.mp4", frames=40), d / "av", PrepareOptions(loop="pingpong", preview=False))
    return d / "av"


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wav") / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:duration=1", "-ar", "16000", "-ac", "1", path)
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_an_intact_video_avatar_renders(video_avatar, speech_wav, tmp_path):
    p = run_cli("render", speech_wav, "-o", tmp_path / "out.mp4", "--avatar", video_avatar, "--size", "320x240",
                "--quiet", "--metrics", "off")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out.mp4").stat().st_size > 0


def test_names_with_a_colon_prepare_and_render(clips, speech_wav, tmp_path):
    """A relative name such as "clip:1.mp4" is protocol "clip" to ffmpeg and OpenCV's FFmpeg
    ("Protocol not found"): the clip, the avatar folder "av:1" (its frames.mp4 is written and
    read back) and the render's input and output all keep working as files."""
    shutil.copy(clips / "whole.mp4", tmp_path / "clip:1.mp4")
    shutil.copy(speech_wav, tmp_path / "talk:1.wav")
    run = lambda *a: subprocess.run([sys.executable, "-m", "dhlive_cli", *a], capture_output=True,  # noqa: E731
                                    text=True, timeout=300, cwd=tmp_path)
    p = run("avatar", "prepare", "clip:1.mp4", "-o", "av:1")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "av:1" / "frames.mp4").stat().st_size > 0
    p = run("render", "talk:1.wav", "-o", "out:1.mp4", "--avatar", "av:1", "--size", "320x240", "--quiet",
            "--metrics", "off")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out:1.mp4").stat().st_size > 0


def test_sigterm_stops_prepare_like_ctrl_c(clips, tmp_path):
    """SIGTERM (a service manager's stop) ends avatar prepare as Ctrl+C does: exit 130, one line,
    its unfinished folder removed (it was killed with 143 and left the folder)."""
    import signal
    import time

    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "avatar", "prepare", str(clips / "whole.mp4"), "-o",
                          str(tmp_path / "av"), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not any(tmp_path.glob(".av.dhlive-partial-*")):
            assert p.poll() is None and time.monotonic() - t0 < 120, "prepare ended before its folder appeared"
            time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted: unfinished output removed"], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keep", ["20kB", "half", "all_but_1_byte"])
def test_an_avatar_whose_frames_mp4_was_cut_is_refused_at_load(video_avatar, speech_wav, tmp_path, keep):
    """A cut frames.mp4 looped the few frames left with exit 0; now render stops before it starts,
    with one line naming the file and what to do."""
    av = _copy(video_avatar, tmp_path / "av")
    data = (video_avatar / "frames.mp4").read_bytes()
    n = {"20kB": 20000, "half": len(data) // 2, "all_but_1_byte": len(data) - 1}[keep]
    assert n < len(data)
    (av / "frames.mp4").write_bytes(data[:n])
    out = tmp_path / "out.mp4"
    line = one_error(run_cli("render", speech_wav, "-o", out, "--avatar", av, "--size", "320x240", "--quiet"))
    assert line.startswith(f"error: {av / 'frames.mp4'}: the avatar video is damaged or cut short ("), line
    assert "dhlive avatar prepare" in line
    assert not out.exists()
    with pytest.raises(InputError, match="damaged or cut short"):
        load_avatar(av, 320, 240, 25)


def test_an_avatar_with_another_avatars_frames_is_refused(video_avatar, tmp_path):
    """frames.mp4 of a 20-frame clip in an avatar whose avatar.toml and landmarks say 78 frames."""
    other = tmp_path / "other"
    prepare_avatar(pan_zoom_video(tmp_path / "short.mp4", frames=20), other,
                   PrepareOptions(loop="pingpong", preview=False))
    av = _copy(video_avatar, tmp_path / "av")
    shutil.copy(other / "frames.mp4", av / "frames.mp4")
    with pytest.raises(InputError, match=r"frames.mp4: the avatar video is damaged or cut short \(it holds 38 frames, "
                                         r"avatar.toml says 78\)"):
        load_avatar(av, 320, 240, 25)


def test_a_loop_video_that_is_not_mp4_is_checked_by_its_last_frame(video_avatar, tmp_path):
    """A hand-made avatar may point avatar.toml at a Matroska loop: whole, it loads; cut, ffmpeg
    cannot decode its last frame and load says so."""
    av = _copy(video_avatar, tmp_path / "av")
    ffmpeg("-i", av / "frames.mp4", "-c", "copy", av / "frames.mkv")
    toml = (av / "avatar.toml").read_text()
    assert 'file = "frames.mp4"' in toml
    (av / "avatar.toml").write_text(toml.replace('file = "frames.mp4"', 'file = "frames.mkv"'))
    load_avatar(av, 320, 240, 25).close()
    data = (av / "frames.mkv").read_bytes()
    (av / "frames.mkv").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match=r"frames.mkv: the avatar video is damaged or cut short \(.*\): run "
                                         r"`dhlive avatar prepare` again"):
        load_avatar(av, 320, 240, 25)


# --------------------------------------------------------------------------- landmark and mouth arrays


LANDMARK_FILES = {
    "text": lambda p: p.write_text("468 points, one a line\n0.1 0.2 0.3\n"),
    "empty": lambda p: p.write_bytes(b""),
    "cut": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "pickle": lambda p: np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True),
    "wrong_shape": lambda p: np.save(p, np.zeros((1, 68, 2), np.float32)),
    "wrong_dtype": lambda p: np.save(p, np.zeros((1, 468, 3), np.uint8)),
    "nan": lambda p: np.save(p, np.full((1, 468, 3), np.nan, np.float32)),
}


@pytest.mark.parametrize("case", list(LANDMARK_FILES))
def test_a_landmark_file_that_is_not_a_landmark_array_is_one_error(photo_dir, tmp_path, case):
    av = _copy(photo_dir, tmp_path / "av")
    lm = av / "landmarks.npy"
    LANDMARK_FILES[case](lm)
    with pytest.raises(InputError) as e:
        load_avatar(av, 320, 240, 25)
    msg = str(e.value)
    assert msg.startswith(f"{lm}: not a landmark array"), msg
    assert "pickle" not in msg and "allow_pickle" not in msg


def test_a_text_landmark_file_is_one_cli_line(photo_dir, speech_wav, tmp_path):
    av = _copy(photo_dir, tmp_path / "av")
    (av / "landmarks.npy").write_text("not numbers\n")
    line = one_error(run_cli("render", speech_wav, "-o", tmp_path / "o.mp4", "--avatar", av, "--size", "320x240"))
    assert line == f"error: {av / 'landmarks.npy'}: not a landmark array (corrupt or not written by dhlive avatar prepare)"
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("case", ["text", "wrong_shape", "wrong_dtype"])
def test_a_mouth_bank_that_is_not_an_array_of_mouths_is_one_error(photo_dir, tmp_path, case):
    """A [mouths] table (as prepare writes for a clip that talks) over a mouths.npy that is not
    (k, rows, cols, 3) uint8; a proper one loads."""
    av = _copy(photo_dir, tmp_path / "av")
    with open(av / "avatar.toml", "a") as f:
        f.write('\n[mouths]\nfile = "mouths.npy"\nopenings = [0.2, 0.5]\n')
    m = av / "mouths.npy"
    np.save(m, np.full((2, 48, 128, 3), 90, np.uint8))
    load_avatar(av, 320, 240, 25).close()
    if case == "text":
        m.write_text("teeth\n")
    elif case == "wrong_shape":
        np.save(m, np.zeros((2, 48, 128), np.uint8))
    else:
        np.save(m, np.zeros((2, 48, 128, 3), np.float64))
    with pytest.raises(InputError) as e:
        load_avatar(av, 320, 240, 25)
    msg = str(e.value)
    assert msg.startswith(f"{m}: not an array of mouth pictures"), msg
    assert "pickle" not in msg
