"""Speech on live's stdin: raw s16le 16 kHz mono, or WAV as TTS tools write it (stdin_pcm).

`espeak-ng --stdout | dhlive live --input -` played the 44-byte header as sound and the 22.05 kHz
samples as 16 kHz ones (a 3.5 s phrase over 4.8 s, the voice low). Each case here feeds real
WAVs written by ffmpeg; the 16 kHz result is compared with ffmpeg's own decoding and resampling
of the same file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.stdin_pcm import PcmStream

ROOT = Path(__file__).resolve().parents[1]


def _speechlike(seconds: float, rate: int) -> np.ndarray:
    """A 220 Hz tone whose loudness swings (so a time shift or a wrong rate shows), float32."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 220 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 1.3 * t))).astype(np.float32)


def _wav(tmp_path, x: np.ndarray, rate: int, channels: int, codec: str, name: str = "x.wav") -> bytes:
    """x written as a WAV by ffmpeg (codec pcm_s16le / pcm_f32le / pcm_s24le), channels copies."""
    raw = tmp_path / "in.f32"
    np.repeat(x[:, None], channels, axis=1).astype("<f4").tofile(raw)
    out = tmp_path / name
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", str(raw),
                    "-c:a", codec, str(out)], check=True)
    return out.read_bytes()


def _feed(data: bytes, step: int) -> np.ndarray:
    p = PcmStream()
    parts = [p.feed(data[i : i + step]) for i in range(0, len(data), step)]
    parts.append(p.finish())
    return np.concatenate(parts)


def test_raw_s16le_is_read_as_before():
    x = (_speechlike(1.0, 16000) * 32767).astype("<i2")
    for step in (1, 3, 4096):
        got = _feed(x.tobytes(), step)
        assert np.array_equal(got, x.astype(np.float32) / 32768.0)


@pytest.mark.parametrize("step", [1, 7, 65536])
def test_a_16k_mono_wav_is_its_samples_without_the_header(tmp_path, step):
    x = _speechlike(1.0, 16000)
    data = _wav(tmp_path, x, 16000, 1, "pcm_s16le")
    want = sf.read(tmp_path / "x.wav", dtype="float32")[0]
    got = _feed(data, step)
    assert got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("rate, channels, codec", [(22050, 1, "pcm_s16le"), (24000, 1, "pcm_f32le"),
                                                   (48000, 2, "pcm_s16le"), (44100, 6, "pcm_f32le"),
                                                   (8000, 1, "pcm_s16le")])
def test_other_rates_and_channels_are_resampled_to_16k_mono(tmp_path, rate, channels, codec):
    x = _speechlike(2.0, rate)
    data = _wav(tmp_path, x, rate, channels, codec)
    got = _feed(data, 4000)
    ref = _speechlike(2.0, 16000)
    assert abs(got.shape[0] - ref.shape[0]) <= 2, (got.shape, ref.shape)
    n = min(got.shape[0], ref.shape[0]) - 400
    # same timing and loudness as the signal made at 16 kHz (a wrong rate or a header read as
    # sound would shift or stretch it)
    assert np.corrcoef(got[200:n], ref[200:n])[0, 1] > 0.999
    assert abs(np.sqrt(np.mean(got[200:n] ** 2)) / np.sqrt(np.mean(ref[200:n] ** 2)) - 1) < 0.01


def test_wavs_one_after_another_on_one_stream_all_play(tmp_path):
    """A TTS writing one WAV per reply onto the same pipe: every header is skipped, each at its rate."""
    a, b = _speechlike(0.5, 16000), _speechlike(0.7, 22050)
    data = _wav(tmp_path, a, 16000, 1, "pcm_s16le", "a.wav") + _wav(tmp_path, b, 22050, 1, "pcm_s16le", "b.wav")
    got = _feed(data, 1000)
    assert abs(got.shape[0] - (8000 + 11200)) <= 2, got.shape
    assert np.abs(got[:8000] - sf.read(tmp_path / "a.wav", dtype="float32")[0]).max() == 0
    ref = _speechlike(0.7, 16000)
    assert np.corrcoef(got[8000 + 200 : 8000 + 11000], ref[200:11000])[0, 1] > 0.999


def test_a_streamed_wav_without_a_length_runs_to_the_end(tmp_path):
    """Writers on a pipe cannot know the length: data size 0xFFFFFFFF (or 0)."""
    x = _speechlike(1.0, 16000)
    data = bytearray(_wav(tmp_path, x, 16000, 1, "pcm_s16le"))
    at = data.index(b"data")
    for size in (0xFFFFFFFF, 0):
        data[at + 4 : at + 8] = size.to_bytes(4, "little")
        got = _feed(bytes(data), 333)
        assert got.shape[0] == 16000


def test_a_wav_it_cannot_play_is_refused_with_its_format(tmp_path):
    data = _wav(tmp_path, _speechlike(0.2, 16000), 16000, 1, "pcm_s24le")
    with pytest.raises(ValueError, match="24-bit integer samples; use 16-bit integer or 32-bit float"):
        _feed(data, 4096)


def test_a_header_announcing_a_huge_format_chunk_is_refused_at_once():
    """Waiting for all of a 4 GB 'fmt ' chunk would have kept every byte of stdin in memory."""
    p = PcmStream()
    with pytest.raises(ValueError, match="a 'fmt ' chunk of 4294967280 bytes"):
        p.feed(b"RIFF\xff\xff\xff\xffWAVEfmt \xf0\xff\xff\xff" + b"\0" * 64)


