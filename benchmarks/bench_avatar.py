"""Photo and video avatar benchmarks: compose time per frame, and memory against render and loop length.

    python benchmarks/bench_avatar.py compose [--size 720p] [--frames 600]
    python benchmarks/bench_avatar.py memory  [--short 60] [--long 300] [--preset default]
    python benchmarks/bench_avatar.py all

compose: per-frame time of avatar.render() for a photo avatar and a video avatar at the output
size, on one core (OpenCV and BLAS threads pinned to 1, the process pinned to one CPU when the OS
allows). The mouth follows the lip-sync model's track of the bundled speech sample. Reports the
median and p99 of wall time and of the compose thread's CPU time (the CPU figure is what the
drawing costs; wall time also shows what a busy machine adds). A video avatar's frames are
decoded and scaled by an ffmpeg child running beside the compose thread, and a reader thread of
the same process (pinned with it to its core) copies them out of the child's pipe; the CPU per
frame of each is reported separately.

memory: peak RSS of `dhlive render --avatar VIDEO` (and of its children: the encoder and the
avatar decoder) for a short and a long speech input with a short loop, and for the long input
with a loop four times longer. Frames are streamed from the loop file, so neither ratio may grow.

The test photo is scikit-image's astronaut (a dev-extra test image, never shipped as an avatar),
placed in a 1280x720 frame; the video avatar is a slow pan/zoom over it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SAMPLE, TreeSampler, speech_file  # noqa: E402


def _astronaut():
    import cv2

    try:
        from skimage import data
    except ImportError:
        raise SystemExit("scikit-image is needed for the test photo: pip install -e .[dev]") from None
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def make_sources(tmp: Path, loop_seconds: list[float]) -> dict:
    """A 1280x720 photo and pan/zoom clips of it, prepared as avatars."""
    import cv2

    from dhlive_cli.avatar.media import FrameEncoder
    from dhlive_cli.avatar.prepare import PrepareOptions, prepare_avatar

    img = _astronaut()
    frame = np.full((720, 1280, 3), 0, np.uint8)
    big = cv2.resize(img, (720, 720), interpolation=cv2.INTER_CUBIC)
    frame[:, 280:1000] = big
    frame[:, :280] = big[:, :1][:, [0] * 280]
    frame[:, 1000:] = big[:, -1:][:, [0] * 280]
    cv2.imwrite(str(tmp / "photo.png"), frame)
    out = {"photo": tmp / "photo_av"}
    prepare_avatar(tmp / "photo.png", out["photo"], PrepareOptions(preview=False))
    for secs in loop_seconds:
        n = int(round(secs * 25))
        clip = tmp / f"clip{secs:g}.mp4"
        with FrameEncoder(clip, 1280, 720, 25, crf=18, preset="veryfast") as enc:
            for k in range(n):
                t = k / n
                z = 1.0 + 0.05 * np.sin(np.pi * t)
                M = cv2.getRotationMatrix2D((640 + 12 * np.sin(2 * np.pi * t), 330), 1.2 * np.sin(2 * np.pi * t), z)
                enc.write(cv2.warpAffine(frame, M, (1280, 720), borderMode=cv2.BORDER_REFLECT))
        key = f"video{secs:g}"
        out[key] = tmp / f"{key}_av"
        prepare_avatar(clip, out[key], PrepareOptions(preview=False, max_seconds=secs + 1))
    return out


def mouth_track(n: int) -> np.ndarray:
    """The lip-sync model's mouth track of the bundled sample, repeated to n frames."""
    from dhlive_cli.analysis import MouthAnalyzer
    from dhlive_cli.inference import InferencePool
    from dhlive_cli.sources import FileAudioSource
    pool = InferencePool(None)
    an = MouthAnalyzer(pool, max_push_frames=25)
    src = FileAudioSource(SAMPLE)
    src.open()
    buf = np.zeros(25 * 640, np.float32)
    out = np.zeros((64, 4), np.float32)
    rows = []
    while True:
        k = src.read_into(buf)
        f = -(-k // 640)
        buf[k : f * 640] = 0
        if f:
            an.push(buf, f)
        if k < buf.shape[0]:
            an.finish()
        while (m := an.take(out)) > 0:
            rows.append(out[:m].copy())
        if k < buf.shape[0]:
            break
    src.close()
    track = np.concatenate(rows)
    return np.resize(track, (n, 4))


def compose(size: str, frames: int, tmp: Path | None = None) -> dict:
    import cv2
    import psutil

    from dhlive_cli.avatar.drawn import MouthShape
    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.presets import parse_size

    cv2.setNumThreads(1)
    try:
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[0]})
    except (AttributeError, OSError):
        cores = [0]
    w, h = parse_size(size)
    own = tmp is None
    tmpd = tempfile.TemporaryDirectory(prefix="dhlive-bench-") if own else None
    tmp = Path(tmpd.name) if own else tmp
    try:
        avatars = make_sources(tmp, [8.0])
        track = mouth_track(frames)
        me = psutil.Process()
        res = {"size": f"{w}x{h}", "frames": frames}

        def reader_cpu() -> float:
            """CPU seconds so far of this process's avatar reader threads (they fill the decoder's
            buffers from the child's pipe beside the compose thread; see media.LoopDecoder)."""
            ids = {t.native_id for t in threading.enumerate() if t.name == "dhlive-avatar-read"}
            return sum(t.user_time + t.system_time for t in me.threads() if t.id in ids)

        def measure(av, first: int) -> tuple[dict, float]:
            out = np.zeros((h, w, 3), np.uint8)
            kids = me.children()
            kid_cpu0 = sum(sum(c.cpu_times()[:2]) for c in kids)
            read_cpu0 = reader_cpu()
            wall, cpu = [], []
            for i in range(frames):
                m = track[i]
                shape = MouthShape(float(m[0]), float(m[1]), float(m[2]), float(m[3]))
                t0, c0 = time.perf_counter(), time.thread_time()
                av.render(out, first + i, shape, fresh=(i == 0))
                wall.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
            kid_cpu = sum(sum(c.cpu_times()[:2]) for c in kids) - kid_cpu0
            read_ms = 1e3 * (reader_cpu() - read_cpu0) / frames
            wall_ms, cpu_ms = np.array(wall[1:]) * 1e3, np.array(cpu[1:]) * 1e3
            row = {"wall_median_ms": round(float(np.median(wall_ms)), 2),
                   "wall_p99_ms": round(float(np.percentile(wall_ms, 99)), 2),
                   "cpu_median_ms": round(float(np.median(cpu_ms)), 2),
                   "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 2)}
            if read_ms > 0:
                row["reader_thread_cpu_ms_per_frame"] = round(read_ms, 2)
            return row, 1e3 * kid_cpu / frames

        def show(label, row, extra=""):
            reader = row.get("reader_thread_cpu_ms_per_frame")
            reader = f"; reader thread {reader} ms CPU/frame" if reader is not None else ""
            print(f"{label}: compose median {row['wall_median_ms']} ms, p99 {row['wall_p99_ms']} ms "
                  f"(thread CPU median {row['cpu_median_ms']} ms, p99 {row['cpu_p99_ms']} ms{reader}){extra}",
                  flush=True)

        av = load_avatar(avatars["photo"], w, h, 25)
        res["photo"], _ = measure(av, 0)
        show(f"photo avatar, {w}x{h}, one core", res["photo"], "; target median <= 8 ms")
        av = load_avatar(avatars["video8"], w, h, 25)
        warm = np.zeros((h, w, 3), np.uint8)
        av.render(warm, 0, MouthShape(), fresh=True)  # starts this thread's decoder child
        decoders = me.children()
        if len(cores) > 1:  # the decoder child on the other cores, the compose thread on its own
            for c in decoders:
                c.cpu_affinity(cores[1:])
            row, dec_ms = measure(av, 1)
            row["decoder_cpu_ms_per_frame"] = round(dec_ms, 2)
            res["video_decoder_on_other_core"] = row
            show(f"video avatar, {w}x{h}, compose thread on one core, ffmpeg decoder child on another", row,
                 f", decoder {dec_ms:.2f} ms CPU/frame; target median <= 8 ms")
        for c in decoders:
            c.cpu_affinity(cores[:1])
        row, dec_ms = measure(av, 1 + frames)
        row["decoder_cpu_ms_per_frame"] = round(dec_ms, 2)
        res["video_all_on_one_core"] = row
        show(f"video avatar, {w}x{h}, compose thread and decoder child sharing one core", row,
             f", decoder {dec_ms:.2f} ms CPU/frame")
        av.close()
        return res
    finally:
        if own:
            tmpd.cleanup()


def memory(short: float, long: float, preset: str, tmp: Path | None = None) -> dict:
    import subprocess

    own = tmp is None
    tmpd = tempfile.TemporaryDirectory(prefix="dhlive-bench-") if own else None
    tmp = Path(tmpd.name) if own else tmp
    try:
        avatars = make_sources(tmp, [4.0, 16.0])
        out = {}
        runs = (("short input, 4 s loop", short, "video4"), ("long input, 4 s loop", long, "video4"),
                ("long input, 16 s loop", long, "video16"))
        for label, secs, key in runs:
            src = speech_file(tmp / f"speech{secs:g}.wav", secs)
            t0 = time.monotonic()
            p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(src), "-o", str(tmp / "o.mp4"),
                                  "--avatar", str(avatars[key]), "--preset", preset, "--json", "--metrics", "off"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            with TreeSampler(p.pid) as s:
                so, se = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"render failed: {se.decode()[-500:]}")
            res = json.loads(so)
            wall = time.monotonic() - t0
            out[label] = {"input_s": secs, "loop": key, "frames": res["frames"], "wall_s": round(wall, 1),
                          "peak_rss_mb": round(s.peak_main / 2**20, 1),
                          "peak_children_rss_mb": round(s.peak_children / 2**20, 1),
                          "size": f"{res['width']}x{res['height']}", "realtime_factor": res["realtime_factor"]}
            print(f"{label:>22}: {secs / 60:4.1f} min at {res['width']}x{res['height']}: peak RSS "
                  f"{out[label]['peak_rss_mb']} MB (children: encoder + avatar decoder {out[label]['peak_children_rss_mb']} MB), "
                  f"{res['frames']} frames in {wall:.0f} s", flush=True)
            (tmp / "o.mp4").unlink(missing_ok=True)
        a, b, c = (out[r[0]]["peak_rss_mb"] for r in runs)
        out["long_over_short"] = round(b / a, 3)
        out["long_loop_over_short_loop"] = round(c / b, 3)
        print(f"peak RSS ratio, {long / 60:g} min / {short / 60:g} min input: {out['long_over_short']:.3f}; "
              f"16 s loop / 4 s loop: {out['long_loop_over_short_loop']:.3f} (both must stay <= 1.10)")
        return out
    finally:
        if own:
            tmpd.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("compose")
    c.add_argument("--size", default="720p")
    c.add_argument("--frames", type=int, default=600)
    m = sub.add_parser("memory")
    m.add_argument("--short", type=float, default=60.0)
    m.add_argument("--long", type=float, default=300.0)
    m.add_argument("--preset", default="default")
    sub.add_parser("all")
    ap.add_argument("--json", type=Path, help="also write the result here")
    a = ap.parse_args()
    if a.what == "compose":
        res = compose(a.size, a.frames)
    elif a.what == "memory":
        res = memory(a.short, a.long, a.preset)
    else:
        res = {"compose": compose("720p", 600), "memory": memory(60.0, 300.0, "default")}
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
