import subprocess

import numpy as np
import pytest
import soundfile as sf

from dhlive_cli.audio_probe import probe
from dhlive_cli.errors import InputError
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.sources import FileAudioSource
from tests.conftest import tone


def _decode_all(path, chunk=3200, program=None):
    src = FileAudioSource(path, program=program)
    buf = np.zeros(chunk, np.float32)
    parts = []
    with src:
        while n := src.read_into(buf):
            parts.append(buf[:n].copy())
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
@pytest.mark.parametrize("rate,channels", [(8000, 1), (22050, 2), (48000, 2), (16000, 1)])
def test_formats_rates_channels_decode_to_16k_mono(tmp_path, fmt, rate, channels):
    x = tone(1.0, rate, channels)
    wav = tmp_path / "in.wav"
    sf.write(wav, x, rate)
    path = tmp_path / f"in.{fmt}"
    if fmt != "wav":
        codec = {"flac": "flac", "mp3": "libmp3lame", "ogg": "libvorbis"}[fmt]
        subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(wav), "-c:a", codec, str(path)], check=True)
    a = _decode_all(path)
    # lossy codecs pad a few ms; the duration must still be 1 s to within 60 ms
    assert abs(len(a) - 16000) < 1000, len(a)
    assert 0.1 < np.sqrt(np.mean(a[2000:14000] ** 2)) < 0.4


def test_stereo_is_downmixed_not_left_only(tmp_path):
    x = np.zeros((16000, 2), np.float32)
    x[:, 1] = 0.5  # only the right channel has signal
    p = tmp_path / "r.wav"
    sf.write(p, x, 16000)
    a = _decode_all(p)
    assert abs(a[100:-100].mean() - 0.25) < 0.01


@pytest.mark.parametrize("layout", ["FL+FC", "BL+BR", "stereo"])
@pytest.mark.parametrize("program", [None, "source"])
def test_two_channels_of_any_layout_are_averaged(tmp_path, layout, program):
    """Two channels labelled other than left/right (a WAV's channel mask FL+FC or BL+BR):
    ffmpeg's resampler refused them ('Input channel layout ... is not supported'), so such a
    file did not decode at all; now it is mixed like stereo, and its program audio is kept."""
    p = tmp_path / "two.wav"
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "lavfi", "-i", "aevalsrc=0.2:d=1:s=16000",
                    "-f", "lavfi", "-i", "aevalsrc=0.6:d=1:s=16000", "-filter_complex",
                    f"[0][1]join=inputs=2:channel_layout={layout}[a]", "-map", "[a]", "-c:a", "pcm_f32le", str(p)],
                   check=True)
    a = _decode_all(p, program=program)
    assert len(a) == 16000 and abs(a[100:-100].mean() - 0.4) < 0.01


@pytest.mark.parametrize("kind", ["5.1 with a stereo track", "mono with a stereo track"])
def test_a_file_with_two_audio_tracks_decodes_the_default_track_whole(tmp_path, kind):
    """Several audio streams: the stream ffmpeg picks is decoded and mixed as before (the
    two-channel relabelling is for a file's only stream): speech in a 5.1 track's centre
    channel is heard, a mono first track decodes (the relabelling took FL/FR only: silence,
    and failed on the mono track)."""
    mono = tmp_path / "mono.wav"
    sf.write(mono, tone(1.0, 16000, 1), 16000)
    p = tmp_path / "two.mkv"
    if kind.startswith("5.1"):
        graph = ["-filter_complex", "[0:a]pan=5.1|c2=c0[s6];[0:a]pan=stereo|c0=c0|c1=c0[s2]", "-map", "[s6]",
                 "-map", "[s2]"]
    else:
        graph = ["-filter_complex", "[0:a]pan=stereo|c0=c0|c1=c0[s2]", "-map", "0:a", "-map", "[s2]"]
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(mono), *graph, "-c:a", "pcm_s16le",
                    "-disposition:a:0", "default", "-disposition:a:1", "0", str(p)], check=True)
    a, ref = _decode_all(p), _decode_all(mono)
    assert abs(len(a) - 16000) < 400
    rms = lambda x: float(np.sqrt(np.mean(x[2000:14000] ** 2)))  # noqa: E731
    # heard, not silent (ffmpeg's normalised 5.1 downmix puts the centre at about 0.3 of its level)
    assert rms(a) > 0.2 * rms(ref), (rms(a), rms(ref))


