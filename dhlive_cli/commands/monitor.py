"""`dhlive monitor`: memory, CPU and engine figures of a running process, with a leak detector.

Works for any pid (process figures from psutil). When the process is a dhlive session that
serves metrics (dhlive_cli.metrics.MetricsServer), its discovery file gives the URL and the
engine figures (fps, frame times, late frames, queues, state, reconnects) are scraped too.

Leak rule ("leak suspected"). Every sample refits the RSS trend over the last --window seconds
with Theil-Sen (median of pairwise slopes; a random but seeded subset of at most 3000 pairs keeps
one fit near a millisecond in pure Python). A leak is suspected when, for every fit during the
last hold = min(30 s, window/4):
  * the fit spans at least min(30 s, window/2) and holds at least 8 samples,
  * slope > max(2 MB/h, 5 % of the current RSS per hour), so a big process is not flagged for
    noise-level growth and a small one is not flagged for a few pages,
  * Kendall's tau over the same pairs is >= 0.5 (pairs agree on "up" at least 3:1), so a GC
    sawtooth or a lone step (a cache filled once: at most half the pairs span it, the median
    stays 0) does not count as a trend.
The summary reports whether the rule fired at any time during the watch, and when.

Exit status: 0 when the target exits or the watch is stopped (Ctrl+C, SIGTERM), 2 for a bad
--pid (not running, not permitted) or option, 3 when --alert-rss fired at least once. The alert
does not end the watch: a dashboard stays useful past the line, and a script gets the status
(`dhlive monitor --pid N --once --alert-rss 2000 || restart`).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Sequence

import typer

from dhlive_cli.commands.common import err_console, fail, stdout_is_terminal, user_errors

EXAMPLES = """
Examples:

  dhlive monitor --pid 4242

  dhlive monitor --pid 4242 --interval 0.5 --csv mem.csv --plot mem.png

  dhlive monitor --pid 4242 --json --once

  dhlive monitor --pid 4242 --alert-rss 2000 --window 600
