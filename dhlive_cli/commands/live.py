"""`dhlive live`: a fixed-rate stream to RTMP and/or a file, idle when silent, talking when fed."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import err_console, fail, start_metrics, user_errors

EXAMPLES = """
Examples:

  dhlive live --rtmp rtmp://127.0.0.1/live/key --input intro.wav --input news.mp3

  my_tts | dhlive live --input - --rtmp rtmp://host/app/key

  dhlive live --input talk.flac --loop -o record.mp4 --duration 60 --quiet

  dhlive live --input mic --rtmp rtmp://host/app/key

  dhlive live --listen 127.0.0.1:8765 --rtmp rtmp://host/app/key
  curl -X POST --data-binary @hello.wav -H 'Content-Type: audio/wav' http://127.0.0.1:8765/v1/speak
"""


def live(
    rtmp: Annotated[Optional[str], typer.Option(help="Stream to this RTMP URL (flv, H.264 + AAC); reconnects with backoff.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also record to this file (.mp4/.mkv).")] = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Speech: a file (repeatable, played in order), - for raw s16le 16 kHz mono PCM on stdin, or mic[:DEVICE].")] = None,
    loop: Annotated[bool, typer.Option(help="Replay the input files forever.")] = False,
    avatar: Annotated[Optional[Path], typer.Option(help="Avatar directory (default: the embedded drawn avatar).")] = None,
    preset: Annotated[str, typer.Option(help="Preset name (low, default, high) or a .toml path.")] = "default",
    size: Annotated[Optional[str], typer.Option(help="Stream size: 360p, 720p, 1080p or WxH.")] = None,
    device: Annotated[str, typer.Option(help="Inference device: auto, cpu or cuda.")] = "auto",
    crossfade_ms: Annotated[int, typer.Option(help="Idle <-> talking crossfade length.")] = 160,
    hangover_ms: Annotated[int, typer.Option(help="Pauses shorter than this do not flip to idle.")] = 400,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (default: run until Ctrl+C).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live panel (for services).")] = False,
    listen: Annotated[Optional[str], typer.Option(help="Serve the ingest API (speak, stream, interrupt, status, metrics) on HOST:PORT, e.g. 127.0.0.1:8765.")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="DHLIVE_API_TOKEN", help="Bearer token for the API (required off loopback).")] = None,
    metrics: Annotated[str, typer.Option(help="Prometheus metrics on HOST:PORT (loopback; port 0 = any free port), or off. `dhlive monitor --pid` finds it.")] = "127.0.0.1:0",
):
    """Stream the avatar live at a fixed frame rate: idle when silent, talking when fed speech."""
    if not rtmp and not output:
        fail("nothing to stream to: give --rtmp URL and/or --output FILE")
    with user_errors():
        _live(rtmp, output, input or [], loop, avatar, preset, size, device, crossfade_ms, hangover_ms, duration, quiet,
              listen, token, metrics)


live.__doc__ = (live.__doc__ or "") + "\n\n" + EXAMPLES


def _live(rtmp, output, inputs, loop, avatar, preset_name, size, device, crossfade_ms, hangover_ms, duration, quiet,
          listen=None, token=None, metrics="127.0.0.1:0"):
    from dataclasses import replace

    from dhlive_cli.compositor import load_avatar
    from dhlive_cli.engine import check_output_path
    from dhlive_cli.errors import InputError
    from dhlive_cli.inference import InferenceOptions, InferencePool
    from dhlive_cli.inputs import FileFeeder, MicFeeder, PcmFeeder
    from dhlive_cli.live import LiveOptions, LiveSession
    from dhlive_cli.presets import load_preset, parse_size
    from dhlive_cli.sinks import EncoderOptions
    from dhlive_cli.timebase import Timebase

    preset = load_preset(preset_name)
    if size:
        w, h = parse_size(size)
        preset = replace(preset, width=w, height=h)
    if rtmp and not rtmp.startswith(("rtmp://", "rtmps://")):
        raise InputError(f"--rtmp {rtmp!r}: must start with rtmp:// or rtmps://")
    outs = []
    if rtmp:
        outs.append((rtmp, "flv"))
    if output:
        check_output_path(output)
        outs.append((str(output), "matroska" if output.suffix.lower() == ".mkv" else "mp4"))
    mics = [i for i in inputs if i == "mic" or i.startswith("mic:")]
    files = [Path(i) for i in inputs if i != "-" and i not in mics]
    use_stdin = "-" in inputs
    if len(mics) > 1:
        raise InputError("--input mic can be given once")
    tb = Timebase(preset.fps)
    pool = InferencePool(None, InferenceOptions(device=device, sessions=preset.inference_sessions,
                                                intra_threads=preset.inference_threads))
    av = load_avatar(avatar, preset.width, preset.height, preset.fps)
    # live: the stream must keep its clock, so x264 never gets slower than veryfast
    enc = EncoderOptions(preset=preset.encoder_preset if preset.encoder_preset in ("ultrafast", "superfast", "veryfast") else "veryfast",
                         crf=preset.crf, threads=preset.encoder_threads, audio_bitrate=preset.audio_bitrate,
                         gop_seconds=min(2.0, preset.gop_seconds))
    session = LiveSession(avatar=av, pool=pool, tb=tb, enc=enc, outputs=outs,
                          opts=LiveOptions(crossfade_ms=crossfade_ms, hangover_ms=hangover_ms))
    feeders = []
    if files:
        feeders.append(FileFeeder(files, session.speech, session.cancel, loop=loop))
    if use_stdin:
        feeders.append(PcmFeeder(sys.stdin.buffer, session.speech, session.cancel))
    mic = MicFeeder(mics[0][4:] or None, session.speech, session.cancel) if mics else None
    if mic:
        feeders.append(mic)

    metrics_server = start_metrics(metrics, session.snapshot, "live")
    server = None
    if listen:
        from dhlive_cli.api import ApiServer

        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise InputError(f"--listen {listen!r}: expected HOST:PORT")
        metrics_text = None
        if metrics_server is not None:  # one exposition: the API's /metrics is the metrics server's
            from prometheus_client import generate_latest

            metrics_text = lambda: generate_latest(metrics_server.registry).decode()  # noqa: E731
        server = ApiServer(session, host=host or "127.0.0.1", port=int(port), token=token, metrics_text=metrics_text)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    t_start = time.monotonic()
    session.start()
    if server:
        try:
            server.start()
        except BaseException:
            session.stop()
            raise
        err_console.print(f"ingest API on {server.url}") if not quiet else None
    for f in feeders:
        f.start()
    try:
        if quiet or not err_console.is_terminal:
            while not stop.wait(0.25):
                if duration is not None and time.monotonic() - t_start >= duration:
                    break
                if all(o.failed for o in session.outputs):
                    break
        else:
            from rich.live import Live

            with Live(_panel(session.snapshot()), console=err_console, refresh_per_second=4, transient=False) as ui:
                while not stop.wait(0.25):
                    ui.update(_panel(session.snapshot()))
                    if duration is not None and time.monotonic() - t_start >= duration:
                        break
                    if all(o.failed for o in session.outputs):
                        break
    finally:
        if server:
            server.stop()
        if metrics_server:
            metrics_server.close()
        if mic:
            mic.stop()
        session.stop()
        for s, h in old.items():
            signal.signal(s, h)
    snap = session.snapshot()
    failed = [o for o in session.outputs if o.failed]
    if failed:
        fail(f"output {failed[0].target} failed: {failed[0].last_error}", 1)
    err_console.print(
        f"stopped: {snap['frames']} frames ({snap['fps']:.2f} fps), late {snap['late_frames']}, "
        f"reconnects {sum(o['reconnects'] for o in snap['outputs'])}")


def _panel(s: dict):
    from rich.table import Table

    t = Table(title="dhlive live", show_header=False, expand=False)
    t.add_row("state", f"[bold]{s['state']}[/]")
    t.add_row("fps", f"{s['fps']:.2f}")
    t.add_row("frame time p50 / p99", f"{s['frame_ms_p50']:.1f} / {s['frame_ms_p99']:.1f} ms")
    t.add_row("late frames", str(s["late_frames"]))
    t.add_row("queued speech", f"{s['queued_speech_s']:.1f} s")
    lat = s.get("latency_ms_median")
    t.add_row("input -> frame latency", "-" if lat is None else f"{lat:.0f} ms (median of last {min(s['latency_samples'], 64)})")
    import psutil

    t.add_row("memory", f"{psutil.Process().memory_info().rss / 2**20:.0f} MB")
    for o in s["outputs"]:
        t.add_row(o["target"], f"{'connected' if o['connected'] else 'DISCONNECTED'}, queue {o['queue_fill']}, "
                               f"reconnects {o['reconnects']}, dropped {o['frames_dropped']}")
    return t
