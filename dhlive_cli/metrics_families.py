"""Prometheus metric families of a running dhlive process, built from its snapshot at scrape time.

The collector behind `dhlive_cli.metrics.MetricsServer`, kept apart so the server can start
without importing prometheus_client (about 40 ms of a short render's start-up): a server
imports this module before it can be found, or, for a render's named port, at the first scrape. Names follow Prometheus conventions: base units (seconds, bytes),
labels for queues, states, sessions and outputs.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("dhlive_cli.metrics")

# states the live engine reports; any other state a snapshot names is exported too
KNOWN_STATES = ("idle", "talking")


def _num(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


class SnapshotCollector(Collector):
    """Turns one snapshot dict (live or render) into metric families at scrape time."""

    def __init__(self, snapshot: Callable[[], dict], command: str):
        self._snapshot = snapshot
        self._command = command
        self._proc = psutil.Process()

    def describe(self):
        # no names up front: registering must not call snapshot() before the session is ready
        return []

    def collect(self) -> Iterator:
        info = InfoMetricFamily("dhlive", "dhlive process and session", labels=None)
        t = time.monotonic()
        try:
            s = self._snapshot() or {}
        except Exception:  # a scrape must never take the server down; say so in the figures
            log.warning("metrics snapshot failed", exc_info=True)
            s = {}
            up = 0.0
        else:
            up = 1.0
        info.add_metric([], {"command": self._command, "session": str(s.get("session", ""))})
        yield info
        yield GaugeMetricFamily("dhlive_snapshot_ok", "1 when the session snapshot was read", value=up)
        # when the figures below were read, on this machine's monotonic clock: a rate between two
        # scrapes (dhlive monitor's fps) divides by its difference, not by when each answer arrived,
        # which a busy process delays by tenths of a second
        yield GaugeMetricFamily("dhlive_snapshot_monotonic_seconds",
                                "CLOCK_MONOTONIC seconds when this scrape's figures were read", value=t)

        frames = _num(s.get("frames", s.get("frames_done")))
        if frames is not None:
            yield CounterMetricFamily("dhlive_frames", "Frames produced since start", value=frames)
        planned = _num(s.get("frames_total"))
        if planned is not None:
            yield GaugeMetricFamily("dhlive_render_frames_planned", "Frames the render will produce", value=planned)
        late = _num(s.get("late_frames"))
        if late is not None:
            yield CounterMetricFamily("dhlive_late_frames", "Frames that missed their deadline", value=late)
        fps = _num(s.get("fps"))
        if fps is not None:
            yield GaugeMetricFamily("dhlive_fps", "Frames per second since start", value=fps)

        # a gauge, not a summary: the quantiles come from the engine's rolling window, and a
        # summary would promise cumulative _sum/_count we do not have
        q = GaugeMetricFamily("dhlive_frame_seconds", "Frame time quantile over the recent window",
                              labels=["quantile"])
        have_q = False
        for key, label in (("frame_ms_p50", "0.5"), ("frame_ms_p99", "0.99")):
            v = _num(s.get(key))
            if v is not None:
                q.add_metric([label], v / 1000.0)
                have_q = True
        if have_q:
            yield q

        yield from self._queues(s)
        yield from self._state(s)
        yield from self._outputs(s)
        yield from self._sessions(s)
        yield from self._batch(s)

        queued = _num(s.get("queued_speech_s"))
        if queued is not None:
            yield GaugeMetricFamily("dhlive_queued_speech_seconds", "Speech waiting to be spoken", value=queued)
        lat = _num(s.get("latency_ms_median"))
        if lat is not None:
            yield GaugeMetricFamily("dhlive_latency_seconds", "Median push-to-first-frame latency", value=lat / 1000.0)

        rss = _num(s.get("rss_mb"))
        if rss is not None:
            rss_bytes = rss * 2**20
        else:
            try:
                rss_bytes = float(self._proc.memory_info().rss)
            except psutil.Error:
                rss_bytes = None
        if rss_bytes is not None:
            yield GaugeMetricFamily("dhlive_resident_memory_bytes", "Resident memory of the process",
                                    value=rss_bytes)

    @staticmethod
    def _queues(s: dict):
        fill = GaugeMetricFamily("dhlive_queue_fill", "Items in a bounded queue", labels=["queue"])
        cap = GaugeMetricFamily("dhlive_queue_capacity", "Capacity of a bounded queue", labels=["queue"])
        n_fill = n_cap = 0
        qf = s.get("queue_fill")
        if isinstance(qf, dict):  # render: {name: (fill, max)}
            for name, v in qf.items():
                if isinstance(v, (tuple, list)) and len(v) == 2:
                    f, m = _num(v[0]), _num(v[1])
                else:
                    f, m = _num(v), None
                if f is not None:
                    fill.add_metric([str(name)], f)
                    n_fill += 1
                if m is not None:
                    cap.add_metric([str(name)], m)
                    n_cap += 1
        for i, o in enumerate(_outputs_of(s)):
            f = _num(o.get("queue_fill"))
            if f is not None:
                fill.add_metric([f"output{i}"], f)
                n_fill += 1
        if n_fill:
            yield fill
        if n_cap:
            yield cap

    @staticmethod
    def _state(s: dict):
        state = s.get("state")
        if not isinstance(state, str):
            return
        g = GaugeMetricFamily("dhlive_state", "1 for the state the session is in", labels=["state"])
        names = list(KNOWN_STATES) + ([state] if state not in KNOWN_STATES else [])
        for name in names:
            g.add_metric([name], 1.0 if name == state else 0.0)
        yield g

    @staticmethod
    def _sessions(s: dict):
        """Live with several sessions: each one's figures, labelled by session name, and the
        shared clock's (ticks, inference calls: one call per tick however many sessions)."""
        snaps = s.get("sessions")
        if isinstance(snaps, (list, tuple)):
            fams = (
                (CounterMetricFamily, "dhlive_session_frames", "Frames a session produced", "frames"),
                (CounterMetricFamily, "dhlive_session_late_frames", "Frames a session repeated because drawing fell behind", "late_frames"),
                (GaugeMetricFamily, "dhlive_session_fps", "A session's frames per second since it started", "fps"),
                (GaugeMetricFamily, "dhlive_session_queued_speech_seconds", "Speech waiting in a session's buffer", "queued_speech_s"),
            )
            yield GaugeMetricFamily("dhlive_sessions", "Live sessions running", value=len(snaps))
            for cls, name, help_, key in fams:
                fam = cls(name, help_, labels=["session"])
                for x in snaps:
                    v = _num(x.get(key)) if isinstance(x, dict) else None
                    if v is not None:
                        fam.add_metric([str(x.get("session", ""))], v)
                yield fam
            talking = GaugeMetricFamily("dhlive_session_talking", "1 while a session's avatar is talking", labels=["session"])
            for x in snaps:
                if isinstance(x, dict):
                    talking.add_metric([str(x.get("session", ""))], 1.0 if x.get("state") == "talking" else 0.0)
            yield talking
        clock = s.get("clock")
        if isinstance(clock, dict):
            for cls, name, help_, key in (
                (CounterMetricFamily, "dhlive_ticks", "Ticks of the live clock", "ticks"),
                (CounterMetricFamily, "dhlive_inference_calls", "Inference calls made by the live clock (all sessions batched)", "inference_calls"),
                (CounterMetricFamily, "dhlive_late_ticks", "Ticks that started over a frame late", "late_ticks"),
            ):
                v = _num(clock.get(key))
                if v is not None:
                    yield cls(name, help_, value=v)

    @staticmethod
    def _batch(s: dict):
        """`dhlive batch`: job counts by state, throughput, ETA and live workers."""
        jobs = s.get("jobs")
        if not isinstance(jobs, dict):
            return
        g = GaugeMetricFamily("dhlive_batch_jobs", "Jobs of the batch run by state", labels=["state"])
        for state in ("total", "skipped", "ok", "failed", "running", "pending"):
            v = _num(jobs.get(state))
            if v is not None:
                g.add_metric([state], v)
        yield g
        for name, help_, key in (
            ("dhlive_batch_jobs_per_minute", "Jobs finished per minute since the run started", "jobs_per_min"),
            ("dhlive_batch_eta_seconds", "Estimated seconds until every job has finished", "eta_s"),
            ("dhlive_batch_workers", "Workers ready or busy", "workers"),
        ):
            v = _num(s.get(key))
            if v is not None:
                yield GaugeMetricFamily(name, help_, value=v)

    @staticmethod
    def _outputs(s: dict):
        outs = _outputs_of(s)
        if not outs:
            return
        # outputs are labelled by index, never by target: an RTMP URL carries the stream key
        rec = CounterMetricFamily("dhlive_reconnects", "Reconnects of an output", labels=["output"])
        con = GaugeMetricFamily("dhlive_output_connected", "1 while an output is connected", labels=["output"])
        wr = CounterMetricFamily("dhlive_output_frames_written", "Frames written to an output", labels=["output"])
        dr = CounterMetricFamily("dhlive_output_frames_dropped", "Frames an output dropped", labels=["output"])
        ref = CounterMetricFamily("dhlive_output_publish_refused", "Publishes an RTMP server refused (stream key "
                                  "refused, already publishing)", labels=["output"])
        for i, o in enumerate(outs):
            lab = [str(i)]
            for fam, key in ((rec, "reconnects"), (con, "connected"), (wr, "frames_written"), (dr, "frames_dropped"),
                             (ref, "publish_refusals")):
                v = _num(o.get(key))
                if v is not None:
                    fam.add_metric(lab, v)
        yield from (rec, con, wr, dr, ref)


def _outputs_of(s: dict) -> list[dict]:
    outs = s.get("outputs")
    if not isinstance(outs, (list, tuple)):
        return []
    return [o for o in outs if isinstance(o, dict)]


__all__ = ["KNOWN_STATES", "SnapshotCollector"]