"""

MB = 2**20
SPARK = "▁▂▃▄▅▆▇█"
REFRESH_S = 0.25  # dashboard redraw period (~4 Hz), independent of the sampling interval
CSV_FIELDS = ["timestamp", "elapsed_s", "rss_mb", "uss_mb", "cpu_pct", "threads", "fds", "children",
              "children_rss_mb", "slope_mb_per_h", "leak_suspected", "engine_fps", "engine_late_frames",
              "engine_frame_ms_p99", "engine_state"]


# ----------------------------------------------------------------------------- the fit (pure)


def theil_sen(ts: Sequence[float], ys: Sequence[float], max_pairs: int = 3000, seed: int = 0) -> tuple[float, float]:
    """(slope, tau): the median pairwise slope dy/dt and Kendall's tau over the same pairs.

    All pairs when there are at most `max_pairs`, else `max_pairs` pairs drawn with a fixed seed,
    which keeps the estimate's breakdown point (29 %) and makes a run reproducible.
    """
    n = len(ts)
    if n != len(ys):
        raise ValueError("ts and ys differ in length")
    if n < 2:
        return 0.0, 0.0
    if n * (n - 1) // 2 <= max_pairs:
        pairs = ((i, j) for i in range(n - 1) for j in range(i + 1, n))
    else:
        rng = random.Random(seed)
        pairs = ((i, j) if i < j else (j, i)
                 for i, j in ((rng.randrange(n), rng.randrange(n)) for _ in range(max_pairs)) if i != j)
    slopes = []
    up = down = 0
    for i, j in pairs:
        dt = ts[j] - ts[i]
        if dt == 0:
            continue
        d = (ys[j] - ys[i]) / dt
        slopes.append(d)
        if d > 0:
            up += 1
        elif d < 0:
            down += 1
    if not slopes:
        return 0.0, 0.0
    slopes.sort()
    m = len(slopes)
    slope = slopes[m // 2] if m % 2 else 0.5 * (slopes[m // 2 - 1] + slopes[m // 2])
    return slope, (up - down) / m


@dataclass(frozen=True)
class LeakRule:
    """When a rising RSS counts as a leak; see the module docstring for the reasoning."""

    window_s: float = 120.0
    abs_mb_per_h: float = 2.0
    rel_per_h: float = 0.05
    min_tau: float = 0.5
    min_samples: int = 8

    @property
    def min_span_s(self) -> float:
        return min(30.0, self.window_s / 2)

    @property
    def hold_s(self) -> float:
        return min(30.0, self.window_s / 4)

    def threshold_mb_per_h(self, rss_mb: float) -> float:
        return max(self.abs_mb_per_h, self.rel_per_h * rss_mb)


class LeakTracker:
    """RSS samples over a sliding window, the Theil-Sen trend, and the leak verdict."""

    def __init__(self, rule: LeakRule):
        self.rule = rule
        self.ts: deque[float] = deque()
        self.rss: deque[float] = deque()
        self.slope_mb_per_h = 0.0
        self.tau = 0.0
        self.span_s = 0.0
        self.suspected = False
        self.first_suspected_s: float | None = None
        self._cond_since: float | None = None

    def add(self, t: float, rss_mb: float) -> None:
        self.ts.append(t)
        self.rss.append(rss_mb)
        while self.ts and t - self.ts[0] > self.rule.window_s:
            self.ts.popleft()
            self.rss.popleft()
        slope, self.tau = theil_sen(self.ts, self.rss)
        self.slope_mb_per_h = slope * 3600.0
        self.span_s = self.ts[-1] - self.ts[0]
        r = self.rule
        cond = (self.span_s >= r.min_span_s and len(self.ts) >= r.min_samples
                and self.slope_mb_per_h > r.threshold_mb_per_h(rss_mb) and self.tau >= r.min_tau)
        if not cond:
            self._cond_since = None
        elif self._cond_since is None:
            self._cond_since = t
        self.suspected = cond and t - self._cond_since >= r.hold_s
        if self.suspected and self.first_suspected_s is None:
            self.first_suspected_s = t


# ----------------------------------------------------------------------------- sampling


class TargetGone(Exception):
    """The watched process exited (or its pid now belongs to another process)."""


class ProcessProbe:
    """psutil figures of one process and its children, with per-child CPU % kept across samples."""

    def __init__(self, pid: int):
        import psutil

        from dhlive_cli.errors import InputError

        self._psutil = psutil
        try:
            self.proc = psutil.Process(pid)
            with self.proc.oneshot():
                if self.proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(pid)
                self.name = self.proc.name()
                self.proc.memory_info()
                self.proc.cpu_percent(None)  # primes the counter: the first sample's CPU % is real
                self.proc.num_threads()
        except psutil.AccessDenied:
            raise InputError(f"--pid {pid}: permission denied (watch it as its owner or as root)") from None
        except psutil.NoSuchProcess:
            raise InputError(f"--pid {pid}: no such process") from None
        try:
            self.cmdline = " ".join(self.proc.cmdline())
        except psutil.Error:
            self.cmdline = ""
        self.uss_ok = True
        self.fds_ok = True
        self._kids: dict[int, object] = {}

    def sample(self) -> dict:
        psutil = self._psutil
        p = self.proc
        try:
            if not p.is_running():  # also false when the pid was reused by a newer process
                raise TargetGone
            with p.oneshot():
                if p.status() == psutil.STATUS_ZOMBIE:
                    raise TargetGone
                rss = p.memory_info().rss / MB
                cpu = p.cpu_percent(None)
                threads = p.num_threads()
                fds = None
                if self.fds_ok:
                    try:
                        fds = p.num_fds()
                    except psutil.AccessDenied:
                        self.fds_ok = False
                uss = None
                if self.uss_ok:
                    try:
                        uss = p.memory_full_info().uss / MB
                    except psutil.AccessDenied:
                        self.uss_ok = False  # smaps needs ptrace rights; stop asking every second
            children = p.children(recursive=True)
        except (psutil.NoSuchProcess, ProcessLookupError):
            raise TargetGone from None
        kids, kids_rss = [], 0.0
        seen = set()
        for c in children:
            c = self._kids.setdefault(c.pid, c)  # the same object, so cpu_percent has a baseline
            seen.add(c.pid)
            try:
                with c.oneshot():
                    k = {"pid": c.pid, "name": c.name(), "rss_mb": round(c.memory_info().rss / MB, 3),
                         "cpu_pct": round(c.cpu_percent(None), 1)}
            except psutil.Error:
                continue
            kids.append(k)
            kids_rss += k["rss_mb"]
        for gone in set(self._kids) - seen:
            del self._kids[gone]
        return {"rss_mb": round(rss, 3), "uss_mb": None if uss is None else round(uss, 3),
                "cpu_pct": round(cpu, 1), "threads": threads, "fds": fds,
                "children": kids, "children_rss_mb": round(kids_rss, 3)}


def parse_metrics(text: str) -> dict:
    """Engine figures from dhlive's Prometheus text exposition (names from dhlive_cli.metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    e: dict = {"queues": {}, "queue_capacity": {}}
    reconnects = None
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name, labels, v = s.name, s.labels, s.value
            if name == "dhlive_info":
                e["command"] = labels.get("command")
                e["session"] = labels.get("session") or None
            elif name == "dhlive_fps":
                e["fps"] = v
            elif name == "dhlive_frames_total":
                e["frames"] = int(v)
            elif name == "dhlive_render_frames_planned":
                e["frames_planned"] = int(v)
            elif name == "dhlive_late_frames_total":
                e["late_frames"] = int(v)
            elif name == "dhlive_frame_seconds":
                q = labels.get("quantile")
                if q == "0.5":
                    e["frame_ms_p50"] = v * 1000.0
                elif q == "0.99":
                    e["frame_ms_p99"] = v * 1000.0
            elif name == "dhlive_queue_fill":
                e["queues"][labels.get("queue", "")] = v
            elif name == "dhlive_queue_capacity":
                e["queue_capacity"][labels.get("queue", "")] = v
            elif name == "dhlive_state" and v >= 0.5:
                e["state"] = labels.get("state")
            elif name == "dhlive_reconnects_total":
                reconnects = (reconnects or 0) + int(v)
            elif name == "dhlive_queued_speech_seconds":
                e["queued_speech_s"] = v
            elif name == "dhlive_latency_seconds":
                e["latency_ms"] = v * 1000.0
            elif name == "dhlive_resident_memory_bytes":
                e["rss_mb"] = v / MB
    if reconnects is not None:
        e["reconnects"] = reconnects
    return e


