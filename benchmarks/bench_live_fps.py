"""Live frame rate over a long run: `dhlive live --fps 30 --duration 60 -o rec.mp4`, read back.

    python benchmarks/bench_live_fps.py [--fps 30] [--seconds 60] [--size 640x360]

Runs the real CLI (looping the bundled speech sample into a recording) and reports:
- the session clock's rate: the least-squares slope of every frame's hand-out time (monotonic)
  against its index (the `stopped:` line's fps), late and dropped frames;
- the recording (ffprobe): frame count against duration x fps, the video's frame rate, its
  duration and the audio's, and the largest gap between a frame's timestamp and k / fps;
- the seconds dhlive's threads (ffmpeg included) waited for a CPU meanwhile (tests/loadcheck.py),
  so a figure taken on a loaded machine says how loaded it was.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SAMPLE  # noqa: E402
from tests.loadcheck import Starvation  # noqa: E402


def run(fps: int, seconds: float, size: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        rec = Path(d) / "rec.mp4"
        cmd = [sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low", "--size", size,
               "--metrics", "off", "--input", str(SAMPLE), "--loop", "--fps", str(fps), "--duration", str(seconds),
               "-o", str(rec)]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with Starvation(pid=p.pid, children=True, poll_s=0.1) as starved:
            _, err = p.communicate(timeout=seconds * 3 + 120)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit(f"dhlive live failed ({p.returncode}): {err.strip()[-400:]}")
        m = re.search(r"stopped: (\d+) frames \(([\d.]+) fps\), late (\d+), dropped (\d+)", err)
        if not m:
            raise SystemExit(f"no stopped line in: {err.strip()[-400:]}")
        info = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(rec)],
            capture_output=True, check=True).stdout)
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        a = next(s for s in info["streams"] if s["codec_type"] == "audio")
        pts = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
                              "-of", "csv=p=0", str(rec)], capture_output=True, text=True, check=True).stdout.split()
        pts = sorted(float(x) for x in pts)
        worst = max(abs(t - k / fps) for k, t in enumerate(pts)) if pts else None
        frames = int(v["nb_read_frames"])
        return {
            "fps": fps, "seconds": seconds, "size": size,
            "frames_expected": round(seconds * fps), "frames_emitted": int(m.group(1)),
            "clock_fps": float(m.group(2)), "late_frames": int(m.group(3)), "dropped_frames": int(m.group(4)),
            "recording_frames": frames, "recording_r_frame_rate": v["r_frame_rate"],
            "recording_video_s": float(v["duration"]), "recording_audio_s": float(a["duration"]),
            "recording_fps": frames / float(v["duration"]),
            "max_pts_error_ms": round(worst * 1000, 3) if worst is not None else None,
            "wall_s": round(wall, 2), "cpu_wait_s": round(starved.seconds, 2),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--json", type=Path, help="also write the result here")
    a = ap.parse_args()
    r = run(a.fps, a.seconds, a.size)
    print(f"live {r['fps']} fps for {r['seconds']:g} s at {r['size']}: clock {r['clock_fps']:.3f} fps, "
          f"{r['frames_emitted']}/{r['frames_expected']} frames emitted, late {r['late_frames']}, "
          f"dropped {r['dropped_frames']}; recording {r['recording_frames']} frames at {r['recording_r_frame_rate']}, "
          f"video {r['recording_video_s']:.3f} s, audio {r['recording_audio_s']:.3f} s, "
          f"timestamps within {r['max_pts_error_ms']} ms of k/fps; wall {r['wall_s']} s, "
          f"CPU wait {r['cpu_wait_s']} s")
    if a.json:
        a.json.write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
