"""`dhlive batch`: a list of render jobs on a pool of workers, here or on a Ray cluster."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import err_console, escape_line, refuse_closed_stdout, start_metrics, user_errors

EXAMPLES = """
Examples:

  dhlive batch jobs.csv --out-dir renders/

  dhlive batch jobs.jsonl --out-dir renders/ --ray local --workers 2

  dhlive batch jobs.csv --out-dir /shared/renders --ray 10.0.0.5:6379 \\
      --resume

jobs.csv has a header row with `audio` and `output` (a file name under --out-dir) and optionally `avatar`, `size`, `preset`; a .jsonl file has one object with those keys per line.

Each finished job adds a line to OUT_DIR/results.jsonl. Exit code 0 when every job succeeded, 1 when some failed, 2 for a bad job file or option.
"""


def batch(
    jobs_file: Annotated[Path, typer.Argument(metavar="JOBS", help="Job list: .csv with a header row, or .jsonl.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the outputs and results.jsonl (created if missing).", show_default=False)],
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS|local", help="Run on Ray: `local` starts one on this machine, else a cluster address (HOST:PORT of its head, auto; ray://HOST:PORT needs `pip install ray[client]`). Default: worker processes on this machine.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes/actors (default: CPU count here; with a cluster address, its CPUs / --cpus-per-worker).", min=1)] = None,
    cpus_per_worker: Annotated[float, typer.Option(help="CPUs each Ray worker reserves (a job's resource request).")] = 1.0,
    resume: Annotated[bool, typer.Option(help="Skip jobs whose output is complete in results.jsonl; render the rest.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Start again over an earlier run's results.jsonl.")] = False,
    preset: Annotated[str, typer.Option(help="Preset for jobs that name none (low, default, high or a .toml path).")] = "default",
    size: Annotated[Optional[str], typer.Option(help="Size for jobs that name none: 360p, 720p, 1080p or WxH.")] = None,
    device: Annotated[str, typer.Option(help="Inference device: auto, cpu or cuda (cuda: each Ray worker reserves a GPU).")] = "auto",
    model: Annotated[Optional[Path], typer.Option(help="Mouth model .onnx (default: the bundled model).")] = None,
    metrics: Annotated[str, typer.Option(help="Prometheus metrics of the run on HOST:PORT (loopback; port 0 = any free port), or off.")] = "127.0.0.1:0",
    json_out: Annotated[bool, typer.Option("--json", help="Print a summary as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Render many speech files (a CSV or JSONL job list) on a pool of workers or a Ray cluster."""
    from dhlive_cli.errors import Cancelled

    if json_out:
        refuse_closed_stdout("--json")
    with user_errors():
        try:
            # stdout is for the --json summary only: Ray prints cluster notices (a node lost)
            # to stdout from its own threads, so they go to stderr for the run
            with contextlib.redirect_stdout(sys.stderr):
                summary = _batch(jobs_file, out_dir, ray, workers, cpus_per_worker, resume, overwrite, preset, size,
                                 device, model, metrics, json_out, quiet)
        except Cancelled as e:
            err_console.print(f"interrupted: {escape_line(str(e))}")
            raise typer.Exit(130) from None
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        for rec in summary["failed_jobs"][:10]:
            err_console.print(f"[red]failed[/] {escape_line(rec['output'])}: {escape_line(rec['error'] or '?')}")
        more = len(summary["failed_jobs"]) - 10
        if more > 0:
            err_console.print(f"... and {more} more failed (see {escape_line(str(summary['results']))})")
        err_console.print(
            f"[green]{summary['ok']} ok[/], [{'red' if summary['failed'] else 'green'}]{summary['failed']} failed[/], "
            f"{summary['skipped']} skipped of {summary['jobs']} jobs in {summary['elapsed_s']:.1f} s "
            f"({summary['jobs_per_min']:.1f} jobs/min on {summary['workers']} {summary['pool']} worker{'' if summary['workers'] == 1 else 's'}); "
            f"results: {escape_line(str(summary['results']))}")
    if summary["failed"]:
        raise typer.Exit(1)


batch.__doc__ = (batch.__doc__ or "") + "\n\n" + EXAMPLES


