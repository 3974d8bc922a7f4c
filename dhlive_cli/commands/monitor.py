"""`dhlive monitor`: memory, CPU and engine figures of a running process, with a leak detector.

Works for any pid (process figures from psutil). When the process is a dhlive session that
serves metrics (dhlive_cli.metrics.MetricsServer), its discovery file gives the URL and the
engine figures (fps, frame times, late frames, queues, state, reconnects) are scraped too.
The work is in dhlive_cli/monitoring/: sampler.py (the figures), leak.py (the leak rule, with its
warm-up and minimum growth), chart.py (--plot), view.py (panel, plain lines, CSV, summary).

Exit status: 0 when the target exits or the watch is stopped (Ctrl+C, SIGTERM), 2 for a bad
--pid (not running, not permitted) or option, 3 when --alert-rss fired at least once. The alert
does not end the watch: a dashboard stays useful past the line, and a script gets the status
(`dhlive monitor --pid N --once --alert-rss 2000 || restart`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import (err_console, fail, logs_through, refuse_closed_stdout, stdout_closed,
                                        stdout_is_terminal, user_errors)

EXAMPLES = """
Examples:

  dhlive monitor --pid 4242

  dhlive monitor --pid 4242 --interval 0.5 --csv mem.csv --plot mem.png

  dhlive monitor --pid 4242 --json --once

  dhlive monitor --pid 4242 --alert-rss 2000 --window 600
"""

MAX_INTERVAL_S = 3600.0  # an hour between samples is the longest watch that makes sense
REFRESH_S = 0.25  # dashboard redraw period (~4 Hz), independent of the sampling interval


def monitor(
    pid: Annotated[int, typer.Option("--pid", "-p", help="Process to watch: any pid; engine figures too when it is a dhlive session serving metrics.", show_default=False)],
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 1.0,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write every sample to this CSV file (overwritten).", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per sample on stdout, then a summary object; with --once exactly one object.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Take one sample (CPU % measured over one --interval) and exit.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="At the end, write a PNG chart of memory (and fps) over time.", show_default=False)] = None,
    alert_rss: Annotated[Optional[float], typer.Option("--alert-rss", metavar="MB", help="Print an alert line when RSS exceeds MB; the exit status is then 3.", show_default=False)] = None,
    window: Annotated[float, typer.Option(help="Seconds of samples the leak fit uses (Theil-Sen).")] = 600.0,
    warmup: Annotated[float, typer.Option(help="Seconds of watching before any leak verdict.")] = 20.0,
):
    """Watch a process: RSS/USS, CPU, threads, children, RSS leak slope, and dhlive engine figures.

    A leak is suspected, after --warmup, when the robust (Theil-Sen) RSS slope over --window rises consistently above max(2 MB/h, 5 % of RSS per hour), the fitted rise reaches max(6 MB, 1 % of RSS), and both hold for min(10 s, window/4). Exit status: 0 when the target exits or you stop watching, 2 for a bad --pid, 3 when --alert-rss fired.
    """
    if pid <= 0:
        fail(f"--pid {pid}: must be a positive process id")
    if not (interval >= 0.05 and math.isfinite(interval)):
        fail(f"--interval {interval}: must be at least 0.05 seconds")
    if not interval <= MAX_INTERVAL_S:  # 1e9 was blamed on --window
        fail(f"--interval {interval:g}: at most {MAX_INTERVAL_S:g} seconds between samples")
    if not (window >= 2 * interval and math.isfinite(window)):
        fail(f"--window {window:g}: must cover at least two samples of --interval {interval:g} (>= {2 * interval:g} s)")
    if not (warmup >= 0 and math.isfinite(warmup)):
        fail(f"--warmup {warmup}: must be a number of seconds, 0 or more")
    if alert_rss is not None and not alert_rss > 0:
        fail(f"--alert-rss {alert_rss}: must be a positive number of MB")
    if csv_path is not None and str(csv_path) == "-":  # it made a file named '-'
        fail("--csv -: give a file name; standard output carries the samples (--json makes them JSON lines)")
    if plot is not None:
        if plot.suffix.lower() != ".png":
            fail(f"--plot {plot}: must end in .png")
        parent = plot.parent if str(plot.parent) else Path(".")
        if plot.is_dir() or not parent.is_dir():
            fail(f"--plot {plot}: directory does not exist or the path is a directory")
        if not os.access(parent, os.W_OK | os.X_OK):  # found now, not after an hour of watching
            fail(f"--plot {plot}: directory {parent} is not writable")
        try:  # a file made and removed there: access() says yes to root in /proc or a read-only mount
            import tempfile

            tempfile.TemporaryFile(dir=parent).close()
        except OSError as e:
            fail(f"--plot {plot}: cannot write in {parent}: {e.strerror or e}")
    for opt, path in (("--csv", csv_path), ("--plot", plot)):
        _refuse_closed_descriptor(opt, path)
    # samples are printed there (found now, not after the first sample), unless they go to a file
    # only: `monitor --pid N --csv f.csv >&-` (a monitor left running in the background)
    csv_on_stdout = csv_path is not None and _names_stdout(csv_path)
    if csv_on_stdout and json_out:
        fail(f"--csv {csv_path} and --json both write to standard output: give --csv a file name")
    # `--csv /dev/stdout`: the CSV is what stdout carries, without the plain sample lines
    quiet = not json_out and (csv_on_stdout or stdout_closed() and (csv_path is not None or plot is not None))
    if not quiet:
        refuse_closed_stdout("--json" if json_out else "monitor")
    with user_errors():
        code = _monitor(pid, interval, csv_path, json_out, once, plot, alert_rss, window, warmup, quiet)
    if code:
        raise typer.Exit(code)


monitor.__doc__ = inspect.cleandoc(monitor.__doc__ or "") + "\n\n" + EXAMPLES


def _names_stdout(path) -> bool:
    """path names this process's standard output (/dev/stdout, /dev/fd/1, a link to either)."""
    from dhlive_cli.outpaths import own_descriptor

    return own_descriptor(path) == 1