class EngineScraper:
    """Finds a pid's metrics URL through its discovery file and scrapes it; None when it has none."""

    LOOKUP_EVERY_S = 5.0  # a session may start serving after the watch began

    def __init__(self, pid: int, timeout_s: float):
        import urllib.request

        self.pid = pid
        self.timeout_s = timeout_s
        self.url: str | None = None
        self.error: str | None = None
        self._next_lookup = 0.0
        # no proxies: $http_proxy must not route a loopback scrape through another host
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def scrape(self) -> dict | None:
        now = time.monotonic()
        if self.url is None:
            if now < self._next_lookup:
                return None
            self._next_lookup = now + self.LOOKUP_EVERY_S
            from dhlive_cli.metrics import read_discovery

            rec = read_discovery(self.pid)
            if rec is None:
                return None
            self.url = rec["metrics_url"]
        try:
            with self._opener.open(self.url, timeout=self.timeout_s) as r:
                text = r.read(4 * MB).decode("utf-8", "replace")
            e = parse_metrics(text)
        except Exception as ex:  # a dying or restarting server: show it, keep the process figures
            self.error = f"{type(ex).__name__}: {ex}"
            self.url = None  # look the file up again: it is gone if the server closed
            return None
        self.error = None
        return e


class History:
    """Samples kept for --plot: at most ~max_points, halving the resolution when full.

    A monitor left running for weeks must not grow itself; the chart needs no more points than
    it has pixels.
    """

    def __init__(self, max_points: int = 4000):
        self.max_points = max_points
        self.stride = 1
        self._n = 0
        self.t: list[float] = []
        self.rss: list[float] = []
        self.uss: list[float | None] = []
        self.fps: list[float | None] = []

    def add(self, t: float, rss: float, uss: float | None, fps: float | None) -> None:
        self._n += 1
        if (self._n - 1) % self.stride:
            return
        self.t.append(t)
        self.rss.append(rss)
        self.uss.append(uss)
        self.fps.append(fps)
        if len(self.t) >= self.max_points:
            for a in (self.t, self.rss, self.uss, self.fps):
                del a[1::2]
            self.stride *= 2


