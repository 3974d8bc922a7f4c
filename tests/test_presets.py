"""Preset files: every field checked, type and range, before anything starts (one `error:` line
naming the file and the field). A custom preset with `block_frames = 0` span a core for ever,
`-1` ended in a traceback, `queue_blocks = 100000000` asked for memory without end, and a bad
x264 preset, thread count or audio bit rate failed only once ffmpeg had started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dhlive_cli.errors import InputError
from dhlive_cli.presets import PRESETS_DIR, load_preset

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "presets" / "samples" / "hello.flac"


def _custom(tmp_path: Path, old: str | None, new: str) -> Path:
    text = (PRESETS_DIR / "low.toml").read_text()
    if old is None:
        text += "\n" + new + "\n"
    else:
        assert old in text, old
        text = text.replace(old, new, 1)
    p = tmp_path / "mine.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("old, new, says", [
    ("block_frames = 25", "block_frames = 0", "[engine] block_frames = 0: a whole number from 1 to 250"),
    ("block_frames = 25", "block_frames = -1", "[engine] block_frames = -1"),
    ("queue_blocks = 2", "queue_blocks = 100000000", "[engine] queue_blocks = 100000000"),
    ("queue_blocks = 2", "queue_blocks = 2.5", "[engine] queue_blocks = 2.5: a whole number"),
    ("queue_blocks = 2", "queue_blocks = true", "[engine] queue_blocks = True"),
    ("frame_ring = 6", "frame_ring = 4", "[engine] frame_ring = 4: at least queue_frames + 2 (5)"),
    ('preset = "ultrafast"', 'preset = "superslow"', "[encoder] preset = 'superslow': one of ultrafast"),
    ("threads = 0             # 0 lets", "threads = -3  # 0 lets", "[encoder] threads = -3"),
    ('audio_bitrate = "128k"', 'audio_bitrate = "lots"', "[encoder] audio_bitrate = 'lots': a bit rate"),
    ('audio_bitrate = "128k"', 'audio_bitrate = "9000k"', "[encoder] audio_bitrate = '9000k'"),
    ("crf = 28", "crf = 60", "[encoder] crf = 60: a whole number from 0 to 51"),
    ("gop_seconds = 2.0", "gop_seconds = 0", "[encoder] gop_seconds = 0: a number from 0.04 to 60"),
    ('size = "360p"', "size = 360", "[video] size = 360: a text such as"),
    ('size = "360p"', 'size = "99x99"', "[video] size: '99x99': width and height must be even"),
    ("fps = 25", "fps = 0", "[video] fps = 0: a whole number from 1 to 60"),
    ("fps = 25", "", "[video] fps is missing"),
    ("sessions = 1", "sessions = 0", "[inference] sessions = 0"),
    ("budget_mb = 400", "budget_mb = 1", "[memory] budget_mb = 1"),
    (None, "[extra]\nx = 1", "unknown section [extra]"),
    ("crf = 28", "crf = 28\ncrff = 20", "[encoder] unknown field 'crff' (known: preset, crf, threads,"),
])
def test_a_bad_field_is_named_with_its_file(tmp_path, old, new, says):
    p = _custom(tmp_path, old, new)
    with pytest.raises(InputError) as e:
        load_preset(str(p))
    assert str(e.value).startswith(f"{p}: ") and says in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_the_bundled_presets_and_an_optional_field_load(tmp_path):
    for name in ("low", "default", "high"):
        assert load_preset(name).name == name
    p = _custom(tmp_path, "threads = 0             # 0 lets x264 choose", "")  # [encoder] threads may be left out
    assert load_preset(str(p)).encoder_threads == 0
    p = _custom(tmp_path, 'audio_bitrate = "128k"', "audio_bitrate = 96000")  # bits per second, as ffmpeg takes
    assert load_preset(str(p)).audio_bitrate == "96000"
    # what the earlier, looser reader took stays valid: 25.0, "28", any case of an x264 preset
    for old, new, field, want in (("fps = 25", "fps = 25.0", "fps", 25), ("crf = 28", 'crf = "28"', "crf", 28),
                                  ('preset = "ultrafast"', 'preset = "UltraFast"', "encoder_preset", "ultrafast"),
                                  ("threads = 1             # intra", "threads = 32  # intra", "inference_threads", 32)):
        assert getattr(load_preset(str(_custom(tmp_path, old, new))), field) == want, new
    with pytest.raises(InputError, match="a bit rate"):  # digits ffmpeg cannot read
        load_preset(str(_custom(tmp_path, 'audio_bitrate = "128k"', 'audio_bitrate = "\u0661\u0662\u0668k"')))


@pytest.mark.parametrize("old, new", [("block_frames = 25", "block_frames = 0"),
                                      ("queue_blocks = 2", "queue_blocks = 100000000")])
def test_render_refuses_the_preset_before_it_starts(tmp_path, old, new):
    """block_frames = 0 rendered for ever (killed after 10 minutes); a bounded run says why."""
    p = _custom(tmp_path, old, new)
    out = tmp_path / "x.mp4"
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(SAMPLE), "-o", str(out), "--preset", str(p)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {p}: [engine] "), r.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["mine.toml"]