def _refuse_closed_descriptor(opt: str, path) -> None:
    """`--csv /dev/stdout` (or /dev/fd/N) naming a standard descriptor that was closed when the
    process started: dhlive holds /dev/null there, and every sample would be lost (exit 2)."""
    if path is None:
        return
    from dhlive_cli.outpaths import closed_at_start, own_descriptor

    fd = own_descriptor(path)
    closed = closed_at_start(fd) if fd is not None else None
    if closed:
        fail(f"{opt} {path}: {closed} is closed")


def _monitor(pid, interval, csv_path, json_out, once, plot, alert_rss, window, warmup, quiet=False) -> int:
    """quiet: no plain sample lines nor summary on stdout (it is closed and the samples go to
    --csv / --plot only, or --csv is stdout itself)."""
    import csv

    from dhlive_cli.monitoring import view
    from dhlive_cli.monitoring.chart import History, write_plot
    from dhlive_cli.monitoring.leak import LeakRule, LeakTracker
    from dhlive_cli.monitoring.sampler import EngineScraper, FpsMeter, ProcessProbe, TargetGone

    probe = ProcessProbe(pid)
    scraper = EngineScraper(pid, timeout_s=min(0.5, max(0.1, interval / 2)))
    tracker = LeakTracker(LeakRule(window_s=window, warmup_s=warmup))
    fps_meter = FpsMeter()
    hist = History() if plot is not None else None
    csv_file = open(csv_path, "w", newline="") if csv_path is not None else None  # OSError -> exit 2
    writer = csv.DictWriter(csv_file, view.CSV_FIELDS, extrasaction="ignore") if csv_file else None
    if writer:
        writer.writeheader()
        csv_file.flush()

    dashboard = not json_out and not quiet and stdout_is_terminal()
    from dhlive_cli.interrupts import SignalFlag

    stop = SignalFlag()  # not a threading.Event: its set() could deadlock in a handler (interrupts)
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())

    n = 0
    alerts = 0
    alert_armed = True
    rss_min = rss_max = rss_last = None
    kids_max = 0.0
    ended = "stopped"
    t0 = time.monotonic()
    wall0 = time.time()
    last: dict | None = None
    # a first reading of the frame counter now, so the first sample (the only one with --once)
    # has a rate over the interval before it
    e0 = scraper.scrape()
    if e0 is not None:
        fps_meter.add(e0.get("snapshot_t") or time.monotonic(), e0.get("frames"))
    ui = None
    say = err_console  # alerts; while the panel is up, they and log lines are printed above it
    stack = contextlib.ExitStack()
    try:
        if dashboard and not once:
            from rich.console import Console
            from rich.live import Live

            ui = Live(console=Console(highlight=False, emoji=False), auto_refresh=False, transient=False)
            ui.start()
            say = ui.console
            stack.enter_context(logs_through(ui.console))
        next_sample = t0 + interval  # one interval in, so CPU % covers a real span
        k = 1
        while True:
            now = time.monotonic()
            if now >= next_sample:
                try:
                    s = probe.sample()
                except TargetGone:
                    ended = "target exited"
                    break
                t_rel = time.monotonic() - t0
                tracker.add(t_rel, s["rss_mb"])
                e = scraper.scrape()
                # the engine's own clock at its snapshot where it gives one (an answer delayed by a
                # busy process made this jump by 40 %), else when the answer arrived
                t_frames = (e or {}).get("snapshot_t") or time.monotonic()
                fps_now = fps_meter.add(t_frames, None if e is None else e.get("frames"))
                if e is not None:
                    e["fps_now"] = fps_now
                n += 1
                s = {"type": "sample", "pid": pid, "name": probe.name, "time": round(time.time(), 3),
                     "elapsed_s": round(t_rel, 3), **s,
                     "slope_mb_per_h": round(tracker.slope_mb_per_h, 2), "slope_tau": round(tracker.tau, 3),
                     "fit_span_s": round(tracker.span_s, 2), "fit_growth_mb": round(tracker.growth_mb, 2),
                     "leak_suspected": tracker.suspected, "leak_warming_up": tracker.warming_up,
                     "engine_url": scraper.url, "engine": e}
                last = s
                rss = s["rss_mb"]
                rss_min = rss if rss_min is None else min(rss_min, rss)
                rss_max = rss if rss_max is None else max(rss_max, rss)
                rss_last = rss
                kids_max = max(kids_max, s["children_rss_mb"])
                if hist is not None:
                    hist.add(t_rel, rss, s["uss_mb"], fps_now, s["children_rss_mb"])
                if writer:
                    writer.writerow(view.csv_row(s))
                    csv_file.flush()  # a killed monitor still leaves every sample on disk
                if alert_rss is not None:
                    if rss > alert_rss and alert_armed:
                        alerts += 1
                        alert_armed = False
                        say.print(f"[bold red]alert:[/] pid {pid} RSS {rss:.1f} MB exceeds "
                                          f"--alert-rss {alert_rss:g} MB", emoji=False)
                    elif rss <= alert_rss:
                        alert_armed = True  # crossing again later is a new alert
                if json_out:
                    typer.echo(json.dumps(s))
                elif dashboard and once:
                    from rich.console import Console

                    con = Console(highlight=False, emoji=False)
                    con.print(_panel(view, s, probe, tracker, t_rel, n, scraper, alert_rss, con.width))
                elif not dashboard and not quiet:
                    typer.echo(view.plain_line(s))
                if once:
                    break
                # deadlines from the start, never "sleep interval": a slow scrape does not drift
                k = max(k + 1, int((time.monotonic() - t0) / interval) + 1)
                next_sample = t0 + k * interval
            if ui is not None and last is not None:
                ui.update(_panel(view, last, probe, tracker, time.monotonic() - t0, n, scraper, alert_rss,
                                 ui.console.width), refresh=True)
            wake = next_sample if ui is None else min(next_sample, time.monotonic() + REFRESH_S)
            if stop.wait(max(0.0, wake - time.monotonic())):
                break
    finally:
        stack.close()
        if ui is not None:
            ui.stop()
        for sig, h in old.items():
            signal.signal(sig, h)
        stop.close()
        if csv_file:
            csv_file.close()

    plot_error = None
    if plot is not None and hist is not None and hist.t:
        try:
            write_plot(plot, hist, f"dhlive monitor: pid {pid} ({probe.name})")
        except OSError as e:  # the summary is still printed; the error follows it
            plot_error, hist = f"--plot {e}" if e.strerror is None else f"--plot {plot}: {e.strerror}", None
    if not once:
        summary = {"type": "summary", "pid": pid, "name": probe.name, "ended": ended,
                   "duration_s": round(time.time() - wall0, 2), "samples": n,
                   "rss_mb_min": rss_min, "rss_mb_max": rss_max, "rss_mb_last": rss_last,
                   "children_rss_mb_max": round(kids_max, 3),
                   "slope_mb_per_h": round(tracker.slope_mb_per_h, 2), "fit_span_s": round(tracker.span_s, 2),
                   "leak_suspected": tracker.first_suspected_s is not None,
                   "leak_suspected_at_s": (None if tracker.first_suspected_s is None
                                           else round(tracker.first_suspected_s, 1)),
                   "leak_suspected_at_end": tracker.suspected,
                   "rss_alerts": alerts, "csv": str(csv_path) if csv_path else None,
                   "plot": str(plot) if plot is not None and hist is not None and hist.t else None}
        if json_out:
            typer.echo(json.dumps(summary))
        elif not quiet:
            typer.echo(view.summary_text(summary))
    from dhlive_cli.errors import InputError

    if plot_error:
        raise InputError(plot_error)
    if once and n == 0:
        raise InputError(f"--pid {pid}: process exited before it could be sampled")
    return 3 if alerts else 0


def _panel(view, s, probe, tracker, elapsed, n, scraper, alert_rss, console_width):
    return view.panel(s, name=probe.name, tracker=tracker, elapsed=elapsed, n=n, scraper_error=scraper.error,
                      alert_rss=alert_rss, width=min(view.PANEL_WIDTH, console_width))
