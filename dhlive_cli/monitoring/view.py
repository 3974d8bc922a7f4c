"""How `dhlive monitor` shows a sample: the rich dashboard panel, the plain line for pipes, the
CSV row and the summary. A sample is the dict the command builds (sampler figures, the leak
fit, the engine figures); memory in MB, CPU in percent, times in seconds.

The panel has a fixed width (PANEL_WIDTH columns, or the terminal's if narrower) and every
figure a fixed-width field, so the box does not grow or jump as numbers change; values too long
for their row are cut with an ellipsis instead of wrapping.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

SPARK = "▁▂▃▄▅▆▇█"
PANEL_WIDTH = 100
SPARK_WIDTH = 48
CSV_FIELDS = ["timestamp", "elapsed_s", "rss_mb", "uss_mb", "cpu_pct", "threads", "fds", "children",
              "children_rss_mb", "slope_mb_per_h", "leak_suspected", "engine_fps", "engine_fps_avg",
              "engine_late_frames", "engine_frame_ms_p99", "engine_state"]


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """Exactly `width` characters: the last samples as block heights (left-padded with spaces
    while there are fewer), scaled between their min and max with a floor of 1 MB or 1 %."""
    if not values:
        return " " * width
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width - 1)] + [values[-1]]
    lo, hi = min(values), max(values)
    # a floor on the scale: a few pages of jitter must not draw as a cliff
    rng = max(hi - lo, 1.0, 0.01 * abs(hi))
    line = "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / rng * len(SPARK)))] for v in values)
    return line.rjust(width)


def _f(v, fmt: str, none: str = "-") -> str:
    return none if v is None else format(v, fmt)


def _w(v, fmt: str, width: int, none: str = "-") -> str:
    """A figure right-aligned in a field of `width` characters."""
    return _f(v, fmt, none).rjust(width)


def verdict(s: dict) -> str:
    if s["leak_suspected"]:
        return "LEAK SUSPECTED"
    return "warming up" if s.get("leak_warming_up") else "ok"


def plain_line(s: dict) -> str:
    line = (f"{time.strftime('%H:%M:%S', time.localtime(s['time']))} pid {s['pid']} "
            f"rss {s['rss_mb']:.1f} MB uss {'n/a' if s['uss_mb'] is None else format(s['uss_mb'], '.1f') + ' MB'} "
            f"cpu {s['cpu_pct']:.1f}% threads {s['threads']} fds {_f(s['fds'], 'd')} children {len(s['children'])} "
            f"({s['children_rss_mb']:.1f} MB) slope {s['slope_mb_per_h']:+.1f} MB/h {verdict(s)}")
    e = s.get("engine")
    if e:
        line += (f" | {e.get('state') or e.get('command') or 'engine'} fps {_f(e.get('fps_now'), '.2f')} "
                 f"(avg {_f(e.get('fps'), '.2f')}) p99 {_f(e.get('frame_ms_p99'), '.1f')} ms "
                 f"late {_f(e.get('late_frames'), 'd')}")
        if e.get("batch"):
            line += f" | {batch_text(e['batch'])}"
    return line


def batch_text(b: dict) -> str:
    """A batch driver's jobs in one line, e.g. 'jobs 6/40 done: 5 ok, 1 failed, 0 skipped; 2
    running, 32 pending; 8.3 per min, eta 00:04:12, 2 workers' (what its metrics have of it)."""
    done = b.get("ok", 0) + b.get("failed", 0) + b.get("skipped", 0)
    text = (f"jobs {done}/{_f(b.get('total'), 'd')} done: {b.get('ok', 0)} ok, {b.get('failed', 0)} failed, "
            f"{b.get('skipped', 0)} skipped; {b.get('running', 0)} running, {b.get('pending', 0)} pending")
    if b.get("jobs_per_min") is not None:
        text += f"; {b['jobs_per_min']:.1f} per min"
    if b.get("eta_s") is not None:
        text += f", eta {hms(b['eta_s'])}"
    if b.get("workers") is not None:
        text += f", {b['workers']:.0f} worker{'' if round(b['workers']) == 1 else 's'}"
    return text


