"""`dhlive live`: a fixed-rate stream to RTMP and/or a file, idle when silent, talking when fed."""

from __future__ import annotations

import math
import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from dhlive_cli.commands.common import (err_console, escape_line, exit_quietly_if_reader_gone, fail, logs_through,
                                       parse_fps, start_metrics, user_errors)
from dhlive_cli.interrupts import SignalFlag

EXAMPLES = """
Examples:

  dhlive live --rtmp rtmp://127.0.0.1/live/key --input intro.wav \\
      --input news.mp3

  dhlive live --rtmp rtmp://a.example/live/KEY1 \\
      --rtmp rtmp://b.example/app/KEY2 --input talk.wav

  dhlive live --rtmp rtmp://host/app/key --maxrate 2500k --bufsize 5000k \\
      --input talk.wav

  dhlive live --srt 'srt://host:9000?streamid=KEY' --input talk.wav

  my_tts | dhlive live --input - --rtmp rtmp://host/app/key

  # exactly 1500 frames
  dhlive live --input talk.flac --loop -o record.mp4 --duration 60 --quiet

  dhlive live --input talk.flac --loop --fps 30 --rtmp rtmp://host/app/key

  # Matroska to stdout
  dhlive live --input talk.flac --loop --fps 50 -o - | ffplay -

  dhlive live --input mic --rtmp rtmp://host/app/key

  dhlive live --listen 127.0.0.1:8765 --rtmp rtmp://host/app/key
  curl -X POST --data-binary @hello.wav -H 'Content-Type: audio/wav' \\
      http://127.0.0.1:8765/v1/speak
  # then open http://127.0.0.1:8765/ in a browser: the avatar over WebRTC,
  # its figures, talk buttons

  dhlive live --sessions studio.toml --listen 127.0.0.1:8765 --preset low \\
      --output-dir recordings --media-dir media --allow-rtmp host
  curl -X POST http://127.0.0.1:8765/v1/sessions \\
      -H 'Content-Type: application/json' \\
      -d '{"name": "b", "rtmp": "rtmp://host/app/b", "output": "b.mkv"}'
  curl -X POST --data-binary @hi.wav \\
      http://127.0.0.1:8765/v1/sessions/b/speak
  curl -X DELETE http://127.0.0.1:8765/v1/sessions/b

  DHLIVE_API_TOKEN=$(cat token) dhlive live --listen 0.0.0.0:8765 \\
      --rtmp rtmp://host/app/key

  studio.toml:
    preset = "low"
    [[session]]
    name = "news"
    avatar = "avatars/anna"
    rtmp = "rtmp://host/app/news"
    input = ["news.wav"]
    [[session]]
    name = "shop"
    output = "shop.mp4"
"""