@pytest.mark.parametrize("default", ["mono", "FL+FC", "5.1", "none (the most channels)"])
@pytest.mark.parametrize("program", [None, "source"])
def test_of_several_tracks_the_default_one_decodes_at_its_own_level(tmp_path, default, program):
    """Three tracks: mono 0.2, a pair (0.6 and 0.2, labelled FL+FC) and 5.1 (0.3 in the
    centre). The decoded track is ffmpeg's choice (the default one, else the most channels), and
    it is mixed as that track's own channels say: a mono default once came out 3 dB low
    (upmixed to stereo because *another* track had two channels, then averaged) and an FL+FC
    default did not decode (the relabelling was for a file's only stream)."""
    gen = [ffmpeg_path(), "-v", "error", "-y"]
    for v in (0.2, 0.6, 0.3):
        gen += ["-f", "lavfi", "-i", f"aevalsrc={v}:d=1:s=16000"]
    graph = "[1][0]join=inputs=2:channel_layout=FL+FC[pair];[2]pan=5.1|c2=c0[six]"
    tracks = {"mono": 0, "FL+FC": 1, "5.1": 2}
    disp = []
    for name, k in tracks.items():
        disp += [f"-disposition:a:{k}", "default" if name == default else "0"]
    p = tmp_path / "three.mkv"
    subprocess.run(gen + ["-filter_complex", graph, "-map", "0", "-map", "[pair]", "-map", "[six]", "-c:a", "pcm_f32le",
                          *disp, str(p)], check=True)
    a = _decode_all(p, program=program)[200:-200]
    assert abs(len(a) + 400 - 16000) < 400
    if default == "mono":
        assert abs(a.mean() - 0.2) < 0.01, a.mean()
    elif default == "FL+FC":
        assert abs(a.mean() - 0.4) < 0.01, a.mean()
    else:  # the 5.1 track: ffmpeg's own downmix of its centre channel, heard
        assert a.mean() > 0.05, a.mean()


@pytest.mark.parametrize("layout,title", [("mono", "Audio: aac, 44100 Hz, stereo"),
                                          ("FL+FC", "Stream #0:1: Audio: none"),
                                          ("stereo", "Duration: 09:00:00.00")])
def test_a_tag_that_reads_like_a_stream_line_changes_nothing(tmp_path, layout, title):
    """ffmpeg's stream lines are read where they start, not inside a tag's value: a mono file
    titled like a stereo stream was relabelled as a pair (channel 1 missing: no decode), a single
    pair titled like a second stream was not relabelled (no decode), a title like a duration
    was taken for the length."""
    src = tmp_path / "src.wav"
    graph = ("[0][1]join=inputs=2:channel_layout=FL+FC[a]" if layout == "FL+FC" else
             "[0]anull[a]" if layout == "mono" else "[0][1]join=inputs=2:channel_layout=stereo[a]")
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "lavfi", "-i", "aevalsrc=0.4:d=1:s=16000", "-f", "lavfi",
                    "-i", "aevalsrc=0.4:d=1:s=16000", "-filter_complex", graph, "-map", "[a]", "-c:a", "pcm_f32le",
                    str(src)], check=True)
    p = tmp_path / "tagged.mov"
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(src), "-c:a", "pcm_s16le", "-metadata",
                    f"title={title}", str(p)], check=True)
    info = probe(p)
    assert info.duration_s is not None and abs(info.duration_s - 1.0) < 0.1
    a = _decode_all(p)
    assert abs(len(a) - 16000) < 400 and abs(a[100:-100].mean() - 0.4) < 0.02, a[100:-100].mean()


