"""dhlive batch: job lists on a local process pool and on a real two-node Ray cluster.

The Ray cluster is real (ray.cluster_utils.Cluster starts a head and a second raylet on this
machine, each a separate node with its own CPUs), kept small: 1-2 CPUs per node, 100 MB of
object store, no dashboard. A lost node is simulated the hard way: SIGKILL to every process of
that node (raylet, its workers and their ffmpeg children).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dhlive_cli.cli import app
from dhlive_cli.compositor import DEFAULT_AVATAR
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.metrics import read_discovery
from dhlive_cli.timebase import SAMPLE_RATE
from tests.conftest import ESPEAK, FFPROBE, default_sigint, ffprobe_json, ignore_sigint, killed_on_exit, speak

pytestmark = [
    pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed (make setup installs it)"),
    pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed (make setup installs it)"),
]
try:
    import ray  # noqa: F401
    from ray.cluster_utils import Cluster

    HAVE_RAY = True
except ImportError:  # the optional `farm` extra
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray not installed (pip install 'dhlive[farm]'; make test does)")

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "Good morning, here is the news for today.",
    "Papa bought a big blue bag at the market.",
    "The weather will be sunny with a light breeze.",
    "Please remember to save your work often.",
    "Our next lesson is about fractions and decimals.",
    "Thank you for your order, it ships tomorrow.",
    "Welcome back to the course, let us begin.",
    "Five wise owls watched the moon rise slowly.",
]
OBJECT_STORE = 100 * 2**20


# ----------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    """8 speech clips of about 5 s (each a different length, none a whole number of frames),
    a second drawn avatar, and three bad inputs."""
    d = tmp_path_factory.mktemp("batch-media")
    clips = []
    for i, text in enumerate(SENTENCES):
        a = speak(text, d / f"s{i}.wav")
        n = 5 * SAMPLE_RATE + 97 * i + 13  # ~5 s, never a multiple of 640
        a = np.pad(a, (0, max(0, n - len(a))))[:n]
        p = d / f"speech{i}.wav"
        sf.write(p, a, SAMPLE_RATE, subtype="PCM_16")
        clips.append((p, n))
    av = d / "avatar-b"
    av.mkdir()
    spec = (DEFAULT_AVATAR / "avatar.toml").read_text()
    for a, b in (('name = "default"', 'name = "b"'), ('hair_style = "bob"', 'hair_style = "long"'),
                 ('clothing = "blazer"', 'clothing = "crew"'), ('"#4a3026"', '"#1d1a18"'),
                 ('"#34506f"', '"#7a2e3b"'), ("seed = 7", "seed = 11")):
        assert a in spec
        spec = spec.replace(a, b)
    (av / "avatar.toml").write_text(spec)
    text = d / "notes.wav"
    text.write_text("these are meeting notes, not audio\n" * 20)
    truncated = d / "truncated.wav"
    truncated.write_bytes(clips[0][0].read_bytes()[: 60_000])
    return {"dir": d, "clips": clips, "avatar_b": av, "missing": d / "gone.wav", "text": text,
            "truncated": truncated}


def write_jobs(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        cols = ["audio", "output", "avatar", "size", "preset"]
        lines = [",".join(cols)] + [",".join(str(r.get(c, "") or "") for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    return path


def good_jobs(media, n: int, prefix: str = "job") -> list[dict]:
    """n jobs over the clips, alternating the default avatar and avatar b, 360p, preset low."""
    rows = []
    for k in range(n):
        clip, samples = media["clips"][k % len(media["clips"])]
        rows.append({"audio": str(clip), "output": f"{prefix}{k:02d}.mp4", "size": "360p", "preset": "low",
                     "avatar": str(media["avatar_b"]) if k % 2 else None, "_samples": samples})
    return rows


def strip(rows):
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def results(out_dir: Path) -> list[dict]:
    p = out_dir / "results.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def decoded_audio(path: Path) -> np.ndarray:
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-vn", "-f", "f32le", "-ac", "1", "pipe:1"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def check_output(path: Path, samples: int) -> int:
    """A complete, valid render of `samples` samples: 25 fps, ceil(samples / 640) frames."""
    info = ffprobe_json(path)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert v["r_frame_rate"] == "25/1" and (int(v["width"]), int(v["height"])) == (640, 360)
    frames = int(v["nb_read_frames"])
    assert frames == math.ceil(samples / 640), (path, frames, samples)
    return frames


def leftovers(out_dir: Path, outputs: set[str]) -> list[str]:
    """Files under out_dir that are neither an output, the results file nor the lock file."""
    allowed = outputs | {"results.jsonl", ".dhlive-batch.lock"}
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*")
                  if p.is_file() and str(p.relative_to(out_dir)) not in allowed)


def cli_env() -> dict:
    env = dict(os.environ)
    # The test cluster listens on loopback only. Ray's driver rewrites a loopback head address to
    # this machine's outward address unless this (Ray's own) switch is off; with it off the
    # driver stays on 127.0.0.1 like the nodes, and no test traffic leaves loopback.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def batch_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "dhlive_cli", "batch", *map(str, args)]


def wait_for(cond, timeout: float, proc: subprocess.Popen | None = None, what: str = "condition"):
    """Poll cond() until true; fails when the deadline passes or proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"batch exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- job files


