"""RenderIO: a render's decoder and encoder checked and started before the model and the avatar.

Real ffmpeg children throughout; inputs are tones written in the test's own folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from dhlive_cli.compositor import load_avatar
from dhlive_cli.engine import RenderSession, render_encoder
from dhlive_cli.errors import OutputError
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.inference import InferencePool
from dhlive_cli.presets import load_preset
from dhlive_cli.render_io import RenderIO
from dhlive_cli.sources import FileAudioSource
from tests.conftest import default_sigint, ffprobe_json, killed_on_exit, tone


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _encode(src, dst, codec):
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(src), "-c:a", codec, str(dst)], check=True)


@pytest.mark.parametrize("suffix,rate,channels,hint", [
    ("wav", 44100, 2, (44100, 2)),  # libsndfile's header
    ("flac", 22050, 1, (22050, 1)),
    ("mp3", 24000, 1, (24000, 1)),  # ffmpeg's probe
    ("wav", 96000, 1, None),  # not an AAC rate: the program filter picks one, only the decoder says which
    ("wav", 44100, 4, None),  # four channels are mixed down by ffmpeg's matrix
])
def test_the_program_hint_is_what_the_decoder_then_says(tmp_path, suffix, rate, channels, hint):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(0.5, rate, channels), rate)
    path = wav
    if suffix != "wav":
        path = tmp_path / f"in.{suffix}"
        _encode(wav, path, {"flac": "flac", "mp3": "libmp3lame"}[suffix])
    src = FileAudioSource(path, program="source")
    assert src.program_hint() == hint
    with src:
        fmt = src.program_format()
    if hint is not None:
        assert fmt == hint
    else:
        assert fmt[1] in (1, 2) and fmt != (rate, channels)


def test_stdin_gives_no_hint(tmp_path):
    # stdin a pipe, as `my_tts | dhlive render -` has it (the test runner's /dev/null is refused)
    r, w = os.pipe()
    saved = os.dup(0)
    try:
        os.dup2(r, 0)
        assert FileAudioSource("-", program="source").program_hint() is None
    finally:
        os.dup2(saved, 0)
        for fd in (saved, r, w):
            os.close(fd)


def _io(tmp_path, wav, out, **kw):
    preset = load_preset("low")
    return RenderIO(wav, out, preset.width, preset.height, preset.fps, preset=preset,
                    encoder=render_encoder(preset), **kw), preset


def test_start_runs_both_children_before_anything_else_is_loaded(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(1.0, 44100, 2), 44100)
    out = tmp_path / "out.mp4"
    io, preset = _io(tmp_path, wav, out)
    io.start()
    try:
        assert io.source._proc is not None and _alive(io.source._proc.pid)
        assert io.sink.pids and _alive(io.sink.pids[0])  # the encoder waits for its first frame
        # the picture side comes afterwards and takes the running encoder
        av = load_avatar(None, preset.width, preset.height, preset.fps)
        session = RenderSession(wav, out, avatar=av, pool=InferencePool(None), preset=preset, io=io)
        encoder_pid = io.sink.pids[0]
        result = session.run()
    except BaseException:
        io.abort()
        raise
    assert result.frames == 25 and out.is_file()
    assert result.io_elapsed_s > result.elapsed_s > 0  # the children's span began before run()
    assert not _alive(encoder_pid)
    a = next(s for s in ffprobe_json(out)["streams"] if s["codec_type"] == "audio")
    assert (int(a["sample_rate"]), a["channels"]) == (44100, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.mp4"]


def test_a_wrong_hint_restarts_the_encoder_for_the_decoders_format(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(1.0, 32000, 1), 32000)
    out = tmp_path / "out.mkv"
    io, preset = _io(tmp_path, wav, out)
    io.source.program_hint = lambda: (22050, 2)  # a header that misleads
    io.start()
    first = io.sink.pids[0]
    av = load_avatar(None, preset.width, preset.height, preset.fps)
    session = RenderSession(wav, out, avatar=av, pool=InferencePool(None), preset=preset, io=io)
    result = session.run()
    assert not _alive(first)
    assert (result.audio_rate, result.audio_channels) == (32000, 1)
    a = next(s for s in ffprobe_json(out)["streams"] if s["codec_type"] == "audio")
    assert (int(a["sample_rate"]), a["channels"]) == (32000, 1)
    assert float(ffprobe_json(out)["format"]["duration"]) == pytest.approx(1.0, abs=0.05)


def _input_beside_an_older_output(tmp_path, seconds: float):
    """in.wav (a tone of `seconds` at 16 kHz) and out.mp4 holding what a failed render must leave as it was."""
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(seconds, 16000, 1), 16000)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older render")
    return wav, out


def _assert_only_the_older_output(tmp_path, out) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.mp4"]
    assert out.read_bytes() == b"an older render"


def test_abort_after_start_leaves_no_children_and_no_file(tmp_path):
    wav, out = _input_beside_an_older_output(tmp_path, 1.0)
    io, _ = _io(tmp_path, wav, out)
    io.start()
    pids = [io.source._proc.pid, *io.sink.pids]
    io.abort()
    io.abort()  # idempotent
    assert not any(_alive(p) for p in pids)
    _assert_only_the_older_output(tmp_path, out)


def test_output_type_and_size_are_checked_before_any_child(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(0.5, 16000, 1), 16000)
    with pytest.raises(OutputError, match="unsupported output type"):
        _io(tmp_path, wav, tmp_path / "out.avi")
    io, preset = _io(tmp_path, wav, tmp_path / "out.mp4")
    av = load_avatar(None, 2 * preset.width, 2 * preset.height, preset.fps)
    with pytest.raises(Exception, match="made for"):
        RenderSession(wav, tmp_path / "out.mp4", avatar=av, pool=InferencePool(None), preset=preset, io=io)
    io.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_cli_a_bad_avatar_after_the_children_started_is_one_error_and_leaves_nothing(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(1.0, 16000, 1), 16000)
    out = tmp_path / "out.mp4"
    bad = tmp_path / "avatar"
    bad.mkdir()
    (bad / "avatar.toml").write_text('kind = "hologram"\n')
    before = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(wav), "-o", str(out), "--avatar", str(bad),
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "hologram" in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["avatar", "in.wav"]
    # no ffmpeg child of that render (its decoder reads in.wav, its encoder writes beside out.mp4) outlives it
    for pid in {int(p) for p in os.listdir("/proc") if p.isdigit()} - before:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert str(tmp_path).encode() not in f.read()
        except (FileNotFoundError, ProcessLookupError):
            pass


def test_render_metrics_are_served_from_the_first_second_and_gone_at_the_end(tmp_path):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from dhlive_cli.metrics import discovery_path, read_discovery
    from tests.test_batch import wait_for

    wav = tmp_path / "long.wav"
    sf.write(wav, tone(60.0, 16000, 1), 16000)  # at 360p a minute renders for seconds even on a fast machine
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(wav), "-o", str(out), "--size", "360p",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with killed_on_exit(proc):
        rec = wait_for(lambda: read_discovery(proc.pid), 120, proc, "the render's metrics discovery file")

        def frames():
            with urllib.request.urlopen(rec["metrics_url"], timeout=30) as r:
                fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
            return fams["dhlive_frames"].samples[0].value if "dhlive_frames" in fams else None

        assert wait_for(frames, 60, proc, "a frame count on /metrics") >= 0
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert not discovery_path(proc.pid).exists()


def test_deferred_metrics_start_late_or_never(tmp_path):
    import threading

    from dhlive_cli.commands.common import DeferredMetrics

    started = threading.Event()
    closed = []

    class Server:
        def close(self):
            closed.append(True)

    def start():
        started.set()
        return Server()

    late = DeferredMetrics(start, 0.05)
    assert started.wait(60)
    late.close()
    assert closed == [True]
    calls = []
    never = DeferredMetrics(lambda: calls.append(1), 60.0)
    never.close()
    never._timer.join(60)
    assert calls == [] and never.server is None


# ------------------------------------------------------------------ interrupts during start-up

def _children_in(folder) -> list[int]:
    """Processes whose command line names `folder` (a render's ffmpeg children read and write there)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if str(folder).encode() in f.read() and _alive(int(p)):
                    found.append(int(p))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def test_a_signal_inside_interrupts_held_is_raised_once_the_block_is_done(ctrl_c_raises):
    import signal

    from dhlive_cli.interrupts import interrupts_held

    before = signal.getsignal(signal.SIGINT)
    done = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a call the handler could have cut
            done = True
    assert done
    assert signal.getsignal(signal.SIGINT) is before
    with interrupts_held():  # nothing arrived: nothing raised
        pass


def _interrupt_when_forked():
    """A profile hook that sends this process SIGINT the moment subprocess has forked a child:
    Python then raises KeyboardInterrupt inside Popen's constructor (where a real Ctrl+C that
    lands then raises it), before the caller has the Popen."""
    import signal

    def hook(frame, event, arg):
        if event == "c_return" and getattr(arg, "__name__", "") == "fork_exec":
            sys.setprofile(None)
            os.kill(os.getpid(), signal.SIGINT)

    return hook


@pytest.mark.parametrize("end", ["encoder", "decoder"])
def test_ctrl_c_as_a_child_is_forked_leaves_it_known_and_stopped(tmp_path, end, ctrl_c_raises):
    from dhlive_cli.sinks import FfmpegSink

    wav = tmp_path / "in.wav"
    sf.write(wav, tone(2.0, 16000, 1), 16000)
    out = tmp_path / "out.mp4"
    child = FfmpegSink(str(out), 64, 64, 25) if end == "encoder" else FileAudioSource(wav, program="source")
    sys.setprofile(_interrupt_when_forked())
    try:
        with pytest.raises(KeyboardInterrupt):
            child.open()
    finally:
        sys.setprofile(None)
    pids = child.pids if end == "encoder" else [child._proc.pid] if child._proc else []
    assert pids, "the interrupt came before the child was known to its owner"
    child.abort() if end == "encoder" else child.close()
    assert not any(_alive(p) for p in pids)
    assert _children_in(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def _ctrl_c_at_first_call_into(word: str) -> str:
    """Python lines that make the interpreter send itself a real SIGINT the first time it calls a
    function whose file's path holds `word` (a module being imported runs its code that way)."""
    return f"""
import os, signal, sys
def _hook(frame, event, arg):
    if event == "call" and {word!r} in frame.f_code.co_filename:
        sys.setprofile(None)
        os.kill(os.getpid(), signal.SIGINT)
sys.setprofile(_hook)
"""


def test_ctrl_c_during_the_onnxruntime_import_is_an_interrupt_after_it(tmp_path):
    # in a fresh interpreter: this one has imported onnxruntime already
    script = _ctrl_c_at_first_call_into("onnxruntime") + """
from dhlive_cli.inference import _import_ort
try:
    _import_ort()
    print("no interrupt")
except KeyboardInterrupt:
    print("interrupted", "onnxruntime.capi._pybind_state" in sys.modules)
except BaseException as e:
    print(type(e).__name__, e)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       preexec_fn=default_sigint)
    # the import is not cut in half (a cut one can come out as ImportError, read as "not installed")
    assert r.stdout.split() == ["interrupted", "True"], r.stdout + r.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_cli_a_signal_as_the_encoder_starts_stops_everything(tmp_path, sig):
    import signal

    wav, out = _input_beside_an_older_output(tmp_path, 5.0)
    proc = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(wav), "-o", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with killed_on_exit(proc):
        # the moment the second child (the encoder) appears: start-up is at its busiest
        while proc.poll() is None and len(_children_in(tmp_path)) < 2:
            pass
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 130 and lines == ["interrupted: unfinished output removed"], (proc.returncode, err)
    assert _children_in(tmp_path) == []
    _assert_only_the_older_output(tmp_path, out)


@pytest.mark.parametrize("port", ["in use", "99999"])
def test_cli_a_metrics_port_it_cannot_serve_is_one_error_before_any_output(tmp_path, port):
    import socket

    wav, out = _input_beside_an_older_output(tmp_path, 1.0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        spec = f"127.0.0.1:{busy.getsockname()[1] if port == 'in use' else port}"
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(wav), "-o", str(out), "--metrics", spec,
                            "--quiet"], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --metrics") and spec in lines[0], r.stderr
    _assert_only_the_older_output(tmp_path, out)
    assert _children_in(tmp_path) == []


@pytest.mark.parametrize("command,defer_s,ready", [
    ("render", 0.05, True),  # a render's default server, started on a timer thread
    ("live", 0.0, True),
    ("render", 0.0, False),  # a render's named port, bound at once: the import waits for a scrape
])
def test_a_metrics_server_is_ready_to_answer_when_monitor_can_find_it(tmp_path, command, defer_s, ready):
    # `dhlive monitor` scrapes with a 0.1-0.5 s timeout and, after a failed scrape, looks the
    # discovery file up again only 5 s later: a first scrape that still had prometheus_client
    # to import (0.05-0.2 s under load) lost the engine figures. In a fresh interpreter: has
    # the server imported it by the time its discovery file is there?
    script = f"""
import os, sys, time
from dhlive_cli.commands.common import start_metrics
from dhlive_cli.metrics import read_discovery
server = start_metrics("127.0.0.1:0", lambda: {{}}, {command!r}, defer_s={defer_s})
while read_discovery(os.getpid()) is None:
    time.sleep(0.01)
print("prometheus_client" in sys.modules)
server.close()
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert r.stdout.split() == [str(ready)], r.stdout + r.stderr


def test_cli_a_second_ctrl_c_while_the_children_are_stopped_leaves_none_behind(tmp_path):
    # the render runs in a fresh interpreter where Ctrl+C is pressed (a real SIGINT to itself)
    # twice: as the model starts loading (both ffmpeg children are running), and again as the
    # encoder is being stopped for the first one
    wav, out = _input_beside_an_older_output(tmp_path, 2.0)
    script = f"""
import os, signal, sys
from dhlive_cli import inference, sinks
from dhlive_cli.cli import main
def pressed(f):
    def first_ctrl_c(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        return f(*a, **k)
    return first_ctrl_c
inference.InferencePool.__init__ = pressed(inference.InferencePool.__init__)
sinks.FfmpegSink.abort = pressed(sinks.FfmpegSink.abort)
sys.argv = ["dhlive", "render", {str(wav)!r}, "-o", {str(out)!r}, "--quiet", "--metrics", "off"]
main()
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    left = _children_in(tmp_path)
    for pid in left:  # an orphan would go on to write the partial file: stopped here, then counted
        os.kill(pid, 9)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 130 and lines == ["interrupted: unfinished output removed"], (r.returncode, r.stderr)
    assert left == []
    _assert_only_the_older_output(tmp_path, out)


def test_ctrl_c_while_the_cli_is_still_loading_is_one_line_and_130(tmp_path):
    # a fresh interpreter runs `python -m dhlive_cli render ...` and gets a real SIGINT the
    # moment Typer's first module starts loading
    script = """
import runpy, sys
sys.argv = ["dhlive", "render", "in.wav", "-o", "out.mp4"]
""" + _ctrl_c_at_first_call_into("typer") + """
runpy.run_module("dhlive_cli", run_name="__main__")
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       preexec_fn=default_sigint)
    assert (r.returncode, r.stderr) == (130, "interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_names_with_a_colon_are_files_not_protocols(tmp_path):
    """ffmpeg reads "talk:1.wav" as protocol "talk" (Protocol not found); such names, relative to
    the working folder, render like any other, in and out."""
    from dhlive_cli.ffmpeg_bin import file_arg

    assert file_arg("talk:1.wav") == "./talk:1.wav"
    assert file_arg(".out:1.mp4.dhlive-partial.mp4") == "./.out:1.mp4.dhlive-partial.mp4"
    assert file_arg("/abs/a:b.mp4") == "/abs/a:b.mp4" and file_arg("dir/a:b.wav") == "dir/a:b.wav"
    sf.write(tmp_path / "talk:1.wav", tone(1.0, 16000, 1), 16000)
    _encode(tmp_path / "talk:1.wav", tmp_path / "song:2.mp3", "libmp3lame")
    for src, out in (("talk:1.wav", "out:1.mp4"), ("song:2.mp3", "out:2.mkv")):
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", src, "-o", out, "--size", "360p", "--json",
                            "--metrics", "off"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / out).is_file() and ffprobe_json(tmp_path / out)["format"]["duration"]
    # and a live recording (its encoder is started by the session's output, not by the render)
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--input", "talk:1.wav", "-o", "rec:3.mkv",
                        "--duration", "1", "--size", "360p", "--quiet"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300, env=dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"),
                                                           PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    assert r.returncode == 0, r.stderr
    assert float(ffprobe_json(tmp_path / "rec:3.mkv")["format"]["duration"]) >= 0.9
    # a recording named "pipe:1" is that file, not stdout (live wrote it to stdout)
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--input", "talk:1.wav", "-o", "pipe:1",
                        "--duration", "1", "--size", "360p", "--quiet"], capture_output=True, cwd=tmp_path,
                       timeout=300, env=dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"),
                                             PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    assert r.returncode == 0 and r.stdout == b"", r.stderr
    assert float(ffprobe_json(tmp_path / "pipe:1")["format"]["duration"]) >= 0.9
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "run") == [
        "out:1.mp4", "out:2.mkv", "pipe:1", "rec:3.mkv", "song:2.mp3", "talk:1.wav"]


def test_a_stop_while_the_output_is_being_set_up_leaves_no_work_file(tmp_path, monkeypatch):
    """A hang-up (or Ctrl+C) that lands in RenderIO's constructor just after it made the work
    file: the caller never got the object to abort, and the file stayed (seen once in a loaded
    suite run, `test_a_hang_up_during_a_render_leaves_no_work_file`). The constructor removes it."""
    import dhlive_cli.render_io as render_io

    wav = tmp_path / "in.wav"
    sf.write(wav, tone(1.0, 16000, 1), 16000)

    def hang_up(*_a, **_k):
        raise KeyboardInterrupt  # where SIGHUP's handler raises it

    monkeypatch.setattr(render_io, "remove_stale_siblings", hang_up)
    with pytest.raises(KeyboardInterrupt):
        _io(tmp_path, wav, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