def test_chunked_reads_cover_every_sample(tmp_path):
    x = (np.arange(16123) % 100 / 1000).astype(np.float32)
    p = tmp_path / "ramp.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    a = _decode_all(p, chunk=640)
    assert len(a) == 16123 and np.allclose(a, x, atol=1e-6)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        probe(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    with pytest.raises(InputError, match="not an audio file"):
        probe(tmp_path / "text.wav")
    good = tmp_path / "good.wav"
    sf.write(good, tone(1.0), 16000)
    (tmp_path / "trunc.wav").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated"):
        probe(tmp_path / "trunc.wav")
    with pytest.raises(InputError, match="directory"):
        probe(tmp_path)


def test_a_wav_written_to_a_pipe_by_espeak_decodes_whole(tmp_path):
    """`espeak-ng --stdout "..." > speech.wav` puts 0x7FFFF000 as the data size (it cannot know
    the length on a pipe): render, lipsync and the API refused it as "truncated WAV file (data
    chunk says 2147479552 bytes, file has ...)". Such sizes, like 0 and 0xFFFFFFFF, mean: to
    the end of the file."""
    import subprocess

    r = subprocess.run(["espeak-ng", "--stdout", "Papa bought a big blue bag."], capture_output=True)
    if r.returncode != 0:
        pytest.skip("espeak-ng not installed")
    wav = tmp_path / "speech.wav"
    wav.write_bytes(r.stdout)
    assert r.stdout[40:44] == (0x7FFFF000).to_bytes(4, "little")  # what espeak-ng writes there
    info = probe(wav)
    n = (len(r.stdout) - 44) // 2  # 16-bit mono samples after the 44-byte header
    assert info.duration_s == pytest.approx(n / 22050, abs=0.01)
    a = _decode_all(wav, chunk=640)
    assert abs(len(a) - n * 16000 / 22050) < 16


def _speechlike(seconds=3.0, rate=16000):
    from tests.conftest import tone as _tone

    return _tone(seconds, rate, 1)


@pytest.mark.parametrize("chunk", [640, 32000])
def test_phase_inverted_stereo_falls_back_to_one_channel(tmp_path, chunk, caplog):
    x = _speechlike()
    p = tmp_path / "inv.wav"
    sf.write(p, np.stack([x, -0.8 * x], axis=1), 16000)  # right inverted (and a little weaker)
    with caplog.at_level("WARNING", logger="dhlive_cli.sources"):
        src = FileAudioSource(p)
        a = _decode_all(p, chunk=chunk)
    warnings = [r for r in caplog.records if "cancel" in r.getMessage()]
    assert len(warnings) == 1 and "left channel" in warnings[0].getMessage()
    assert src.info.two_channels
    # the stronger (left) channel, sample for sample from the first samples on
    assert len(a) == len(x) and np.abs(a[chunk:] - x[chunk:]).max() < 1e-4
    assert np.sqrt(np.mean(a ** 2)) > 0.5 * np.sqrt(np.mean(x ** 2))


def test_ordinary_stereo_is_averaged_without_warning(tmp_path, caplog):
    rng = np.random.default_rng(1)
    x = _speechlike()
    y = (0.2 * rng.standard_normal(len(x))).astype(np.float32)  # uncorrelated channels: mix is -3 dB
    p = tmp_path / "st.wav"
    sf.write(p, np.stack([x, y], axis=1), 16000, subtype="FLOAT")
    with caplog.at_level("WARNING", logger="dhlive_cli.sources"):
        a = _decode_all(p)
    assert not [r for r in caplog.records if "cancel" in r.getMessage()]
    assert np.abs(a - (x + y) / 2).max() < 1e-5
    # a silent file with an inverted hiss far below -40 dBFS is not judged either
    q = tmp_path / "quiet.wav"
    z = (1e-4 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(q, np.stack([z, -z], axis=1), 16000, subtype="FLOAT")
    src = FileAudioSource(q)
    with src:
        src.read_into(np.zeros(16000, np.float32))
    assert src.fallback_channel is None


@pytest.mark.parametrize("layout", ["FL+FC", "stereo", "mono"])
def test_stdin_redirected_from_a_file_decodes_as_that_file(tmp_path, layout):
    """`dhlive lipsync - < speech.wav`: stdin that is a file is probed and decoded as the file
    (an FL+FC pair failed: 'Error while processing the decoded data'); the track equals the one
    the file's name gives. Piped, the same bytes still decode (the one-pass path)."""
    import sys

    from tests.conftest import speak

    mono = tmp_path / "speech.wav"
    sf.write(mono, speak("Bob and Pam meet by the map.", mono), 16000)
    p = tmp_path / "two.wav"
    graph = {"FL+FC": ["-filter_complex", "[0][0]join=inputs=2:channel_layout=FL+FC[a]", "-map", "[a]"],
             "stereo": ["-ac", "2"], "mono": []}[layout]
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(mono), *graph, "-c:a", "pcm_s16le", str(p)], check=True)
    cmd = [sys.executable, "-m", "dhlive_cli", "lipsync", "-f", "frames", "-o", "-"]
    by_name = subprocess.run(cmd[:4] + [str(p)] + cmd[4:], capture_output=True, timeout=120)
    assert by_name.returncode == 0, by_name.stderr
    with open(p, "rb") as f:
        redirected = subprocess.run(cmd[:4] + ["-"] + cmd[4:], stdin=f, capture_output=True, timeout=120)
    assert redirected.returncode == 0, redirected.stderr
    assert redirected.stdout == by_name.stdout
    if layout != "FL+FC":  # a pipe cannot be probed first: FL+FC there is a known limit
        piped = subprocess.run(cmd[:4] + ["-"] + cmd[4:], input=p.read_bytes(), capture_output=True, timeout=120)
        assert piped.returncode == 0 and piped.stdout.count(b"\n") == by_name.stdout.count(b"\n"), piped.stderr