def test_bad_job_files_are_one_line_errors_and_change_nothing(media, tmp_path):
    clip = str(media["clips"][0][0])
    cases = [
        ("unknown.csv", "audio,output,voice\nx.wav,a.mp4,anna\n", "unknown column 'voice'"),
        ("nooutput.csv", "audio,avatar\nx.wav,\n", "no 'output' column"),
        ("dup.jsonl", f'{{"audio": "{clip}", "output": "a.mp4"}}\n{{"audio": "{clip}", "output": "A.mp4"}}\n',
         "already written by the job on line 1"),
        ("escape.jsonl", f'{{"audio": "{clip}", "output": "../a.mp4"}}\n', "inside --out-dir"),
        ("suffix.csv", f"audio,output\n{clip},a.avi\n", "must end in .mp4 or .mkv"),
        ("size.csv", f"audio,output,size\n{clip},a.mp4,999x9\n", "--size"),
        ("avatar.csv", f"audio,output,avatar\n{clip},a.mp4,{tmp_path}\n", "not an avatar folder"),
        ("preset.csv", f"audio,output,preset\n{clip},a.mp4,turbo\n", "no such preset"),
        ("empty.jsonl", "\n\n", "no jobs"),
        ("notjson.jsonl", "{audio: 1}\n", "not a JSON object"),
        ("jobs.txt", "audio,output\n", "must be .csv or .jsonl"),
        # a column or key given twice would silently take the last value
        ("twice.csv", f"audio,output,output\n{clip},a.mp4,b.mp4\n", "column 'output' appears twice"),
        ("twice.jsonl", f'{{"audio": "{clip}", "output": "a.mp4", "output": "b.mp4"}}\n', "key 'output' appears twice"),
        # a newline or NUL in a name: a file name no one can type, or a crash in the worker
        ("newline.jsonl", f'{{"audio": "{clip}", "output": "a\\nb.mp4"}}\n', "control character"),
        ("nul.jsonl", f'{{"audio": "{clip}", "output": "a\\u0000b.mp4"}}\n', "control character"),
        # one job's output is another job's folder: one of them could only fail at run time
        ("nested.jsonl", f'{{"audio": "{clip}", "output": "a.mp4"}}\n{{"audio": "{clip}", "output": "A.mp4/b.mp4"}}\n',
         "job on line 1 would need one name as both a file and a folder"),
        ("nested3.jsonl", f'{{"audio": "{clip}", "output": "v.mkv/b.mp4"}}\n{{"audio": "{clip}", "output": "v.mkv"}}\n',
         "job on line 1 would need one name as both a file and a folder"),
    ]
    for name, text, expected in cases:
        f = tmp_path / name
        f.write_text(text)
        out = tmp_path / f"out-{name}"
        res = runner.invoke(app, ["batch", str(f), "--out-dir", str(out), "--metrics", "off"])
        assert res.exit_code == 2, (name, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (name, res.output)
        assert not out.exists(), name  # validated before anything is created


def test_device_cuda_without_its_provider_is_refused_before_any_job(media, tmp_path):
    # every job failed with the CUDA line and a results file was written (a reviewer's finding);
    # render refuses the same option at once
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: --device cuda is valid here")
    f = write_jobs(tmp_path / "jobs.csv", good_jobs(media, 2))
    out = tmp_path / "out"
    res = runner.invoke(app, ["batch", str(f), "--out-dir", str(out), "--metrics", "off", "--device", "cuda"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == ["error: --device cuda: this onnxruntime has no CUDA provider (install dhlive[gpu])"], res.output
    assert not out.exists()


def test_outputs_that_cannot_land_in_the_out_dir_are_refused_before_any_job(media, tmp_path):
    # a reviewer's findings: each of these started, rendered, then failed at run time with raw
    # Python text naming the work folder ("[Errno 21] Is a directory: '.../.dhlive-partial/...'");
    # a second reviewer's on the first version of this check: a traceback on a symlink loop, a
    # finished output deleted with the work folder it was linked into, two names for one file
    clip = str(media["clips"][0][0])
    out = tmp_path / "out"
    (out / "dirout.mp4").mkdir(parents=True)
    (out / "f").write_text("a file")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (out / "link").symlink_to(outside)
    (out / "loop").symlink_to("loop")
    (out / "nothing").symlink_to("gone")
    (out / ".dhlive-partial").mkdir()
    (out / "work").symlink_to(".dhlive-partial")
    (out / "real").mkdir()
    (out / "alias").symlink_to("real")
    (out / "up").symlink_to("..")  # up/out/x.mp4 lands inside out: allowed
    before = sorted(p.name for p in out.iterdir())
    cases = [("dirout.mp4", "dirout.mp4 is a folder"),
             ("f/x.mp4", "needs " + str(out / "f") + " as a folder, but it is a file"),
             ("link/x.mp4", "leads out of --out-dir through a symlink (to " + str(outside.resolve())),
             ("Results.jsonl/x.mp4", "the results file, as a folder"),
             ("loop/x.mp4", "the symlinks at " + str(out / "loop") + " loop"),
             ("nothing/x.mp4", str(out / "nothing") + " is a symlink to nothing"),
             ("work/x.mp4", "leads into dhlive's work files through a symlink"),
             ("alias/fine.mp4", "is the same file as the output of the job on line 2")]
    for output, says in cases:
        first = "real/fine.mp4" if output.startswith("alias/") else "fine.mp4"
        f = write_jobs(tmp_path / "jobs.csv", [{"audio": clip, "output": first}, {"audio": clip, "output": output}])
        res = runner.invoke(app, ["batch", str(f), "--out-dir", str(out), "--metrics", "off"])
        assert res.exit_code == 2, (output, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"error: {f}:3: output {output!r}") and says in lines[0], \
            (output, res.output)
        assert sorted(p.name for p in out.iterdir()) == before, output  # nothing created
    assert not list(outside.iterdir())
    # the results file's name taken by a folder: said so, not "results of an earlier run are here"
    other = tmp_path / "other"
    (other / "results.jsonl").mkdir(parents=True)
    f = write_jobs(tmp_path / "jobs.csv", [{"audio": clip, "output": "fine.mp4"}])
    for extra in ([], ["--resume"], ["--overwrite"]):
        res = runner.invoke(app, ["batch", str(f), "--out-dir", str(other), "--metrics", "off", *extra])
        assert res.exit_code == 2 and res.output.strip() == \
            f"error: {other / 'results.jsonl'}: is a folder; the results file needs that name", (extra, res.output)
        assert sorted(p.name for p in other.iterdir()) == ["results.jsonl"]
    # a link that goes out and comes back in is inside: the check does not refuse it
    from dhlive_cli.farm.jobs import check_places, read_jobs

    f = write_jobs(tmp_path / "jobs.csv", [{"audio": clip, "output": "up/out/x.mp4"}])
    check_places(read_jobs(f), out, f)


def test_results_file_of_an_earlier_run_needs_resume_or_overwrite(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("")
    jobs = write_jobs(tmp_path / "j.csv", strip(good_jobs(media, 1)))
    res = runner.invoke(app, ["batch", str(jobs), "--out-dir", str(out), "--metrics", "off"])
    assert res.exit_code == 2 and "--resume" in res.output and "--overwrite" in res.output
    assert sorted(p.name for p in out.iterdir()) == [".dhlive-batch.lock", "results.jsonl"]


def test_a_job_whose_audio_is_a_pipe_fails_with_batch_advice(tmp_path):
    """render's advice for a FIFO is "give - and redirect it", which batch cannot take: the job
    fails alone, says it needs a file, and nothing reads the pipe (a writer would block)."""
    from dhlive_cli.farm.worker import JobRenderer

    fifo = tmp_path / "speech.wav"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    out.mkdir()
    job = {"index": 1, "line": 2, "audio": str(fifo), "output": "x.mp4", "avatar": None, "preset": "low",
           "width": 640, "height": 360}
    r = JobRenderer(out).render(job)
    assert r["status"] == "failed" and "is a pipe" in r["error"] and "needs a file" in r["error"], r
    assert "give -" not in r["error"] and not (out / "x.mp4").exists()
    # nobody opened the FIFO for reading: a writer that does not block finds no reader
    with pytest.raises(OSError):
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)


# ----------------------------------------------------------------------------- local pool


def test_local_pool_bad_inputs_fail_alone_and_outputs_match_single_renders(media, tmp_path):
    rows = good_jobs(media, 3)
    bad = [{"audio": str(media["missing"]), "output": "bad-missing.mp4"},
           {"audio": str(media["text"]), "output": "bad-text.mp4"},
           {"audio": str(media["truncated"]), "output": "bad-truncated.mp4"}]
    jobs = write_jobs(tmp_path / "jobs.jsonl", strip(rows[:2]) + bad + strip(rows[2:]))
    out = tmp_path / "out"
    proc = subprocess.run(batch_cmd(jobs, "--out-dir", out, "--workers", "2", "--json", "--metrics", "off"),
                          capture_output=True, text=True, env=cli_env(), timeout=240)
    assert proc.returncode == 1, proc.stderr  # some jobs failed
    summary = json.loads(proc.stdout)
    assert (summary["ok"], summary["failed"], summary["pool"]) == (3, 3, "local")
    recs = {r["output"]: r for r in results(out)}
    assert len(results(out)) == 6 and set(recs) == {r["output"] for r in rows} | {b["output"] for b in bad}
    for b, why in zip(bad, ("no such file", "not an audio file", "truncated WAV")):
        r = recs[b["output"]]
        assert r["status"] == "failed" and why in r["error"] and "\n" not in r["error"], r
        assert not (out / b["output"]).exists()
    for row in rows:
        r = recs[row["output"]]
        assert r["status"] == "ok" and r["error"] is None and r["samples"] == row["_samples"], r
        assert check_output(out / row["output"], row["_samples"]) == r["frames"]
    assert leftovers(out, set(recs)) == []
    # the same jobs as single `dhlive render` runs: same frame count, same audio samples
    for row in rows:
        single = tmp_path / f"single-{row['output']}"
        args = ["render", row["audio"], "-o", str(single), "--preset", "low", "--size", "360p", "--json",
                "--metrics", "off"] + (["--avatar", row["avatar"]] if row["avatar"] else [])
        res = runner.invoke(app, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert check_output(single, row["_samples"]) == recs[row["output"]]["frames"]
        a, b = decoded_audio(single), decoded_audio(out / row["output"])
        assert a.shape == b.shape and np.array_equal(a, b)


def test_interrupted_local_run_resumes_with_only_the_missing_jobs(media, tmp_path):
    # enough jobs that the run cannot end between the second result and the SIGINT (a quiet
    # machine renders these short clips at ~1.5 jobs/s)
    n = 24
    rows = good_jobs(media, n)
    jobs = write_jobs(tmp_path / "jobs.csv", strip(rows))
    out = tmp_path / "out"
    # SIGINT ignored on entry, as in a script's background job: the SIGINT below must still stop it
    proc = subprocess.Popen(batch_cmd(jobs, "--out-dir", out, "--workers", "1", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                            preexec_fn=ignore_sigint)
    with killed_on_exit(proc):
        wait_for(lambda: len(results(out)) >= 2, 240, proc, "two finished jobs")
        # the driver's /metrics carries the job counts the progress bar shows
        rec = wait_for(lambda: read_discovery(proc.pid), 30, proc, "the metrics discovery file")

        def scrape():
            with urllib.request.urlopen(rec["metrics_url"], timeout=30) as r:
                fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
            by_state = {s.labels["state"]: s.value for s in fams["dhlive_batch_jobs"].samples}
            return (fams, by_state) if by_state["ok"] >= 2 else None

        # the driver writes a job's result line, then counts it: a scrape between the two is one
        # behind the file, so wait for the count rather than read it once
        fams, jobs_by_state = wait_for(scrape, 60, proc, "/metrics counting two finished jobs")
        assert jobs_by_state["total"] == n and jobs_by_state["ok"] >= 2 and jobs_by_state["failed"] == 0
        assert fams["dhlive_batch_jobs_per_minute"].samples[0].value > 0
        assert fams["dhlive_batch_workers"].samples[0].value == 1
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    first = {r["output"]: r for r in results(out)}
    assert 2 <= len(first) < n and all(r["status"] == "ok" for r in first.values()), (first, err)
    # nothing but finished outputs: the job in hand was stopped and its work file removed (or it
    # finished in the meantime and has its result line)
    assert leftovers(out, set(first)) == [], (sorted(first), err)
    kept = {name: (out / name).stat() for name in first}

    res = subprocess.run(batch_cmd(jobs, "--out-dir", out, "--workers", "1", "--resume", "--json",
                                   "--metrics", "off"), capture_output=True, text=True, env=cli_env(), timeout=240)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["skipped"] == len(first) and summary["ok"] == n - len(first) and summary["failed"] == 0
    recs = results(out)
    assert sorted(r["output"] for r in recs) == sorted(r["output"] for r in rows)  # one line per job
    for name, st in kept.items():  # not rendered again
        now = (out / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    for row in rows:
        check_output(out / row["output"], row["_samples"])


def test_a_job_that_finished_just_before_the_stop_keeps_its_result_line(media, tmp_path):
    """A stop (Ctrl+C) that comes after a job finished but before the driver took its result
    still writes that job's result line: the folder never holds an output without one."""
    from dhlive_cli.farm.driver import BatchRun
    from dhlive_cli.farm.jobs import read_jobs
    from dhlive_cli.farm.local import LocalPool
    from dhlive_cli.farm.results import ResultsLog

    rows = good_jobs(media, 3)
    jobs = read_jobs(write_jobs(tmp_path / "jobs.jsonl", strip(rows)))
    out = tmp_path / "out"
    log = ResultsLog(out)
    skip = log.open(resume=False, overwrite=False)
    pool = LocalPool(out, workers=1)
    run = BatchRun(jobs, pool, log, skip)

    def stop_once_a_result_waits(_snapshot):
        # the driver's loop is here, between two wait() calls: hold it until a job's result has
        # reached the driver (it waits on the worker's pipe), then stop the run as Ctrl+C would
        deadline = time.monotonic() + 240
        while not any(w.job is not None and w.conn.poll() for w in list(pool._pool)):
            assert time.monotonic() < deadline, "no job finished"
            time.sleep(0.02)
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            run.run(on_tick=stop_once_a_result_waits)
    finally:
        log.close()
    recs = results(out)
    assert len(recs) == 1 and recs[0]["status"] == "ok", recs
    assert leftovers(out, {recs[0]["output"]}) == []
    check_output(out / recs[0]["output"], next(r["_samples"] for r in rows if r["output"] == recs[0]["output"]))


def busy_worker(parent: int) -> psutil.Process | None:
    """A local worker process of `parent` with an encoder running (it is mid-job), or None."""
    for c in psutil.Process(parent).children():
        try:
            if "spawn_main" in " ".join(c.cmdline()) and any("ffmpeg" in g.name() for g in c.children(recursive=True)):
                return c
        except psutil.NoSuchProcess:
            continue
    return None


def start_local_run(media, tmp_path: Path, n: int):
    """`batch` of n good jobs on two local workers, started: (rows, out dir, process)."""
    rows = good_jobs(media, n)
    jobs = write_jobs(tmp_path / "jobs.jsonl", strip(rows))
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_cmd(jobs, "--out-dir", out, "--workers", "2", "--json", "--metrics", "off"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    return rows, out, proc


def test_local_worker_killed_mid_job_every_job_completes_once(media, tmp_path):
    """A worker killed mid-job (SIGKILL, as the OOM killer does) loses that job only: it is
    rendered again (attempt 2) on a fresh worker while the other worker keeps its own job and
    process (ProcessPoolExecutor killed both and restarted both jobs)."""
    rows, out, proc = start_local_run(media, tmp_path, 5)
    with killed_on_exit(proc):
        victim = wait_for(lambda: busy_worker(proc.pid), 240, proc, "a worker in the middle of a job")
        others = [c.pid for c in psutil.Process(proc.pid).children() if c.pid != victim.pid
                  and "spawn_main" in " ".join(c.cmdline())]
        victim.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["ok"] == 5
    recs = results(out)
    assert sorted(r["output"] for r in recs) == sorted(r["output"] for r in rows)  # each exactly once
    assert all(r["status"] == "ok" for r in recs)
    assert sorted(r["attempt"] for r in recs) == [1, 1, 1, 1, 2], recs  # only the victim's job again
    # the other worker lived on (it rendered jobs to the end) and one new worker was started
    assert any(r["pid"] in others for r in recs), (others, recs)
    assert len({r["pid"] for r in recs} - {victim.pid}) == 2, recs
    for row in rows:
        check_output(out / row["output"], row["_samples"])
    assert leftovers(out, {r["output"] for r in recs}) == []


def until_gone(p: psutil.Process, timeout: float = 60) -> None:
    """Wait until p has exited, without reaping it (the pool's own process handle does that)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.monotonic() < deadline, f"pid {p.pid} did not exit"
        time.sleep(0.02)


def test_local_pool_submit_after_a_worker_died_unseen_loses_no_job(media, tmp_path):
    """The CI race: a worker is killed and the driver hands out the next job before wait() has
    seen the death. submit() must not raise: every job still completes exactly once (the lost
    one at attempt 2), and a worker that died while idle is replaced, its job not lost."""
    from dhlive_cli.farm.jobs import read_jobs
    from dhlive_cli.farm.local import LocalPool

    rows = good_jobs(media, 3, prefix="race")
    jobs = [j.to_dict() for j in read_jobs(write_jobs(tmp_path / "jobs.jsonl", strip(rows)))]
    out = tmp_path / "out"
    out.mkdir()
    pool = LocalPool(out, workers=1)

    def drain() -> list[dict]:
        got = []
        deadline = time.monotonic() + 300
        while pool.running():
            assert time.monotonic() < deadline, "jobs did not finish"
            got += [rec for rec, _ in pool.wait(0.5)]
        return got

    try:
        pool.submit(jobs[0])
        deadline = time.monotonic() + 240
        while (victim := busy_worker(os.getpid())) is None:
            assert time.monotonic() < deadline, "no worker mid-job"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        until_gone(victim)
        pool.submit(jobs[1])  # before wait() looked
        got = drain()
        # now the worker dies while idle, between jobs: the next submit finds its pipe broken
        (idle,) = [c for c in psutil.Process().children() if "spawn_main" in " ".join(c.cmdline())]
        idle.send_signal(signal.SIGKILL)
        until_gone(idle)
        # its pipe to the pool is closed a few ms after it shows as a zombie; a job handed over
        # within those ms is lost with it and counts one attempt (it is still rendered once)
        deadline = time.monotonic() + 60
        while not pool._pool[0].exited():
            assert time.monotonic() < deadline, "the pool never saw the worker end"
            time.sleep(0.01)
        pool.submit(jobs[2])
        got += drain()
    finally:
        pool.close()
    assert sorted(r["output"] for r in got) == sorted(r["output"] for r in rows), got  # each once
    assert all(r["status"] == "ok" for r in got), got
    assert {r["output"]: r["attempt"] for r in got} == {jobs[0]["output"]: 2, jobs[1]["output"]: 1,
                                                         jobs[2]["output"]: 1}, got
    for row in rows:
        check_output(out / row["output"], row["_samples"])


# ----------------------------------------------------------------------------- Ray


def start_cluster(head_cpus: int, node_cpus: int):
    """A real Ray cluster of two nodes on this machine (separate raylets), on loopback."""
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": head_cpus, "object_store_memory": OBJECT_STORE, "include_dashboard": False,
        "node_ip_address": "127.0.0.1", "resources": {"head_node": 1},
        # a killed node is declared dead after ~3 s instead of the default ~30 s
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
    })
    node = cluster.add_node(num_cpus=node_cpus, object_store_memory=OBJECT_STORE, node_ip_address="127.0.0.1",
                            resources={"second_node": 1})
    return cluster, node


def node_processes(node) -> list[psutil.Process]:
    """Every process of a Ray node: its own daemons and all their descendants (workers, ffmpeg)."""
    procs = []
    for infos in node.all_processes.values():
        for info in infos:
            try:
                p = psutil.Process(info.process.pid)
            except psutil.NoSuchProcess:
                continue
            procs.append(p)
            procs.extend(p.children(recursive=True))
    return procs


@needs_ray
def test_ray_two_nodes_render_every_job_like_single_renders(media, tmp_path):
    cluster, _node = start_cluster(1, 1)
    try:
        rows = good_jobs(media, 8)
        jobs = write_jobs(tmp_path / "jobs.csv", strip(rows))
        out = tmp_path / "out"
        res = subprocess.run(batch_cmd(jobs, "--out-dir", out, "--ray", cluster.address, "--json"),
                             capture_output=True, text=True, env=cli_env(), timeout=300)
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert (summary["ok"], summary["failed"], summary["pool"], summary["workers"]) == (8, 0, "ray", 2)
        recs = {r["output"]: r for r in results(out)}
        assert len(recs) == 8 == len(results(out))
        assert len({r["node"] for r in recs.values()}) == 2  # both nodes rendered
        for row in rows:
            r = recs[row["output"]]
            assert r["status"] == "ok" and r["samples"] == row["_samples"]
            assert check_output(out / row["output"], row["_samples"]) == r["frames"]
        assert leftovers(out, set(recs)) == []
        for row in rows[:2]:  # one per avatar, against single renders
            single = tmp_path / f"single-{row['output']}"
            args = ["render", row["audio"], "-o", str(single), "--preset", "low", "--size", "360p",
                    "--metrics", "off", "--json"] + (["--avatar", row["avatar"]] if row["avatar"] else [])
            assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
            assert check_output(single, row["_samples"]) == recs[row["output"]]["frames"]
            assert np.array_equal(decoded_audio(single), decoded_audio(out / row["output"]))
    finally:
        cluster.shutdown()


@needs_ray
def test_ray_node_killed_mid_run_every_job_completes_once(media, tmp_path):
    # the head has room for a second worker, so the lost node's worker can come back there
    cluster, node = start_cluster(2, 1)
    proc = None
    try:
        rows = good_jobs(media, 10)
        jobs = write_jobs(tmp_path / "jobs.jsonl", strip(rows))
        out = tmp_path / "out"
        proc = subprocess.Popen(batch_cmd(jobs, "--out-dir", out, "--ray", cluster.address, "--workers", "2",
                                          "--json"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
        # wait until the second node has finished a job (it then holds the next one) and kill it
        def second_node_busy():
            recs = results(out)
            nodes = {r["node"] for r in recs}
            return len(nodes) == 2 and len(recs) <= 6 and nodes
        nodes = wait_for(second_node_busy, 240, proc, "both nodes to finish a job")
        victims = node_processes(node)
        assert victims
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        killed_at = len(results(out))
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        summary = json.loads(stdout)
        assert summary["ok"] == 10 and summary["failed"] == 0
        recs = results(out)
        assert sorted(r["output"] for r in recs) == sorted(r["output"] for r in rows)  # each exactly once
        assert any(r["attempt"] >= 2 for r in recs), recs  # the job lost with the node was done again
        second = next(n for n in nodes if n.endswith(node.node_id[:12]))
        retried = [r for r in recs if r["attempt"] >= 2]
        assert retried and all(r["node"] != second for r in retried), recs  # done again elsewhere
        assert all(r["node"] != second for r in recs[killed_at + 1:])  # the lost node renders no more
        for row in rows:
            check_output(out / row["output"], row["_samples"])
        assert leftovers(out, {r["output"] for r in recs}) == []
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.shutdown()


@needs_ray
def test_ray_local_starts_a_private_cluster_for_the_run(media, tmp_path):
    rows = good_jobs(media, 2)
    jobs = write_jobs(tmp_path / "jobs.csv", strip(rows) + [{"audio": str(media["text"]), "output": "bad.mp4"}])
    out = tmp_path / "out"
    res = subprocess.run(batch_cmd(jobs, "--out-dir", out, "--ray", "local", "--workers", "1", "--json",
                                   "--metrics", "off"), capture_output=True, text=True, env=cli_env(), timeout=300)
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout)  # stdout holds the summary only, whatever Ray prints
    assert (summary["ok"], summary["failed"], summary["pool"], summary["workers"]) == (2, 1, "ray", 1)
    assert summary["failed_jobs"] == [{"output": "bad.mp4", "error": f"{media['text']}: not an audio file ffmpeg can read"}]
    for row in rows:
        check_output(out / row["output"], row["_samples"])


@needs_ray
def test_sigterm_stops_a_ray_run_cleanly(media, tmp_path):
    """ray.init installs Ray's own SIGTERM handler (a stack dump and exit 1); the run must still
    stop like Ctrl+C: exit 130, finished jobs kept, nothing half-written."""
    rows = good_jobs(media, 5)
    jobs = write_jobs(tmp_path / "jobs.jsonl", strip(rows))
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_cmd(jobs, "--out-dir", out, "--ray", "local", "--workers", "1", "--quiet",
                                      "--metrics", "off"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    with killed_on_exit(proc):
        wait_for(lambda: len(results(out)) >= 1, 300, proc, "a finished job")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGTERM received" not in err and "Traceback" not in err and "--resume" in err, err
    done = {r["output"]: r for r in results(out)}
    assert 1 <= len(done) < 5 and all(r["status"] == "ok" for r in done.values())
    assert leftovers(out, set(done)) == []
    for name, r in done.items():
        assert (out / name).stat().st_size == r["bytes"]


def test_symlinked_folder_in_out_dir_does_not_lead_outside(media, tmp_path):
    clip = str(media["clips"][0][0])
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside, target_is_directory=True)
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"audio": clip, "output": "link/a.mp4"},
                                                {"audio": clip, "output": "link/new/b.mp4"},
                                                {"audio": clip, "output": "in.mp4", "size": "360p", "preset": "low"}])
    res = runner.invoke(app, ["batch", str(jobs), "--out-dir", str(out), "--workers", "1", "--json",
                              "--metrics", "off"])
    # refused with the list's other mistakes, before anything is made (it used to fail job by
    # job at run time, where the worker still checks it, for a link made after the start)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "output 'link/a.mp4' leads out of --out-dir through a symlink" in lines[0], res.output
    assert sorted(p.name for p in out.iterdir()) == ["link"]
    assert list(outside.iterdir()) == []  # not a file, not a folder


def test_a_run_that_cannot_start_leaves_nothing_behind(media, tmp_path):
    """A refused start (an option checked late, a cluster that does not answer) creates no
    results file, so the same command works once the mistake is fixed; no --overwrite needed."""
    jobs = write_jobs(tmp_path / "jobs.csv", strip(good_jobs(media, 1)))
    out = tmp_path / "new" / "out"
    res = runner.invoke(app, ["batch", str(jobs), "--out-dir", str(out), "--metrics", "0.0.0.0:9"])
    assert res.exit_code == 2 and "loopback" in res.output, res.output
    assert not out.exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("notes\n")
    res = runner.invoke(app, ["batch", str(jobs), "--out-dir", str(a_file), "--metrics", "off"])
    assert res.exit_code == 2 and res.output.strip() == f"error: {a_file}: not a folder", res.output
    assert a_file.read_text() == "notes\n"
    existing = tmp_path / "existing"
    existing.mkdir()
    if HAVE_RAY:
        import socket

        with socket.socket() as s:  # a port where nothing listens
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for where in (out, existing):
            res = runner.invoke(app, ["batch", str(jobs), "--out-dir", str(where), "--ray", f"127.0.0.1:{port}",
                                      "--metrics", "off"])
            lines = [ln for ln in res.output.splitlines() if ln.strip()]
            assert res.exit_code == 1 and len(lines) == 1 and lines[0].count("cannot connect") == 1, res.output
        assert not out.exists() and not (existing / "results.jsonl").exists()
    res = runner.invoke(app, ["batch", str(jobs), "--out-dir", str(existing), "--workers", "1", "--metrics", "off"])
    assert res.exit_code == 0, res.output
    assert [r["status"] for r in results(existing)] == ["ok"]


def not_ended(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of procs still running (neither gone nor a zombie)."""
    left = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def wait_all_end(procs: list[psutil.Process], what: str, timeout: float = 120) -> None:
    """Wait until every one of procs has ended; those left at the deadline are killed (the test
    fails, leaving nothing behind)."""
    try:
        wait_for(lambda: not not_ended(procs), timeout, what=what)
    finally:
        for p in not_ended(procs):
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


def test_workers_of_a_driver_killed_while_they_start_stop_too(media, tmp_path):
    """The driver SIGKILLed as soon as its workers exist, before they have loaded anything:
    each read its parent's pid after its start-up imports, found init's, and rendered its whole
    job as an orphan (the output landed with no result line). They are told the driver's pid now."""
    rows, out, proc = start_local_run(media, tmp_path, 4)
    with killed_on_exit(proc):
        workers = wait_for(lambda: [c for c in psutil.Process(proc.pid).children()
                                    if "spawn_main" in " ".join(c.cmdline())], 240, proc, "the workers to start")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    wait_all_end(workers, "the orphaned workers to end")
    # none of them rendered its job to the end: no output without its result line
    assert not any((out / r["output"]).exists() for r in rows), sorted(p.name for p in out.iterdir())


def test_repeated_ctrl_c_with_a_stopped_worker_ends_the_run(media, tmp_path):
    """Ctrl+C three times while a worker does not respond (SIGSTOP): the second press cut the
    driver's wait for its workers short before the kill, the third its close, and the
    interpreter's exit then waited for the stopped worker without end. The run ends now (exit
    130), the stopped worker killed, nothing left in the output folder but what --resume needs."""
    rows = good_jobs(media, 4)
    jobs = write_jobs(tmp_path / "jobs.jsonl", strip(rows))
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_cmd(jobs, "--out-dir", out, "--workers", "2", "--metrics", "off"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                            preexec_fn=default_sigint)
    victim = None
    try:
        with killed_on_exit(proc):
            victim = wait_for(lambda: busy_worker(proc.pid), 240, proc, "a worker in the middle of a job")
            tree = psutil.Process(proc.pid).children(recursive=True)
            victim.send_signal(signal.SIGSTOP)
            for _ in range(3):
                proc.send_signal(signal.SIGINT)
                time.sleep(0.3)  # presses a person makes, not an event to wait for
            _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "Traceback" not in err, err
        wait_all_end(tree, "the workers and their encoders to end", 60)
    finally:
        if victim is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
    assert not (out / ".dhlive-partial").exists() or list((out / ".dhlive-partial").iterdir()) == []


def test_workers_stop_when_the_driver_is_killed_outright(media, tmp_path):
    """SIGKILL (the OOM killer) gives the driver no clean-up: its workers were re-parented and
    went on rendering, then waited for ever (about 95 MB each) beside the next run's. Each now
    sees its driver gone, stops its job the SIGTERM way and exits, its encoder and work file
    with it."""
    _, out, proc = start_local_run(media, tmp_path, 6)
    with killed_on_exit(proc):
        wait_for(lambda: busy_worker(proc.pid), 240, proc, "a worker in the middle of a job")
        tree = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    wait_all_end(tree, "the workers, their encoders and the resource tracker to end")
    work = out / ".dhlive-partial"
    assert not work.exists() or sorted(p.name for p in work.iterdir()) == []  # each job's work file removed