def live(
    rtmp: Annotated[Optional[list[str]], typer.Option(help="Stream to this RTMP URL (flv, H.264 + AAC); repeatable: each target has its own encoder and reconnects with backoff on its own. Shown everywhere as rtmp://host/app/****.")] = None,
    srt: Annotated[Optional[list[str]], typer.Option(help="Stream to this SRT URL (MPEG-TS, H.264 + AAC; caller mode, e.g. srt://host:9000?streamid=KEY); repeatable, reconnects like --rtmp. The query is shown as ****.")] = None,
    output: Annotated[Optional[list[Path]], typer.Option("--output", "-o", help="Also record to this file (.mp4/.mkv); - streams Matroska to stdout. One per session.")] = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Speech: a file (repeatable, played in order), - for speech on stdin (raw s16le 16 kHz mono PCM, or a WAV as TTS tools write it), or mic[:DEVICE].")] = None,
    loop: Annotated[bool, typer.Option(help="Replay the input files forever.")] = False,
    avatar: Annotated[Optional[Path], typer.Option(help="Avatar directory (default: the embedded drawn avatar).")] = None,
    sessions: Annotated[Optional[Path], typer.Option(help="Run several avatars at once: a TOML file of [[session]] tables (name, avatar, rtmp, output, input, loop, size).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="Preset name (low, default, high) or a .toml path.  [default: default]")] = None,
    size: Annotated[Optional[str], typer.Option(help="Stream size: 360p, 720p, 1080p or WxH.")] = None,
    device: Annotated[str, typer.Option(help="Inference and H.264 encoder device: auto (the GPU where it works), cpu or cuda.")] = "auto",
    crossfade_ms: Annotated[int, typer.Option(help="Idle <-> talking crossfade length.")] = 160,
    hangover_ms: Annotated[int, typer.Option(help="Pauses shorter than this do not flip to idle.")] = 400,
    maxrate: Annotated[Optional[str], typer.Option(help="Cap each RTMP stream's video bit rate, e.g. 2500k (capped CRF, for ingest servers that require a maximum); recordings are not capped.")] = None,
    bufsize: Annotated[Optional[str], typer.Option(help="Rate-control buffer for --maxrate, e.g. 5000k  [default: one second of --maxrate]")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds, > 0: exactly round(duration x fps) frames and as much sound, the last 160 ms faded to idle (default: run until Ctrl+C, SIGTERM or SIGHUP).")] = None,
    fps: Annotated[Optional[int], typer.Option(parser=parse_fps, help="Frames per second, a whole number from 1 to 60 (24, 25, 30, 50, 60...; default from the preset).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live panel (for services).")] = False,
    listen: Annotated[Optional[str], typer.Option(help="Serve the ingest API (speak, stream, interrupt, status, metrics, sessions) on HOST:PORT, e.g. 127.0.0.1:8765.")] = None,
    token_file: Annotated[Optional[str], typer.Option(help="Read the API's bearer token from this file (else from $DHLIVE_API_TOKEN). Required off loopback, 16+ characters.")] = None,
    output_dir: Annotated[Optional[Path], typer.Option(help="Grant API clients this folder for recordings: they name new files inside it (default: API sessions write no files).")] = None,
    media_dir: Annotated[Optional[Path], typer.Option(help="Grant API clients this folder for inputs and avatars, by name (default: none).")] = None,
    allow_rtmp: Annotated[Optional[str], typer.Option(help="RTMP hosts API sessions may stream to: HOST[:PORT],... (a HOST alone: port 1935; default: none).")] = None,
    allow_origin: Annotated[Optional[list[str]], typer.Option(help="A browser origin (scheme://host:port) allowed to call the API besides its own (repeatable; default: none).")] = None,
    pixel_budget: Annotated[float, typer.Option(help="API sessions are admitted while all sessions together draw at most this many megapixels per second (width x height x fps).")] = 92.16,
    token: Annotated[Optional[str], typer.Option(hidden=True, help="Refused: a token on the command line shows in `ps`.")] = None,
    metrics: Annotated[str, typer.Option(help="Prometheus metrics on HOST:PORT (loopback; port 0 = any free port), or off. `dhlive monitor --pid` finds it.")] = "127.0.0.1:0",
    max_sessions: Annotated[int, typer.Option(help="Most sessions this process runs at once (the API refuses more).")] = 16,
    max_viewers: Annotated[int, typer.Option(help="Browser previews (WebRTC, the page at / of --listen) per session at once; 0 turns the preview off.")] = 4,
    draw_processes: Annotated[Optional[int], typer.Option(help="While more sessions run than the machine has cores, draw the further ones in this many processes [default: two per core, no more than those sessions can use]; 0 draws every session in this process.")] = None,
):
    """Stream the avatar live at a fixed frame rate: idle when silent, talking when fed speech."""
    for name, v in (("--crossfade-ms", crossfade_ms), ("--hangover-ms", hangover_ms)):
        if not 0 <= v <= 5000:  # as a sessions file's crossfade_ms / hangover_ms (session_spec)
            fail(f"{name} {v}: a number of milliseconds from 0 to 5000")
    if output and len(output) > 1:  # one recording per session (more: one [[session]] each in --sessions FILE)
        fail(f"--output was given {len(output)} times: a session records to one file (for more, use --sessions FILE)")
    output = output[0] if output else None
    if output is not None and str(output) == "-":
        from dhlive_cli.errors import OutputError
        from dhlive_cli.outpaths import check_output_descriptor

        try:  # open at start (not closed), and not stderr's file: dhlive's own lines would land in the video
            check_output_descriptor(1, "-o -")
        except OutputError as e:
            fail(str(e))
    if sessions is not None and (rtmp or srt or output or input or avatar or loop):
        fail("--sessions FILE gives each session its avatar, inputs and outputs: "
             "do not combine it with --rtmp, --srt, --output, --input, --avatar or --loop")
    if sessions is None and not rtmp and not srt and not output and not (listen and not input):
        fail("nothing to stream to: give --rtmp URL, --srt URL and/or --output FILE, --sessions FILE, "
             "or --listen HOST:PORT to create sessions through the API")
    if any(not u.startswith("srt://") or len(set(srt)) < len(srt) for u in srt or ()):
        fail("--srt must start with srt:// and name each target once")  # not echoed: it may hold a passphrase
    if not 1 <= max_sessions <= 256:
        fail("--max-sessions must be 1..256")
    if not 0 <= max_viewers <= 16:
        fail("--max-viewers must be 0..16")
    if draw_processes is not None and not 0 <= draw_processes <= 64:
        fail("--draw-processes must be 0..64")
    if token is not None:
        fail("--token would show the secret to every user of this machine in `ps`: put it in the "
             "DHLIVE_API_TOKEN environment variable or in a file given with --token-file")
    if not (pixel_budget > 0 and pixel_budget < 1e6):  # also refuses nan
        fail("--pixel-budget must be a number of megapixels per second above 0")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        fail("--duration must be a number of seconds above 0 (leave it out to run until stopped)")
    for name, v in (("--maxrate", maxrate), ("--bufsize", bufsize)):
        if v is not None and not _BITRATE_RE.fullmatch(v):
            fail(f"{name} {v[:20]!r}: expected a bit rate such as 2500k, 2.5M or 800000 (bits per second)")
    if bufsize and not maxrate:
        fail("--bufsize is the buffer of --maxrate: give --maxrate too")
    if fps is not None and not 1 <= fps <= 60:
        fail(f"--fps {fps}: use a whole number of frames per second from 1 to 60")
    with user_errors():
        grants = _grants(listen, output_dir, media_dir, allow_rtmp)
        _live(rtmp, output, input or [], loop, avatar, preset, size, device, crossfade_ms, hangover_ms, duration, quiet,
              listen, None, metrics, sessions, max_sessions, token_file=token_file, grants=grants,
              allow_origin=allow_origin or [], pixel_budget=pixel_budget, max_viewers=max_viewers,
              draw_processes=draw_processes,
              maxrate=maxrate, bufsize=bufsize, srt=srt or [], fps=fps)


_BITRATE_RE = re.compile(r"(?!0+(?:\.0*)?[kKmM]?$)\d{1,9}(?:\.\d{1,3})?[kKmM]?")

live.__doc__ = (live.__doc__ or "") + "\n\n" + EXAMPLES


def _grants(listen, output_dir, media_dir, allow_rtmp):
    from dhlive_cli.errors import InputError
    from dhlive_cli.grants import Grants

    if not listen and (output_dir or media_dir or allow_rtmp):
        raise InputError("--output-dir, --media-dir and --allow-rtmp grant API clients: they need --listen")
    return Grants.from_options(output_dir, media_dir, allow_rtmp)


def _live(rtmp, output, inputs, loop, avatar, preset_name, size, device, crossfade_ms, hangover_ms, duration, quiet,
          listen=None, token=None, metrics="127.0.0.1:0", sessions_file=None, max_sessions=16, *, token_file=None,
          grants=None, allow_origin=(), pixel_budget=92.16, max_viewers=4, maxrate=None, bufsize=None, srt=(), fps=None,
          draw_processes=None):
    from dataclasses import replace

    from dhlive_cli.errors import InputError
    from dhlive_cli.hwenc import pick_video_codec
    from dhlive_cli.inference import InferenceOptions, InferencePool
    from dhlive_cli.memtune import tune_allocator
    from dhlive_cli.presets import load_preset, parse_size
    from dhlive_cli.session_spec import SessionSpec, load_sessions_file
    from dhlive_cli.studio import Studio, live_encoder

    tune_allocator()  # runs for days, threads and sessions come and go: memory must go back, not pile up
    if sessions_file is not None:
        top, specs = load_sessions_file(sessions_file)
        preset_name = preset_name or top.get("preset")
        size = size or top.get("size")
    else:
        rtmp = list(rtmp or ())
        if any(not u.startswith(("rtmp://", "rtmps://")) for u in rtmp):
            raise InputError("--rtmp must start with rtmp:// or rtmps://")  # not echoed: it may hold a key
        _distinct_targets(rtmp)
        if srt:
            _check_srt()
        mics = [i for i in inputs if i == "mic" or i.startswith("mic:")]
        if len(mics) > 1:
            raise InputError("--input mic can be given once")
        if inputs.count("-") > 1:
            raise InputError("--input - can be given once")
        specs = [SessionSpec(name="main", avatar=avatar, rtmp=tuple(rtmp), srt=tuple(srt), output=output,
                             inputs=tuple(inputs), loop=loop, crossfade_ms=crossfade_ms,
                             hangover_ms=hangover_ms)] if (rtmp or srt or output) else []
    preset = load_preset(preset_name or "default")
    if size:
        w, h = parse_size(size)
        preset = replace(preset, width=w, height=h)
    if fps is not None:
        preset = replace(preset, fps=fps)
    # --duration is counted in frames of the session clock, so a recording holds exactly that
    # many frames (and samples) whatever the machine's load; the wall clock is only a backstop
    stop_after = max(1, round(duration * preset.fps)) if duration is not None else None
    if listen:
        import os

        from dhlive_cli.api.guards import check_origins, check_token, load_token

        host, _, port = listen.rpartition(":")
        if host.startswith("[") and host.endswith("]"):  # an IPv6 address as URLs write it: [::1]:8765
            host = host[1:-1]
        if not port.isdigit() or int(port) > 65535 or "[" in host or "]" in host:
            raise InputError(f"--listen {listen!r}: expected HOST:PORT (an IPv6 address in brackets: [::1]:8765)")
        # the token and origins are checked before anything starts: a refused start changes no file
        token = check_token(load_token(token_file, os.environ.get("DHLIVE_API_TOKEN")) if token is None else token,
                            host or "127.0.0.1")
        origins = check_origins(allow_origin)
    elif token_file or allow_origin:
        raise InputError("--token-file and --allow-origin are for the API: they need --listen")
    pool = InferencePool(None, InferenceOptions(device=device, sessions=preset.inference_sessions,
                                                intra_threads=preset.inference_threads))
    # several sessions from a file, or any number through the API: one x264 thread each
    many = sessions_file is not None and len(specs) > 1 or (listen is not None and sessions_file is None and not specs)
    enc = replace(live_encoder(preset, sessions=max_sessions if many else 1, codec=pick_video_codec(device)),
                  maxrate=maxrate, bufsize=bufsize)
    # without the API no session is added later: the sessions given are all there will be (the
    # default number of draw processes counts on it, see Studio)
    studio = Studio(pool, preset, enc, max_sessions=max(max_sessions, len(specs)) if listen else len(specs),
                    stdin=sys.stdin.buffer if sys.stdin is not None else None,  # None: started with it closed
                    grants=grants, pixel_budget=int(pixel_budget * 1e6), max_viewers=max_viewers,
                    stop_after_frames=stop_after, draw_processes=draw_processes)
    single = sessions_file is None and len(specs) == 1
    snapshot = studio.snapshot
    metrics_server = None
    server = None
    stop = SignalFlag()  # not a threading.Event: its set() could deadlock in a handler (interrupts)

    def on_signal(signum, frame):
        stop.set()

    # SIGHUP (the terminal closed, or a service manager's "reload") ends the stream as SIGTERM
    # does: fade out, finish every recording, exit 0. Sessions are not reloaded from their file.
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        # ports first: a port in use must fail before any session has started an encoder (and
        # left a recording behind); the API itself opens once its sessions exist
        metrics_server = start_metrics(metrics, snapshot, "live")
        if listen:
            from dhlive_cli.api import check_port_free

            check_port_free(host or "127.0.0.1", int(port))
        studio.create_many(specs)  # all validated (outputs, avatars, sizes) before any starts
        if listen:
            from dhlive_cli.api import ApiServer

            metrics_text = None
            if metrics_server is not None:  # one exposition: the API's /metrics is the metrics server's
                metrics_text = metrics_server.text
            server = ApiServer(studio.sessions, host=host or "127.0.0.1", port=int(port), token=token,
                               metrics_text=metrics_text, studio=studio, allow_origins=tuple(origins))
            server.start()
            if not quiet:
                err_console.print(f"ingest API on {server.url}")

        # --duration counts from here: models, avatars and encoders are up, the stream runs
        t_start = time.monotonic()

        operator = [studio.get(sp.name) for sp in specs]

        def keep_going() -> bool:
            if duration is not None:
                if operator and all(s is None or s.finished for s in operator):
                    return False  # every operator session has emitted its frames
                if time.monotonic() - t_start >= duration + (30.0 if operator else 0.0):
                    return False
            for name, why in studio.supervise():
                if single and name == specs[0].name:
                    # the command line's session cannot stream any more: neither can we, even
                    # with API sessions still running (the error line below says why)
                    return False
                err_console.print(f"session {name} stopped: {escape_line(why)}")
            return not (single and not studio.sessions())

        if quiet or not err_console.is_terminal:
            while not stop.wait(0.25) and keep_going():
                pass
        else:
            from rich.live import Live

            # log lines (reconnects, warnings) print above the panel instead of across it
            with logs_through(err_console), Live(_panel(snapshot()), console=err_console.console, refresh_per_second=4,
                                                 transient=False) as ui:
                while not stop.wait(0.25) and keep_going():
                    ui.update(_panel(snapshot()))
    finally:
        if server:
            server.stop()
        if metrics_server:
            metrics_server.close()
        running = studio.sessions()
        studio.close()
        last = {n: s.snapshot() for n, s in running.items()}  # after the flush: every frame counted
        for s, h in old.items():
            signal.signal(s, h)
        stop.close()
    why = next((w for n, w in studio.removed if single and n == specs[0].name), None)
    if why is not None:
        exit_quietly_if_reader_gone(why)  # `live -o - | head -c 1000`: as render does
        fail(escape_line(why), 1)
    for name, snap in last.items():
        err_console.print(
            f"stopped{'' if len(last) == 1 else ' ' + name}: {snap['frames']} frames ({snap['fps']:.3f} fps), "
            f"late {snap['late_frames']}, dropped {sum(o['frames_dropped'] for o in snap['outputs'])}, "
            f"reconnects {sum(o['reconnects'] for o in snap['outputs'])}")
    if duration is not None:
        # a timed run is a job with a result: a target that refused the stream did not get it
        refused = [o for snap in last.values() for o in snap["outputs"] if o.get("publish_refusals")]
        if refused:
            fail("; ".join(f"{o['target']}: publish refused {o['publish_refusals']} time(s)"
                           f"{'' if o['refused'] else ', then accepted'} ({o['error']})" for o in refused), 1)
        # and one that was down the whole run (no server, wrong host) got nothing either
        never = [o for snap in last.values() for o in snap["outputs"]
                 if not o.get("went_on_air", True) and not o.get("publish_refusals")]
        if never:
            fail("; ".join(f"{o['target']}: never went on air ({o['error'] or 'no connection'})" for o in never), 1)


def _check_srt() -> None:
    """DependencyError when the ffmpeg dhlive runs was built without the SRT protocol (libsrt):
    every attempt would fail the same way, so say it once, before anything starts."""
    import subprocess

    from dhlive_cli.errors import DependencyError
    from dhlive_cli.ffmpeg_bin import ffmpeg_path

    ff = ffmpeg_path()
    out = subprocess.run([ff, "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=30).stdout
    if "srt" not in out.split("Output:", 1)[-1].split():
        raise DependencyError(f"--srt: {ff} has no SRT output (built without libsrt); install Debian's ffmpeg "
                              "or set DHLIVE_FFMPEG to one that has it")


def _distinct_targets(urls: list[str]) -> None:
    """InputError when two --rtmp URLs name the same stream (compared as scheme, host, port,
    path): the server would refuse the second as "already publishing"."""
    from dhlive_cli.errors import InputError
    from dhlive_cli.grants import rtmp_key
    from dhlive_cli.redact import redact_url

    seen = set()
    for u in urls:
        try:
            key = rtmp_key(u)
        except InputError:
            raise InputError(f"--rtmp {redact_url(u)}: expected rtmp[s]://HOST[:PORT]/APP/KEY "
                             "with a plain port number") from None
        if key in seen:
            raise InputError(f"--rtmp {redact_url(u)} is given twice")
        seen.add(key)


def _panel(s: dict):
    from rich.table import Table

    import psutil

    sessions = s.get("sessions") or []
    if len(sessions) > 1 or not sessions:
        t = Table(title=f"dhlive live: {len(sessions)} sessions, memory {psutil.Process().memory_info().rss / 2**20:.0f} MB, "
                        f"inference calls/tick {s['clock']['inference_calls_per_tick']:.2f}")
        for col in ("session", "state", "fps", "p50 / p99 ms", "late", "queued", "outputs"):
            t.add_column(col)
        for x in sessions:
            outs = ", ".join(("ok" if o["connected"] else "REFUSED" if o.get("refused") else "DOWN")
                             + f" r{o['reconnects']}" for o in x["outputs"])
            t.add_row(x["session"], x["state"], f"{x['fps']:.2f}", f"{x['frame_ms_p50']:.1f} / {x['frame_ms_p99']:.1f}",
                      str(x["late_frames"]), f"{x['queued_speech_s']:.1f} s", outs)
        return t
    s = sessions[0]
    t = Table(title="dhlive live", show_header=False, expand=False)
    t.add_row("state", f"[bold]{s['state']}[/]")
    t.add_row("fps", f"{s['fps']:.2f}")
    t.add_row("frame time p50 / p99", f"{s['frame_ms_p50']:.1f} / {s['frame_ms_p99']:.1f} ms")
    t.add_row("late frames", str(s["late_frames"]))
    t.add_row("queued speech", f"{s['queued_speech_s']:.1f} s")
    lat = s.get("latency_ms_median")
    t.add_row("input -> frame latency", "-" if lat is None else f"{lat:.0f} ms (median of last {min(s['latency_samples'], 64)})")
    t.add_row("memory", f"{psutil.Process().memory_info().rss / 2**20:.0f} MB")
    for o in s["outputs"]:
        state = "connected" if o["connected"] else "PUBLISH REFUSED" if o.get("refused") else "DISCONNECTED"
        t.add_row(o["target"], f"{state}, queue {o['queue_fill']}, "
                               f"reconnects {o['reconnects']}, dropped {o['frames_dropped']}")
    return t