# ----------------------------------------------------------------------------- presentation


def sparkline(values: Sequence[float], width: int = 60) -> str:
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width - 1)] + [values[-1]]
    lo, hi = min(values), max(values)
    # a floor on the scale: a few pages of jitter must not draw as a cliff
    rng = max(hi - lo, 1.0, 0.01 * abs(hi))
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / rng * len(SPARK)))] for v in values)


def _f(v, fmt: str, none: str = "-") -> str:
    return none if v is None else format(v, fmt)


def _verdict(s: dict) -> str:
    return "LEAK SUSPECTED" if s["leak_suspected"] else "ok"


def plain_line(s: dict) -> str:
    line = (f"{time.strftime('%H:%M:%S', time.localtime(s['time']))} pid {s['pid']} "
            f"rss {s['rss_mb']:.1f} MB uss {'n/a' if s['uss_mb'] is None else format(s['uss_mb'], '.1f') + ' MB'} cpu {s['cpu_pct']:.1f}% "
            f"threads {s['threads']} fds {_f(s['fds'], 'd')} children {len(s['children'])} "
            f"({s['children_rss_mb']:.1f} MB) slope {s['slope_mb_per_h']:+.1f} MB/h {_verdict(s)}")
    e = s.get("engine")
    if e:
        line += (f" | {e.get('state') or e.get('command') or 'engine'} fps {_f(e.get('fps'), '.2f')} "
                 f"p99 {_f(e.get('frame_ms_p99'), '.1f')} ms late {_f(e.get('late_frames'), 'd')}")
    return line


def _panel(s: dict, probe: ProcessProbe, tracker: LeakTracker, elapsed: float, n: int, scraper: EngineScraper,
           alert_rss: float | None):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    rule = tracker.rule
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    rss_style = "bold red" if alert_rss is not None and s["rss_mb"] > alert_rss else ""
    t.add_row("memory", Text.assemble(("RSS ", ""), (f"{s['rss_mb']:.1f} MB", rss_style),
                                      f"   USS {_f(s['uss_mb'], '.1f', 'n/a')} MB"
                                      f"   children {s['children_rss_mb']:.1f} MB"))
    t.add_row(f"RSS {rule.window_s:.0f} s", Text(f"{sparkline(list(tracker.rss))}  "
                                                  f"{min(tracker.rss):.1f}..{max(tracker.rss):.1f} MB", style="cyan"))
    if tracker.suspected:
        verdict = Text("leak suspected", style="bold red")
    elif tracker.span_s < rule.min_span_s:
        verdict = Text(f"fit needs {rule.min_span_s:.0f} s", style="dim")
    else:
        verdict = Text("ok", style="green")
    t.add_row("leak slope", Text.assemble(f"{tracker.slope_mb_per_h:+.1f} MB/h over {tracker.span_s:.0f} s "
                                          f"(tau {tracker.tau:+.2f}, flag > "
                                          f"{rule.threshold_mb_per_h(s['rss_mb']):.1f} MB/h)  ", verdict))
    t.add_row("cpu", f"{s['cpu_pct']:.1f} %   threads {s['threads']}   open fds {_f(s['fds'], 'd', 'n/a')}")
    e = s.get("engine")
    if e:
        t.add_row("engine", f"{e.get('command') or ''} {e.get('session') or ''}  state "
                            f"[bold]{e.get('state') or '-'}[/]   fps {_f(e.get('fps'), '.2f')}")
        t.add_row("frame time", f"p50 {_f(e.get('frame_ms_p50'), '.1f')} ms   p99 {_f(e.get('frame_ms_p99'), '.1f')} ms"
                                f"   frames {_f(e.get('frames'), 'd')}   late {_f(e.get('late_frames'), 'd')}"
                                f"   reconnects {_f(e.get('reconnects'), 'd')}")
        if e.get("queues"):
            caps = e.get("queue_capacity", {})
            t.add_row("queues", "   ".join(f"{k} {v:.0f}" + (f"/{caps[k]:.0f}" if k in caps else "")
                                           for k, v in sorted(e["queues"].items())))
        if e.get("latency_ms") is not None or e.get("queued_speech_s") is not None:
            t.add_row("speech", f"latency {_f(e.get('latency_ms'), '.0f')} ms   queued "
                                f"{_f(e.get('queued_speech_s'), '.1f')} s")
    elif scraper.error:
        t.add_row("engine", Text(f"metrics unreachable: {scraper.error}", style="yellow"))
    parts = [t]
    if s["children"]:
        k = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        for col in ("child pid", "name", "RSS MB", "CPU %"):
            k.add_column(col, justify="right" if col != "name" else "left")
        for c in s["children"][:8]:
            k.add_row(str(c["pid"]), c["name"], f"{c['rss_mb']:.1f}", f"{c['cpu_pct']:.1f}")
        if len(s["children"]) > 8:
            k.add_row("", f"... {len(s['children']) - 8} more", "", "")
        parts.append(k)
    title = f"dhlive monitor  pid {probe.proc.pid} ({probe.name})"
    sub = f"up {_hms(elapsed)}  {n} samples  Ctrl+C to stop"
    return Panel(Group(*parts), title=title, subtitle=sub, expand=False)


