"""Render benchmarks: speed against the encoder alone on the same frames, and memory against input length.

    python benchmarks/bench_render.py speed  [--seconds 20] [--repeats 3] [--sizes 360p,720p,1080p]
    python benchmarks/bench_render.py memory [--short 60] [--long 3600] [--preset low]

speed: for each size, the engine renders the speech once in-process with the CLI's settings and
keeps every frame exactly as it reaches the encoder (raw I420) and the audio (f32le) in a temp
dir. Then, alternating, --repeats times: `dhlive render` (the real CLI, default preset, x264
veryfast) and the *same-frames floor*: the identical ffmpeg command the render runs, reading
those frames and that audio from the files instead of from pipes -- x264 alone on exactly the
pictures dhlive makes, in the format it consumes. Medians; render/floor is the share of the
encoder's speed dhlive keeps (1.0 = drawing, converting and piping cost nothing). Render time
runs from the start of the decoder and encoder children (which `dhlive render` starts before it
loads the model and the avatar: that loading is inside it) to the complete file, as the
floor's time is its ffmpeg process from start to exit; the whole `dhlive render` process
wall time (interpreter, imports, model and avatar loading) is printed beside it. The load
average is printed with each size: on a shared machine the ratio is the figure to read.

memory: peak RSS of the dhlive process (and, separately, its ffmpeg child) for a short and a
long input; the long/short ratio shows whether memory depends on input length.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import median, run_render, speech_file  # noqa: E402
from dhlive_cli.engine import render_encoder  # noqa: E402
from dhlive_cli.presets import NAMED_SIZES, load_preset  # noqa: E402
from dhlive_cli.sinks import EncoderOptions, build_encode_command, encoder_env  # noqa: E402


class KeepSink:
    """A sink that keeps what the encoder would get: I420 frames and f32le audio, in two files."""

    def __init__(self, video: Path, audio: Path):
        self._v, self._a = open(video, "wb"), open(audio, "wb")
        self.frames = 0

    def open(self):
        return self

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        self._v.write(memoryview(frame).cast("B"))
        self._a.write(memoryview(np.ascontiguousarray(audio, np.float32)).cast("B"))
        self.frames += 1

    def close(self) -> None:
        self._v.close()
        self._a.close()

    def abort(self) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        return []


def keep_frames(src: Path, size: str, tmp: Path) -> tuple[Path, Path, int]:
    """Render src at size in-process with the CLI's defaults; the frames and audio go to files."""
    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.engine import RenderSession
    from dhlive_cli.inference import InferenceOptions, InferencePool

    preset = load_preset("default")
    w, h = NAMED_SIZES[size]
    preset = replace(preset, width=w, height=h)
    pool = InferencePool(None, InferenceOptions(sessions=preset.inference_sessions, intra_threads=preset.inference_threads))
    video, audio = tmp / f"frames-{size}.yuv", tmp / f"audio-{size}.f32"
    sink = KeepSink(video, audio)
    session = RenderSession(src, None, avatar=load_avatar(None, w, h, preset.fps), pool=pool, preset=preset, sink=sink)
    res = session.run()
    return video, audio, res.frames


def floor_command(video: Path, audio: Path, out: Path, w: int, h: int, enc: EncoderOptions) -> list[str]:
    """The render's own encoder command (sinks.build_encode_command), its two pipes replaced by files."""
    cmd = build_encode_command(str(out), "mp4", w, h, 25, 3, enc, movflags="+faststart")
    cmd[cmd.index("pipe:0")] = str(video)
    cmd[cmd.index("pipe:3")] = str(audio)
    return cmd


def time_floor(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one ffmpeg run (env: the render's
    encoder environment, sinks.encoder_env)."""
    r0 = os.times()
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env)
    wall = time.monotonic() - t0
    r1 = os.times()
    return wall, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)


def speed(seconds: float, repeats: int, sizes: list[str]) -> dict:
    preset = load_preset("default")
    enc = render_encoder(preset)  # the settings `dhlive render` uses
    with tempfile.TemporaryDirectory(prefix="dhlive-bench-") as d:
        return _speed(Path(d), seconds, repeats, enc, sizes)


def _speed(tmp: Path, seconds: float, repeats: int, enc: EncoderOptions, sizes: list[str]) -> dict:
    src = speech_file(tmp / "speech.wav", seconds)
    rows = {}
    for size in sizes:
        w, h = NAMED_SIZES[size]
        video, audio, frames = keep_frames(src, size, tmp)
        cmd = floor_command(video, audio, tmp / "floor.mp4", w, h, enc)
        load0 = os.getloadavg()[0]
        r_s, p_s, f_s, f_cpu, r_cpu = [], [], [], [], []
        for _ in range(repeats):
            res, _, wall = run_render([str(src), "-o", str(tmp / "r.mp4"), "--size", size])
            assert res["frames"] == frames, (res["frames"], frames)
            # from the encoder's start, as the floor's ffmpeg run is timed (render_io starts it
            # before the model and avatar load)
            r_s.append(res["io_elapsed_s"])
            r_cpu.append(res["cpu_s"])
            p_s.append(wall)
            fw, fc = time_floor(cmd, encoder_env(enc))
            f_s.append(fw)
            f_cpu.append(fc)
        load1 = os.getloadavg()[0]
        video.unlink()
        audio.unlink()
        r, f = median(r_s), median(f_s)
        rows[size] = {"frames": frames, "render_s": round(r, 3), "floor_s": round(f, 3),
                      "process_wall_s": round(median(p_s), 3), "floor_cpu_s": round(median(f_cpu), 3),
                      "render_cpu_s": round(median(r_cpu), 3), "cpu_ratio": round(median(f_cpu) / median(r_cpu), 3),
                      "render_fps": round(frames / r, 1), "floor_fps": round(frames / f, 1),
                      "render_rtf": round(seconds / r, 2), "floor_rtf": round(seconds / f, 2),
                      "ratio": round(f / r, 3), "load_avg_1min": [round(load0, 2), round(load1, 2)]}
        x = rows[size]
        print(f"{size:>6}: render {x['render_fps']} fps ({x['render_rtf']}x real time; whole process "
              f"{x['process_wall_s']} s), same-frames floor {x['floor_fps']} fps ({x['floor_rtf']}x), "
              f"ratio {x['ratio']:.3f} (CPU {x['floor_cpu_s']} / {x['render_cpu_s']} s = {x['cpu_ratio']:.3f})  [load {load0:.1f} -> {load1:.1f}]", flush=True)
    return {"seconds": seconds, "repeats": repeats, "x264_preset": enc.preset, "floor": "same frames, I420",
            "cores": os.cpu_count(), "sizes": rows}


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
    s.add_argument("--sizes", default="360p,720p,1080p")
    m = sub.add_parser("memory")
    m.add_argument("--short", type=float, default=60.0)
    m.add_argument("--long", type=float, default=3600.0)
    m.add_argument("--preset", default="low")
    ap.add_argument("--json", type=Path, help="also write the result here")
    a = ap.parse_args()
    res = speed(a.seconds, a.repeats, a.sizes.split(",")) if a.what == "speed" else memory(a.short, a.long, a.preset)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