def hms(s: float) -> str:
    s = int(s)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def panel(s: dict, *, name: str, tracker, elapsed: float, n: int, scraper_error: str | None,
          alert_rss: float | None, width: int = PANEL_WIDTH):
    """The dashboard: a rich Panel exactly `width` columns wide (see the module docstring)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    rule = tracker.rule
    inner = width - 4  # borders and padding
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True, width=12)
    t.add_column(no_wrap=True, overflow="ellipsis", width=inner - 14)
    rss_style = "bold red" if alert_rss is not None and s["rss_mb"] > alert_rss else ""
    t.add_row("memory", Text.assemble("RSS ", (f"{s['rss_mb']:8.1f} MB", rss_style),
                                      f"   USS {_w(s['uss_mb'], '.1f', 8, 'n/a')} MB"
                                      f"   children {s['children_rss_mb']:8.1f} MB ({len(s['children']):2d})"))
    rss = list(tracker.rss)
    t.add_row(f"RSS {rule.window_s:.0f} s", Text(f"{sparkline(rss)}  {_w(min(rss), '.1f', 7)}..{_f(max(rss), '.1f')} MB",
                                                 style="cyan"))
    if tracker.suspected:
        v = Text("leak suspected", style="bold red")
    elif tracker.warming_up:
        v = Text(f"warming up ({max(rule.warmup_s, rule.min_span_s):.0f} s)", style="dim")
    else:
        v = Text("ok", style="green")
    t.add_row("leak slope", Text.assemble(
        f"{tracker.slope_mb_per_h:+9.1f} MB/h, {tracker.growth_mb:+7.1f} MB over {tracker.span_s:4.0f} s "
        f"(flag > {rule.threshold_mb_per_h(s['rss_mb']):.0f} MB/h and {rule.min_growth(s['rss_mb']):.0f} MB)  ", v))
    t.add_row("cpu", f"{s['cpu_pct']:6.1f} %   threads {s['threads']:4d}   open fds {_w(s['fds'], 'd', 5, 'n/a')}")
    e = s.get("engine")
    if e:
        # the command and state come from the watched process's own metrics: text, never markup
        t.add_row("engine", Text.assemble(f"{str(e.get('command') or '')[:8]:<8} state ",
                                          (f"{str(e.get('state') or '-'):<10}", "bold"),
                                          f" fps {_w(e.get('fps_now'), '.2f', 7)} now {_w(e.get('fps'), '.2f', 7)} avg"))
        t.add_row("frame time", f"p50 {_w(e.get('frame_ms_p50'), '.1f', 6)} ms   p99 {_w(e.get('frame_ms_p99'), '.1f', 6)} ms"
                                f"   frames {_w(e.get('frames'), 'd', 8)}   late {_w(e.get('late_frames'), 'd', 6)}"
                                f"   reconnects {_w(e.get('reconnects'), 'd', 3)}")
        if e.get("queues"):
            caps = e.get("queue_capacity", {})
            t.add_row("queues", "   ".join(f"{k} {v:3.0f}" + (f"/{caps[k]:.0f}" if k in caps else "")
                                           for k, v in sorted(e["queues"].items())))
        if e.get("batch"):
            t.add_row("batch", batch_text(e["batch"]))
        if e.get("latency_ms") is not None or e.get("queued_speech_s") is not None:
            t.add_row("speech", f"latency {_w(e.get('latency_ms'), '.0f', 6)} ms   queued "
                                f"{_w(e.get('queued_speech_s'), '.1f', 6)} s")
    elif scraper_error:
        t.add_row("engine", Text(f"metrics unreachable: {scraper_error}", style="yellow"))
    parts = [t]
    if s["children"]:
        k = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        for col, w in (("child pid", 9), ("name", 24), ("RSS MB", 9), ("CPU %", 7)):
            k.add_column(col, justify="right" if col != "name" else "left", width=w, no_wrap=True,
                         overflow="ellipsis")
        for c in s["children"][:8]:
            k.add_row(str(c["pid"]), Text(str(c["name"])), f"{c['rss_mb']:.1f}", f"{c['cpu_pct']:.1f}")
        if len(s["children"]) > 8:
            k.add_row("", f"... {len(s['children']) - 8} more", "", "")
        parts.append(k)
    title = Text(f"dhlive monitor  pid {s['pid']} ({name})")  # a process name is text, not rich markup
    sub = f"up {hms(elapsed)}  {n:6d} samples  Ctrl+C to stop"
    return Panel(Group(*parts), title=title, subtitle=sub, width=width)


def csv_row(s: dict) -> dict:
    e = s.get("engine") or {}
    return {"timestamp": s["time"], "elapsed_s": s["elapsed_s"], "rss_mb": s["rss_mb"],
            "uss_mb": "" if s["uss_mb"] is None else s["uss_mb"], "cpu_pct": s["cpu_pct"],
            "threads": s["threads"], "fds": "" if s["fds"] is None else s["fds"], "children": len(s["children"]),
            "children_rss_mb": s["children_rss_mb"], "slope_mb_per_h": s["slope_mb_per_h"],
            "leak_suspected": int(s["leak_suspected"]),
            "engine_fps": "" if e.get("fps_now") is None else round(e["fps_now"], 3),
            "engine_fps_avg": "" if e.get("fps") is None else round(e["fps"], 3),
            "engine_late_frames": e.get("late_frames", ""),
            "engine_frame_ms_p99": "" if e.get("frame_ms_p99") is None else round(e["frame_ms_p99"], 3),
            "engine_state": e.get("state") or ""}


def summary_text(m: dict) -> str:
    leak = (f"LEAK SUSPECTED (first at {m['leak_suspected_at_s']:.0f} s"
            + (", still at the end)" if m.get("leak_suspected_at_end") else ", not at the end)")
            if m["leak_suspected"] else "no leak suspected")
    rss = ("rss n/a" if m["samples"] == 0 else
           f"rss min {m['rss_mb_min']:.1f} / max {m['rss_mb_max']:.1f} / last {m['rss_mb_last']:.1f} MB")
    if m.get("children_rss_mb_max"):
        rss += f"; children max {m['children_rss_mb_max']:.1f} MB"
    lines = [f"summary: pid {m['pid']} ({m['name']}) {m['ended']} after {m['duration_s']:.1f} s, {m['samples']} samples",
             f"  {rss}",
             f"  slope {m['slope_mb_per_h']:+.1f} MB/h over {m['fit_span_s']:.0f} s: {leak}"]
    if m["rss_alerts"]:
        lines.append(f"  --alert-rss fired {m['rss_alerts']} time(s)")
    if m["plot"]:
        lines.append(f"  plot: {m['plot']}")
    return "\n".join(lines)