def _batch(jobs_file, out_dir, ray, workers, cpus_per_worker, resume, overwrite, preset, size, device, model,
           metrics, json_out, quiet) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from dhlive_cli.errors import Cancelled, InputError
    from dhlive_cli.farm.driver import BatchRun
    from dhlive_cli.farm.jobs import check_places, read_jobs
    from dhlive_cli.farm.results import ResultsLog

    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, not {device!r}")
    if ray is None or ray == "local":
        # workers on this machine have this onnxruntime: --device cuda without its CUDA
        # provider is refused here, as render refuses it, instead of failing every job
        # (a cluster's workers may have what this machine lacks)
        from dhlive_cli.inference import check_device

        check_device(device)
    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other")
    if model is not None and not model.is_file():
        raise InputError(f"model not found: {model}")
    jobs = read_jobs(jobs_file, default_preset=preset, default_size=size)
    out_dir = out_dir.absolute()
    check_places(jobs, out_dir, jobs_file)
    model = model.absolute() if model is not None else None

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    log = ResultsLog(out_dir)
    pool = None
    metrics_server = None
    try:
        skip = log.open(resume=resume, overwrite=overwrite)
        todo = sum(1 for j in jobs if j.output not in skip)
        if ray is None or todo == 0:  # (nothing to render: no cluster to start either)
            from dhlive_cli.farm.local import LocalPool

            n = workers or os.cpu_count() or 1
            pool = LocalPool(out_dir, workers=max(1, min(n, todo or 1)), model=model, device=device)
        else:
            from dhlive_cli.farm.ray_pool import RayPool

            pool = RayPool(ray, out_dir, workers=workers or (os.cpu_count() if ray == "local" else None),
                           cpus=cpus_per_worker, model=model, device=device)
            # ray.init puts Ray's own SIGTERM handler in place (it dumps a stack and exits 1):
            # a stop by SIGTERM must stay the clean stop that Ctrl+C is
            signal.signal(signal.SIGTERM, on_term)
        run = BatchRun(jobs, pool, log, skip)
        metrics_server = start_metrics(metrics, run.tally.snapshot, "batch")
        try:
            if quiet or json_out or not err_console.is_terminal:
                records = run.run()
            else:
                with Progress(
                    TextColumn("[bold]jobs"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("[red]{task.fields[failed]} failed[/]  {task.fields[running]} running"),
                    TextColumn("{task.fields[rate]:>5.1f} jobs/min  ETA {task.fields[eta]}"),
                    console=err_console.console, transient=True,
                ) as progress:
                    task = progress.add_task("batch", total=len(jobs), completed=run.tally.skipped,
                                             failed=0, running=0, rate=0.0, eta="-:--:--")

                    def tick(s):
                        j = s["jobs"]
                        progress.update(task, completed=j["skipped"] + j["ok"] + j["failed"], failed=j["failed"],
                                        running=j["running"], rate=s["jobs_per_min"], eta=_clock(s["eta_s"]))

                    records = run.run(on_tick=tick)
        except KeyboardInterrupt:
            done = run.tally.snapshot()["jobs"]
            raise Cancelled(f"stopped: {done['ok'] + done['skipped']} of {len(jobs)} jobs complete; "
                            f"`--resume` renders the rest") from None
        snap = run.tally.snapshot()
    finally:
        if pool is not None:
            pool.close()
        log.close()
        if metrics_server:
            metrics_server.close()
        signal.signal(signal.SIGTERM, old)
    failed = [r for r in records if r["status"] != "ok"]
    return {
        "jobs": len(jobs), "ok": snap["jobs"]["ok"], "failed": len(failed), "skipped": snap["jobs"]["skipped"],
        "elapsed_s": round(snap["elapsed_s"], 3), "jobs_per_min": round(snap["jobs_per_min"], 2),
        "frames": snap["frames"], "workers": pool.workers, "pool": pool.kind,
        "nodes": sorted(getattr(pool, "nodes", ())) or None, "overhead_ms": run.overhead_ms(),
        "results": str(log.path), "failed_jobs": [{"output": r["output"], "error": r["error"]} for r in failed],
    }


def _clock(seconds: float | None) -> str:
    """ETA as H:MM:SS (the driver's own estimate: jobs left / jobs per minute so far)."""
    if seconds is None:
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