def test_the_default_track_is_found_among_other_flags_and_programs(tmp_path):
    """A default track that is also marked "comment" (ffmpeg lists "(default) (comment)") was
    not taken for the default: the silent track beside it was decoded. An MPEG-TS stream in two
    programs is listed twice: counting lines named a fourth track that does not exist."""
    speech, silence = tmp_path / "speech.wav", tmp_path / "silence.wav"
    sf.write(speech, tone(1.0, 16000, 1), 16000)
    sf.write(silence, np.zeros((16000, 2), np.float32), 16000)
    ff = [ffmpeg_path(), "-v", "error", "-y"]
    flagged = tmp_path / "flagged.mkv"
    subprocess.run(ff + ["-i", str(silence), "-i", str(speech), "-map", "0", "-map", "1", "-c:a", "flac",
                         "-disposition:a:0", "0", "-disposition:a:1", "default+comment", str(flagged)], check=True)
    a = _decode_all(flagged)
    assert np.sqrt(np.mean(a[2000:14000] ** 2)) > 0.1  # the speech track, not the silence
    ts = tmp_path / "two_programs.ts"
    subprocess.run(ff + ["-i", str(speech), "-i", str(speech), "-i", str(silence), "-map", "0", "-map", "1", "-map", "2",
                         "-c:a", "mp2", "-program", "title=P1:st=0:st=1", "-program", "title=P2:st=0:st=2", str(ts)],
                   check=True)
    info = probe(ts)
    assert info.stream == 2 and info.channels == 2  # ffmpeg's own pick: the most channels
    assert abs(len(_decode_all(ts)) - 16000) < 1200