@pytest.mark.parametrize("what", ["wav", "raw"])
def test_live_plays_a_piped_wav_as_it_plays_the_raw_pcm(tmp_path, what):
    """The real command: the same phrase piped as a 22.05 kHz WAV and as raw 16 kHz PCM ends at
    the same moment of the recording (the WAV ran 37 % longer before)."""
    t = np.arange(int(1.5 * 22050)) / 22050
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # steady: its end is sharp
    wav = tmp_path / "tts.wav"
    sf.write(wav, speech, 22050, subtype="PCM_16")
    src = wav
    if what == "raw":
        src = tmp_path / "tts.raw"
        subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(wav), "-f", "s16le", "-ar", "16000", "-ac", "1", str(src)],
                       check=True)
    out = tmp_path / "rec.mkv"
    with open(src, "rb") as f:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--input", "-", "-o", str(out), "--duration", "4",
                            "--size", "160x90", "--quiet"], cwd=ROOT, stdin=f, capture_output=True, text=True,
                           timeout=300)
    assert r.returncode == 0, r.stderr
    played = np.frombuffer(subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(out), "-f", "f32le", "-ac", "1",
                                           "-ar", "16000", "pipe:1"], capture_output=True, check=True).stdout, np.float32)
    loud = np.flatnonzero(np.abs(played) > 0.05)
    assert loud.size, "no sound in the recording"
    heard = (loud[-1] - loud[0]) / 16000
    assert abs(heard - 1.5) < 0.05, heard  # 1.5 s of sound, not 1.5 x 22050 / 16000 = 2.07 s


def test_live_with_stdin_closed_runs_without_stdin_and_refuses_input_dash(tmp_path):
    """Started with stdin closed (a service), live crashed on sys.stdin.buffer even when no
    input read it; `--input -` then is one error line."""
    line = [sys.executable, "-m", "dhlive_cli", "live", "-o", str(tmp_path / "a.mkv"), "--duration", "1", "--size",
            "160x90", "--quiet"]
    r = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *line], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    line[line.index("-o") + 1] = str(tmp_path / "b.mkv")
    r = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *line, "--input", "-"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip() == ("error: session 'main': input -: standard input is closed; pipe "
                                                      "the speech in (my_tts | dhlive live --input - ...)"), r.stderr
    assert not (tmp_path / "b.mkv").exists()
    r = subprocess.run(line[:-1] + ["--input", "-"], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "standard input is /dev/null, no speech will come from it" in r.stderr, r.stderr


def _espeak_wav(text: str) -> bytes:
    r = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True)
    if r.returncode != 0 or not r.stdout.startswith(b"RIFF"):
        pytest.skip("espeak-ng not installed")
    return r.stdout


@pytest.mark.parametrize("size", [None, 0, 0xFFFFFFFF])
def test_tts_replies_one_after_another_play_without_their_headers(tmp_path, size):
    """espeak-ng --stdout writes data size 0x7FFFF000 (it cannot know the length on a pipe), as
    others write 0 or 0xFFFFFFFF: the next reply's 44-byte header played as a click (a 0.74
    full-scale spike) and 16 samples too many."""
    a, b = _espeak_wav("Hello there."), _espeak_wav("Papa bought a big blue bag.")
    if size is not None:
        a, b = (bytearray(w) for w in (a, b))
        for w in (a, b):
            at = w.index(b"data")
            w[at + 4 : at + 8] = size.to_bytes(4, "little")
        a, b = bytes(a), bytes(b)
    alone = [_feed(w, 4096) for w in (a, b)]
    for step in (1, 777, 65536):
        got = _feed(a + b, step)
        want = np.concatenate(alone)
        assert abs(got.shape[0] - want.shape[0]) <= 2, (step, got.shape, want.shape)
        n = alone[0].shape[0]
        # around the join: the sound of the two replies, nothing of a header
        assert np.abs(got[n - 200 : n + 200]).max() <= np.abs(want[n - 400 : n + 400]).max() + 0.02


def test_a_data_chunk_ending_inside_a_sample_does_not_stall(tmp_path):
    """3 bytes of 16-bit data (a sample and a half), then a normal WAV: the parser waited for
    the missing byte for ever and buffered all that followed (393 MB in a second)."""
    odd = b"RIFF" + (36 + 3).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little") + \
        (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little") + \
        (32000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little") + \
        b"data" + (3).to_bytes(4, "little") + b"\x10\x00\x20" + b"\x00"  # + the pad byte
    x = _speechlike(1.0, 16000)
    normal = _wav(tmp_path, x, 16000, 1, "pcm_s16le")
    got = _feed(odd + normal, 1000)
    want = sf.read(tmp_path / "x.wav", dtype="float32")[0]
    assert got.shape[0] == 1 + want.shape[0] and np.array_equal(got[1:], want)


def test_sound_that_happens_to_hold_riff_is_kept_and_floats_are_clipped(tmp_path):
    x = (_speechlike(0.5, 16000) * 32767).astype("<i2")
    x[1000:1002] = np.frombuffer(b"RIFF", "<i2")  # the bytes of a header's start, in the sound
    data = _wav(tmp_path, x.astype(np.float32) / 32768.0, 16000, 1, "pcm_s16le")
    got = _feed(data, 3)
    assert np.array_equal(got, sf.read(tmp_path / "x.wav", dtype="float32")[0])
    loud = _wav(tmp_path, np.full(1600, 50.0, np.float32), 16000, 1, "pcm_f32le", "loud.wav")
    assert np.abs(_feed(loud, 4096)).max() == 1.0
