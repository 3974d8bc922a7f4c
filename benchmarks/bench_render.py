"""Render benchmarks: speed against the encode-only floor, and memory against input length.

    python benchmarks/bench_render.py speed  [--seconds 20] [--repeats 3]
    python benchmarks/bench_render.py memory [--short 60] [--long 3600] [--preset low]

speed: for 360p/720p/1080p, the realtime factor of `dhlive render` (default preset encoder
settings) and of the encode-only floor: the same number of frames and the same audio piped from
a trivial numpy loop into the same ffmpeg command. Runs alternate render/floor so machine noise
hits both; medians of --repeats. The ratio render/floor is what the engine costs on top of x264.

memory: peak RSS of the dhlive process (and, separately, its ffmpeg child) for a short and a
long input; the long/short ratio shows whether memory depends on input length.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import median, run_render, speech_file  # noqa: E402
from dhlive_cli.presets import NAMED_SIZES, load_preset  # noqa: E402
from dhlive_cli.sinks import EncoderOptions, FfmpegSink  # noqa: E402


def encode_floor(path: Path, width: int, height: int, frames: int, enc: EncoderOptions) -> float:
    """Seconds to pipe `frames` trivially made frames (+ their audio) into the same encoder."""
    frame = np.zeros((height, width, 3), np.uint8)
    audio = np.zeros(640, np.float32)
    t0 = time.monotonic()
    with FfmpegSink(str(path), width, height, 25, enc) as sink:
        for k in range(frames):
            frame[:, :, 0] = k & 255  # a changing picture, so x264 cannot skip everything
            frame[height // 3 : height // 2, width // 3 : width // 2] = (k * 7) & 255
            sink.write(frame, audio)
    return time.monotonic() - t0


def speed(seconds: float, repeats: int) -> dict:
    preset = load_preset("default")
    enc = EncoderOptions(preset=preset.encoder_preset, crf=preset.crf, threads=preset.encoder_threads,
                         audio_bitrate=preset.audio_bitrate, gop_seconds=preset.gop_seconds)
    with tempfile.TemporaryDirectory(prefix="dhlive-bench-") as d:
        return _speed(Path(d), seconds, repeats, enc)


def _speed(tmp: Path, seconds: float, repeats: int, enc: EncoderOptions) -> dict:
    src = speech_file(tmp / "speech.wav", seconds)
    rows = {}
    for size in ("360p", "720p", "1080p"):
        w, h = NAMED_SIZES[size]
        frames = int(np.ceil(seconds * 25))
        r_rtf, f_rtf = [], []
        for _ in range(repeats):
            res, _, _ = run_render([str(src), "-o", str(tmp / "r.mp4"), "--size", size])
            r_rtf.append(res["realtime_factor"])
            f_rtf.append(seconds / encode_floor(tmp / "f.mp4", w, h, frames, enc))
        rows[size] = {"render_rtf": round(median(r_rtf), 2), "floor_rtf": round(median(f_rtf), 2),
                      "ratio": round(median(r_rtf) / median(f_rtf), 3),
                      "render_fps": round(median(r_rtf) * 25, 1), "floor_fps": round(median(f_rtf) * 25, 1)}
        print(f"{size:>6}: render {rows[size]['render_rtf']:5.2f}x real time ({rows[size]['render_fps']} fps), "
              f"encode-only floor {rows[size]['floor_rtf']:5.2f}x ({rows[size]['floor_fps']} fps), "
              f"ratio {rows[size]['ratio']:.3f}", flush=True)
    return {"seconds": seconds, "repeats": repeats, "x264_preset": enc.preset, "sizes": rows}


def memory(short: float, long: float, preset: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="dhlive-bench-") as d:
        return _memory(Path(d), short, long, preset)


def _memory(tmp: Path, short: float, long: float, preset: str) -> dict:
    out = {}
    for label, secs in (("short", short), ("long", long)):
        src = speech_file(tmp / f"{label}.wav", secs)
        res, s, wall = run_render([str(src), "-o", str(tmp / f"{label}.mp4"), "--preset", preset])
        out[label] = {"input_s": secs, "frames": res["frames"], "wall_s": round(wall, 1),
                      "peak_rss_mb": round(s.peak_main / 2**20, 1),
                      "peak_ffmpeg_rss_mb": round(s.peak_children / 2**20, 1)}
        print(f"{label:>5} {secs / 60:6.1f} min input: peak RSS {out[label]['peak_rss_mb']} MB "
              f"(ffmpeg child {out[label]['peak_ffmpeg_rss_mb']} MB), {res['frames']} frames in {wall:.0f} s", flush=True)
        (tmp / f"{label}.mp4").unlink()
    out["long_over_short"] = round(out["long"]["peak_rss_mb"] / out["short"]["peak_rss_mb"], 3)
    print(f"long/short peak RSS ratio: {out['long_over_short']:.3f} (must be <= 1.10)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--seconds", type=float, default=20.0)
    s.add_argument("--repeats", type=int, default=3)
    m = sub.add_parser("memory")
    m.add_argument("--short", type=float, default=60.0)
    m.add_argument("--long", type=float, default=3600.0)
    m.add_argument("--preset", default="low")
    ap.add_argument("--json", type=Path, help="also write the result here")
    a = ap.parse_args()
    res = speed(a.seconds, a.repeats) if a.what == "speed" else memory(a.short, a.long, a.preset)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