def _hms(s: float) -> str:
    s = int(s)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# ----------------------------------------------------------------------------- chart


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def write_plot(path: Path, hist: History, title: str) -> None:
    """A PNG of RSS/USS (left axis, MB) and engine fps (right axis) over time, drawn with OpenCV."""
    import cv2
    import numpy as np

    from dhlive_cli.errors import OutputError

    W, H = 1000, 540
    have_fps = any(v is not None for v in hist.fps)
    have_uss = any(v is not None for v in hist.uss)
    L, R, T, B = 80, (80 if have_fps else 30), 50, 70
    x0, x1, y0, y1 = L, W - R, T, H - B
    img = np.full((H, W, 3), 255, np.uint8)
    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (225, 225, 225)
    c_rss, c_uss, c_fps = (180, 90, 20), (60, 150, 40), (20, 120, 230)  # BGR

    ts = hist.t or [0.0]
    span = ts[-1] - ts[0]
    unit, div = ("h", 3600.0) if span > 7200 else ("min", 60.0) if span > 600 else ("s", 1.0)
    tx = [(t - ts[0]) / div for t in ts]
    tmax = max(tx[-1], 1e-6)

    def px(x):
        return int(round(x0 + (x1 - x0) * x / tmax))

    def text(s, org, color=black, scale=0.45, thick=1):
        cv2.putText(img, s, org, font, scale, color, thick, cv2.LINE_AA)

    def vtext(s, cx, cy, color=black):
        (w, h), base = cv2.getTextSize(s, font, 0.5, 1)
        tmp = np.full((h + base + 4, w + 4, 3), 255, np.uint8)
        cv2.putText(tmp, s, (2, h + 2), font, 0.5, color, 1, cv2.LINE_AA)
        rot = cv2.rotate(tmp, cv2.ROTATE_90_COUNTERCLOCKWISE)
        rh, rw = rot.shape[:2]
        top, left = max(0, cy - rh // 2), max(0, cx - rw // 2)
        img[top:top + rh, left:left + rw] = rot[: H - top, : W - left]

    mem = [v for v in hist.rss] + [v for v in hist.uss if v is not None]
    lo, hi = (min(mem), max(mem)) if mem else (0.0, 1.0)
    pad = max(0.05 * (hi - lo), 0.5)
    lo, hi = max(0.0, lo - pad), hi + pad

    def py(v, a, b):
        return int(round(y1 - (y1 - y0) * (v - a) / (b - a)))

    for v in _nice_ticks(lo, hi):
        y = py(v, lo, hi)
        cv2.line(img, (x0, y), (x1, y), grey, 1)
        text(f"{v:g}", (x0 - 8 - cv2.getTextSize(f"{v:g}", font, 0.45, 1)[0][0], y + 5))
    for v in _nice_ticks(0.0, tmax):
        x = px(v)
        cv2.line(img, (x, y0), (x, y1), grey, 1)
        lab = f"{v:g}"
        text(lab, (x - cv2.getTextSize(lab, font, 0.45, 1)[0][0] // 2, y1 + 20))
    cv2.rectangle(img, (x0, y0), (x1, y1), black, 1)

    def series(vals, a, b, color):
        run = []
        for x, v in zip(tx, vals):
            if v is None:
                _draw(run, color)
                run = []
            else:
                run.append((px(x), py(v, a, b)))
        _draw(run, color)

    def _draw(pts, color):
        if len(pts) == 1:
            cv2.circle(img, pts[0], 3, color, -1, cv2.LINE_AA)
        elif pts:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)

    series(hist.rss, lo, hi, c_rss)
    if have_uss:
        series(hist.uss, lo, hi, c_uss)
    legend = [("RSS (MB)", c_rss)] + ([("USS (MB)", c_uss)] if have_uss else [])
    if have_fps:
        fv = [v for v in hist.fps if v is not None]
        flo, fhi = 0.0, max(max(fv) * 1.15, 1.0)
        series(hist.fps, flo, fhi, c_fps)
        for v in _nice_ticks(flo, fhi):
            y = py(v, flo, fhi)
            cv2.line(img, (x1, y), (x1 + 5, y), black, 1)
            text(f"{v:g}", (x1 + 8, y + 5), c_fps)
        vtext("engine fps", W - 18, (y0 + y1) // 2, c_fps)
        legend.append(("engine fps", c_fps))

    text(title, (x0, 30), black, 0.6, 1)
    text(f"time ({unit})", ((x0 + x1) // 2 - 30, H - 25), black, 0.5)
    vtext("memory (MB)", 18, (y0 + y1) // 2)
    bw = 20 + max(cv2.getTextSize(s, font, 0.45, 1)[0][0] for s, _ in legend) + 30
    bx, by = x0 + 10, y0 + 10
    cv2.rectangle(img, (bx, by), (bx + bw, by + 10 + 20 * len(legend)), (255, 255, 255), -1)
    cv2.rectangle(img, (bx, by), (bx + bw, by + 10 + 20 * len(legend)), black, 1)
    for i, (s, color) in enumerate(legend):
        yy = by + 20 + 20 * i
        cv2.line(img, (bx + 8, yy - 4), (bx + 30, yy - 4), color, 2, cv2.LINE_AA)
        text(s, (bx + 38, yy))
    if not cv2.imwrite(str(path), img):
        raise OutputError(f"{path}: cannot write the PNG")


# ----------------------------------------------------------------------------- command


def monitor(
    pid: Annotated[int, typer.Option("--pid", "-p", help="Process to watch: any pid; engine figures too when it is a dhlive session serving metrics.", show_default=False)],
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 1.0,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write every sample to this CSV file (overwritten).", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per sample on stdout, then a summary object; with --once exactly one object.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Take one sample (CPU % measured over one --interval) and exit.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="At the end, write a PNG chart of memory (and fps) over time.", show_default=False)] = None,
    alert_rss: Annotated[Optional[float], typer.Option("--alert-rss", metavar="MB", help="Print an alert line when RSS exceeds MB; the exit status is then 3.", show_default=False)] = None,
    window: Annotated[float, typer.Option(help="Seconds of samples the leak fit uses (Theil-Sen).")] = 120.0,
):
    """Watch a process: RSS/USS, CPU, threads, children, RSS leak slope, and dhlive engine figures.

    A leak is suspected when the robust (Theil-Sen) RSS slope over --window stays above max(2 MB/h, 5 % of RSS per hour), rising consistently, for min(30 s, window/4). Exit status: 0 when the target exits or you stop watching, 2 for a bad --pid, 3 when --alert-rss fired.
    """
    if pid <= 0:
        fail(f"--pid {pid}: must be a positive process id")
    if not (interval >= 0.05 and math.isfinite(interval)):
        fail(f"--interval {interval}: must be at least 0.05 seconds")
    if not (window >= 2 * interval and math.isfinite(window)):
        fail(f"--window {window}: must cover at least two samples (>= 2 x --interval)")
    if alert_rss is not None and not alert_rss > 0:
        fail(f"--alert-rss {alert_rss}: must be a positive number of MB")
    if plot is not None:
        if plot.suffix.lower() != ".png":
            fail(f"--plot {plot}: must end in .png")
        parent = plot.parent if str(plot.parent) else Path(".")
        if plot.is_dir() or not parent.is_dir():
            fail(f"--plot {plot}: directory does not exist or the path is a directory")
        if not os.access(parent, os.W_OK | os.X_OK):  # found now, not after an hour of watching
            fail(f"--plot {plot}: directory {parent} is not writable")
    with user_errors():
        code = _monitor(pid, interval, csv_path, json_out, once, plot, alert_rss, window)
    if code:
        raise typer.Exit(code)


monitor.__doc__ = inspect.cleandoc(monitor.__doc__ or "") + "\n\n" + EXAMPLES


def _monitor(pid, interval, csv_path, json_out, once, plot, alert_rss, window) -> int:
    import csv

    probe = ProcessProbe(pid)
    scraper = EngineScraper(pid, timeout_s=min(0.5, max(0.1, interval / 2)))
    tracker = LeakTracker(LeakRule(window_s=window))
    hist = History() if plot is not None else None
    csv_file = open(csv_path, "w", newline="") if csv_path is not None else None  # OSError -> exit 2
    writer = csv.DictWriter(csv_file, CSV_FIELDS, extrasaction="ignore") if csv_file else None
    if writer:
        writer.writeheader()
        csv_file.flush()

    dashboard = not json_out and stdout_is_terminal()
    stop = threading.Event()
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())

    n = 0
    alerts = 0
    alert_armed = True
    rss_min = rss_max = rss_last = None
    ended = "stopped"
    t0 = time.monotonic()
    wall0 = time.time()
    last: dict | None = None
    ui = None
    try:
        if dashboard and not once:
            from rich.console import Console
            from rich.live import Live

            ui = Live(console=Console(highlight=False), auto_refresh=False, transient=False)
            ui.start()
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
                n += 1
                s = {"type": "sample", "pid": pid, "name": probe.name, "time": round(time.time(), 3),
                     "elapsed_s": round(t_rel, 3), **s,
                     "slope_mb_per_h": round(tracker.slope_mb_per_h, 2), "slope_tau": round(tracker.tau, 3),
                     "fit_span_s": round(tracker.span_s, 2), "leak_suspected": tracker.suspected,
                     "engine_url": scraper.url, "engine": e}
                last = s
                rss = s["rss_mb"]
                rss_min = rss if rss_min is None else min(rss_min, rss)
                rss_max = rss if rss_max is None else max(rss_max, rss)
                rss_last = rss
                if hist is not None:
                    hist.add(t_rel, rss, s["uss_mb"], (e or {}).get("fps"))
                if writer:
                    writer.writerow(_csv_row(s))
                    csv_file.flush()  # a killed monitor still leaves every sample on disk
                if alert_rss is not None:
                    if rss > alert_rss and alert_armed:
                        alerts += 1
                        alert_armed = False
                        err_console.print(f"[bold red]alert:[/] pid {pid} RSS {rss:.1f} MB exceeds "
                                          f"--alert-rss {alert_rss:g} MB", emoji=False)
                    elif rss <= alert_rss:
                        alert_armed = True  # crossing again later is a new alert
                if json_out:
                    typer.echo(json.dumps(s))
                elif dashboard and once:
                    from rich.console import Console

                    Console(highlight=False).print(_panel(s, probe, tracker, t_rel, n, scraper, alert_rss))
                elif not dashboard:
                    typer.echo(plain_line(s))
                if once:
                    break
                # deadlines from the start, never "sleep interval": a slow scrape does not drift
                k = max(k + 1, int((time.monotonic() - t0) / interval) + 1)
                next_sample = t0 + k * interval
            if ui is not None and last is not None:
                ui.update(_panel(last, probe, tracker, time.monotonic() - t0, n, scraper, alert_rss), refresh=True)
            wake = next_sample if ui is None else min(next_sample, time.monotonic() + REFRESH_S)
            if stop.wait(max(0.0, wake - time.monotonic())):
                break
    finally:
        if ui is not None:
            ui.stop()
        for sig, h in old.items():
            signal.signal(sig, h)
        if csv_file:
            csv_file.close()

    if plot is not None and hist is not None and hist.t:
        write_plot(plot, hist, f"dhlive monitor: pid {pid} ({probe.name})")
    if not once:
        summary = {"type": "summary", "pid": pid, "name": probe.name, "ended": ended,
                   "duration_s": round(time.time() - wall0, 2), "samples": n,
                   "rss_mb_min": rss_min, "rss_mb_max": rss_max, "rss_mb_last": rss_last,
                   "slope_mb_per_h": round(tracker.slope_mb_per_h, 2), "fit_span_s": round(tracker.span_s, 2),
                   "leak_suspected": tracker.first_suspected_s is not None,
                   "leak_suspected_at_s": (None if tracker.first_suspected_s is None
                                           else round(tracker.first_suspected_s, 1)),
                   "rss_alerts": alerts, "csv": str(csv_path) if csv_path else None,
                   "plot": str(plot) if plot is not None and hist is not None and hist.t else None}
        if json_out:
            typer.echo(json.dumps(summary))
        else:
            typer.echo(_summary_text(summary))
    if once and n == 0:
        from dhlive_cli.errors import InputError

        raise InputError(f"--pid {pid}: process exited before it could be sampled")
    return 3 if alerts else 0


def _csv_row(s: dict) -> dict:
    e = s.get("engine") or {}
    return {"timestamp": s["time"], "elapsed_s": s["elapsed_s"], "rss_mb": s["rss_mb"],
            "uss_mb": "" if s["uss_mb"] is None else s["uss_mb"], "cpu_pct": s["cpu_pct"],
            "threads": s["threads"], "fds": "" if s["fds"] is None else s["fds"], "children": len(s["children"]),
            "children_rss_mb": s["children_rss_mb"], "slope_mb_per_h": s["slope_mb_per_h"],
            "leak_suspected": int(s["leak_suspected"]),
            "engine_fps": "" if e.get("fps") is None else round(e["fps"], 3),
            "engine_late_frames": e.get("late_frames", ""),
            "engine_frame_ms_p99": "" if e.get("frame_ms_p99") is None else round(e["frame_ms_p99"], 3),
            "engine_state": e.get("state") or ""}


def _summary_text(m: dict) -> str:
    leak = (f"LEAK SUSPECTED (first at {m['leak_suspected_at_s']:.0f} s)" if m["leak_suspected"]
            else "no leak suspected")
    rss = ("rss n/a" if m["samples"] == 0 else
           f"rss min {m['rss_mb_min']:.1f} / max {m['rss_mb_max']:.1f} / last {m['rss_mb_last']:.1f} MB")
    lines = [f"summary: pid {m['pid']} ({m['name']}) {m['ended']} after {m['duration_s']:.1f} s, {m['samples']} samples",
             f"  {rss}",
             f"  slope {m['slope_mb_per_h']:+.1f} MB/h over {m['fit_span_s']:.0f} s: {leak}"]
    if m["rss_alerts"]:
        lines.append(f"  --alert-rss fired {m['rss_alerts']} time(s)")
    if m["plot"]:
        lines.append(f"  plot: {m['plot']}")
    return "\n".join(lines)
