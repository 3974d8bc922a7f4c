"""Sample rates, channels and frame rates: the source's sound in the file, any fps 1..60, the
model's 25 Hz track resampled to the video rate, exact frame grids. Real ffmpeg and ffprobe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from dhlive_cli.cli import app
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.mouth_rate import MouthResampler, frame_weights, resample_track
from dhlive_cli.timebase import Timebase, check_fps
from tests.conftest import ffprobe_json, needs_espeak, needs_ffprobe, speak, tone

runner = CliRunner()
SMALL = ["--preset", "low", "--size", "320x240", "--quiet", "--metrics", "off"]


def _render(*args):
    return runner.invoke(app, ["render", *map(str, args)], catch_exceptions=False)


def _decode(path: Path, rate: int, channels: int) -> np.ndarray:
    """The audio track of path as float32 (n, channels) at rate, decoded by ffmpeg."""
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-map", "0:a", "-f", "f32le",
                          "-ar", str(rate), "-ac", str(channels), "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).reshape(-1, channels)


def _streams(path: Path) -> tuple[dict, dict]:
    info = ffprobe_json(path)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    return v, a


def _aligned_corr(got: np.ndarray, ref: np.ndarray, max_lag: int = 4096) -> tuple[float, int]:
    """Correlation of got with ref at the lag (got later by lag samples, AAC priming and such)
    where their cross-correlation peaks."""
    n = min(len(ref), len(got) - max_lag)
    xc = np.correlate(got[: n + max_lag], ref[:n], mode="valid")
    lag = int(np.argmax(xc))
    return float(np.corrcoef(got[lag : lag + n], ref[:n])[0, 1]), lag


# ---------------------------------------------------------------------------------- clocks
def test_rational_frame_grid_has_no_drift():
    tb = Timebase(30)
    assert [tb.frame_samples(k) for k in range(6)] == [533, 533, 534, 533, 533, 534]
    assert tb.frame_start(30) == 16000 and tb.frame_start(108000) == 3600 * 16000  # one hour, exact
    assert tb.frame_start(30, 44100) == 44100 and tb.frame_start(7, 48000) == 11200
    assert tb.frame_time_ns(30) == 1_000_000_000 and tb.frame_time_ns(108000) == 3600 * 10**9
    assert tb.frames_for_samples(16000) == 30 and tb.frames_for_samples(16001) == 31
    assert Timebase(24).frames_for_samples(48000 * 10, 48000) == 240
    for fps in (1, 24, 25, 30, 50, 60):
        t = Timebase(fps)
        assert sum(t.frame_samples(k, 44100) for k in range(fps * 7)) == 7 * 44100


@pytest.mark.parametrize("bad", [0, 61, -25, 29.97, True, "30"])
def test_fps_outside_1_to_60_is_refused(bad):
    with pytest.raises(ValueError, match="1 to 60"):
        check_fps(bad)


def test_track_resampling_is_identity_at_25_interpolates_up_and_averages_down():
    rng = np.random.default_rng(1)
    track = rng.random((50, 4)).astype(np.float32)
    assert np.array_equal(resample_track(track, 25), track)
    up = resample_track(track, 50)  # frame k's centre is model position (k - 0.5) / 2
    assert up.shape == (100, 4)
    assert np.allclose(up[3], 0.75 * track[1] + 0.25 * track[2])
    assert np.allclose(up[4], 0.25 * track[1] + 0.75 * track[2])
    assert np.allclose(up[0], track[0])  # before the first centre: held
    down = resample_track(track, 5)  # one frame = five model frames: their mean
    assert down.shape == (10, 4) and np.allclose(down[2], track[10:15].mean(axis=0), atol=1e-6)
    w = frame_weights(0, 24)  # 41.7 ms: all of model frame 0 and 1/24 of frame 1
    assert [j for j, _ in w] == [0, 1] and np.isclose(sum(x for _, x in w), 1.0)
    assert np.isclose(w[0][1], 24 / 25) and np.isclose(w[1][1], 1 / 25)


@pytest.mark.parametrize("fps", [1, 24, 30, 60])
def test_streaming_resampler_equals_the_whole_track(fps):
    rng = np.random.default_rng(fps)
    track = rng.random((137, 4)).astype(np.float32)
    n = -(-137 * fps // 25)
    whole = resample_track(track, fps, n)
    r = MouthResampler(fps, max_push_rows=7)
    out = np.zeros((n, 4), np.float32)
    got = 0
    for s in range(0, 137, 7):  # rows arrive a few at a time, frames are taken as they are ready
        r.push(track[s : s + 7])
        got += r.take(out[got:])
    r.finish(n)
    got += r.take(out[got:])
    assert got == n and np.allclose(out, whole, atol=1e-6)


@pytest.mark.parametrize("fps", [24, 25, 60])
def test_streaming_resampler_holds_rows_while_frames_cannot_be_taken(fps):
    """Render pushes model rows while it waits for the program audio (the decoder's other output,
    which can lag behind): many pushes with no take() in between must not fail or change the result
    (it failed with 'MouthResampler overflow' on a loaded machine)."""
    rng = np.random.default_rng(fps)
    track = rng.random((300, 4)).astype(np.float32)
    n = -(-300 * fps // 25)
    r = MouthResampler(fps, max_push_rows=7)
    for s in range(0, 300, 7):
        r.push(track[s : s + 7])
    r.finish(n)
    out = np.zeros((n, 4), np.float32)
    assert r.take(out) == n and np.allclose(out, resample_track(track, fps, n), atol=1e-6)


# ---------------------------------------------------------------------------------- render: sound
@pytest.fixture(scope="module")
def stereo48(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """~3 s at 48 kHz stereo, different in each channel: speech left, speech plus a tone right."""
    d = tmp_path_factory.mktemp("s48")
    voice = speak("The quick brown fox jumps over the lazy dog.", d / "v.wav") if _espeak() else tone(3.0)
    n = int(len(voice) * 3)  # 16 kHz -> 48 kHz
    v48 = np.interp(np.arange(n) / 3.0, np.arange(len(voice)), voice).astype(np.float32)
    t = np.arange(n) / 48000
    x = np.stack([0.8 * v48, 0.5 * v48 + 0.1 * np.sin(2 * np.pi * 330 * t)], axis=1).astype(np.float32)
    p = d / "stereo48.wav"
    sf.write(p, x, 48000, subtype="PCM_16")
    x, _ = sf.read(p, dtype="float32")  # what the file holds, 16-bit rounding included
    return p, x


def _espeak() -> bool:
    from tests.conftest import ESPEAK

    return ESPEAK is not None


@needs_ffprobe
def test_48k_stereo_is_kept_and_matches_the_input(stereo48, tmp_path):
    src, x = stereo48
    out = tmp_path / "o.mp4"
    res = _render(src, "-o", out, *SMALL, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert (rep["audio_rate"], rep["audio_channels"]) == (48000, 2)
    v, a = _streams(out)
    assert a["codec_name"] == "aac" and int(a["sample_rate"]) == 48000 and int(a["channels"]) == 2
    got = _decode(out, 48000, 2)
    for ch in (0, 1):
        r, lag = _aligned_corr(got[:, ch], x[:, ch])
        print(f"channel {ch}: r={r:.4f} at lag {lag}")
        assert r >= 0.99, f"channel {ch} r={r:.4f}"
    r_swapped, _ = _aligned_corr(got[:, 0], x[:, 1])
    assert r_swapped < 0.95, "the channels are kept apart, not mixed"
    assert abs(float(v["duration"]) - float(a["duration"])) < 1 / 25


@needs_ffprobe
@pytest.mark.parametrize("rate,channels,want", [(44100, 1, 44100), (8000, 1, 8000), (96000, 2, 48000),
                                                 (37800, 1, 32000)])
def test_other_rates_kept_when_aac_has_them_else_nearest(tmp_path, rate, channels, want):
    src = tmp_path / "in.wav"
    sf.write(src, tone(1.5, rate, channels), rate, subtype="PCM_16")
    out = tmp_path / "o.mp4"
    res = _render(src, "-o", out, *SMALL)
    assert res.exit_code == 0, res.output
    _, a = _streams(out)
    assert (int(a["sample_rate"]), int(a["channels"])) == (want, channels)
    assert abs(float(a["duration"]) - 1.5) < 0.05


@needs_ffprobe
def test_phase_inverted_48k_stereo_is_fixed_in_the_file_too(stereo48, tmp_path):
    src, x = stereo48
    inv = tmp_path / "inv.wav"
    sf.write(inv, np.stack([x[:, 0], -x[:, 0]], axis=1), 48000, subtype="PCM_16")
    out = tmp_path / "o.mp4"
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(inv), "-o", str(out), *SMALL],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert len([ln for ln in p.stderr.splitlines() if "cancel" in ln]) == 1, p.stderr
    mono = _decode(out, 48000, 2).mean(axis=1)  # what a mono speaker plays (ffmpeg's -ac 1 adds 3 dB)
    level = 20 * np.log10(np.sqrt(np.mean(mono ** 2)) / np.sqrt(np.mean(x[:, 0] ** 2)))
    print(f"phase-inverted 48 kHz stereo: mono mix of the file {level:+.1f} dB against the input channel")
    assert -1.5 < level < 1.5, f"mono mix {level:.1f} dB against the input channel"


# ---------------------------------------------------------------------------------- render: fps
@needs_ffprobe
@pytest.mark.parametrize("fps", [24, 30, 50, 60])
def test_any_common_fps_has_exact_frame_count_and_sync(stereo48, tmp_path, fps):
    src, x = stereo48
    out = tmp_path / f"o{fps}.mp4"
    res = _render(src, "-o", out, *SMALL, "--fps", fps)
    assert res.exit_code == 0, res.output
    v, a = _streams(out)
    duration = len(x) / 48000
    assert v["r_frame_rate"] == f"{fps}/1"
    frames = int(v["nb_read_frames"])
    print(f"{fps} fps: {frames} frames for {duration:.4f} s (round(d x fps) = {round(duration * fps)}), "
          f"video {v['duration']} s, audio {a['duration']} s")
    assert abs(frames - round(duration * fps)) <= 1, (frames, duration * fps)
    assert abs(float(v["duration"]) - float(a["duration"])) < 1 / fps, (v["duration"], a["duration"])


@pytest.mark.parametrize("fps", ["0", "61"])
def test_render_refuses_other_fps_with_one_line(tmp_path, fps):
    src = tmp_path / "in.wav"
    sf.write(src, tone(0.5), 16000)
    p = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(src), "-o", str(tmp_path / "o.mp4"),
                        "--fps", fps], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "1 to 60" in lines[0], lines
    assert not (tmp_path / "o.mp4").exists()


# ---------------------------------------------------------------------------------- lipsync
@needs_espeak
def test_lipsync_at_30_fps_is_the_25_hz_track_resampled(tmp_path):
    src = tmp_path / "s.wav"
    a = speak("Papa bought a big blue bag, and we will be back.", src)
    sf.write(src, a, 16000, subtype="PCM_16")
    tracks = {}
    for fps in (25, 30):
        out = tmp_path / f"t{fps}.tsv"
        res = runner.invoke(app, ["lipsync", str(src), "-o", str(out), "--format", "frames", "--fps", str(fps)],
                            catch_exceptions=False)
        assert res.exit_code == 0, res.output
        rows = [ln.split("\t") for ln in out.read_text().splitlines() if ln and not ln.startswith("#")]
        head, body = rows[0], rows[1:]
        tracks[fps] = np.array([[float(r[head.index(c)]) for c in ("time", "open")] for r in body])
    t30, t25 = tracks[30], tracks[25]
    assert len(t30) == -(-len(a) * 30 // 16000)
    assert np.allclose(np.diff(t30[:, 0]), 1 / 30, atol=1e-3)
    want = resample_track(np.stack([t25[:, 1]] * 4, axis=1).astype(np.float32), 30, len(t30))[:, 0]
    assert np.allclose(t30[:, 1], want, atol=2e-3)  # the file rounds to 3 decimals
    assert t30[:, 1].max() > 0.2, "the mouth opens"
