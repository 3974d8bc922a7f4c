"""Where a finished output goes when the output path is not a plain file name: a FIFO or a
device is written in place (never replaced by a regular file: as root, `-o /dev/null` once
replaced the system's /dev/null), and a symbolic link stays a link, the file it leads to being
the one replaced. For `lipsync` (written by dhlive itself) and `render` (written by ffmpeg)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "presets" / "samples" / "hello.flac"


def dhlive(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "dhlive_cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _read_fifo(path: Path, got: list) -> threading.Thread:
    def run():
        with open(path, "rb") as f:
            got.append(f.read())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("name", ["cues.json", "out.mkv", "out.mp4"])
def test_a_fifo_is_written_in_place(tmp_path, name):
    """lipsync's cues, a Matroska render and an MP4 render (fragmented: a FIFO cannot seek back
    to the front for the index; the muxer failed there with a cut-off message)."""
    command = "lipsync" if name.endswith(".json") else "render"
    fifo = tmp_path / name
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    extra = ["-f", "rhubarb-json"] if command == "lipsync" else ["--size", "160x90"]
    r = dhlive(command, SAMPLE, "-o", fifo, *extra)
    reader.join(60)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    data = got[0] if got else b""
    if name.endswith(".json"):
        assert b'"mouthCues"' in data
    elif name.endswith(".mkv"):
        assert data[:4] == b"\x1a\x45\xdf\xa3"  # Matroska
    else:
        assert data[4:8] == b"ftyp" and b"moof" in data  # fragmented MP4
    assert sorted(p.name for p in tmp_path.iterdir()) == [fifo.name]  # no partial file left


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_stays_a_device(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the null device, under another name
    r = dhlive("lipsync", SAMPLE, "-o", null, "-f", "rhubarb-json")
    assert r.returncode == 0, r.stderr
    st = os.lstat(null)
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


@pytest.mark.parametrize("command", ["lipsync", "render"])
def test_a_symlink_stays_a_link_and_its_target_is_replaced(tmp_path, command):
    elsewhere = tmp_path / "store"
    elsewhere.mkdir()
    name = "cues.json" if command == "lipsync" else "out.mp4"
    target = elsewhere / name
    target.write_bytes(b"old")
    link = tmp_path / name
    link.symlink_to(target)
    extra = ["-f", "rhubarb-json"] if command == "lipsync" else ["--size", "160x90"]
    r = dhlive(command, SAMPLE, "-o", link, *extra)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    data = target.read_bytes()
    assert (b'"mouthCues"' in data) if command == "lipsync" else data[4:8] == b"ftyp"
    assert sorted(p.name for p in elsewhere.iterdir()) == [name]  # the partial file was renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "store"])


def _frames(data: bytes, tmp_path: Path) -> dict:
    """Decoded frame counts per stream type of a container given as bytes (ffprobe, real decode)."""
    f = tmp_path / "probe.bin"
    f.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames",
                          "-of", "csv=p=0", str(f)], capture_output=True, text=True, timeout=60).stdout
    return {t: int(n) for t, n in (line.split(",") for line in out.split())}


@pytest.mark.parametrize("how", ["/dev/stdout", "/dev/fd/1", "link"])
@pytest.mark.parametrize("command", ["render", "live"])
def test_a_name_of_our_standard_output_is_our_standard_output(tmp_path, command, how):
    """`-o /dev/stdout` (or /dev/fd/1, or a link to it) into a pipe: the encoder child once
    opened that name itself and so wrote into its own stdout, /dev/null -- exit 0, video lost."""
    name = how
    if how == "link":
        name = tmp_path / "out.mkv"
        name.symlink_to("/dev/stdout")
    args = (["render", SAMPLE] if command == "render" else ["live", "--input", SAMPLE, "--duration", "2"])
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", *map(str, args), "-o", str(name), "--size", "160x90",
                        "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr
    got = _frames(r.stdout, tmp_path)
    assert got.get("video", 0) >= (50 if command == "live" else 25) and got.get("audio", 0) > 0, (got, r.stderr[-500:])
    if how == "link":
        assert name.is_symlink() and os.readlink(name) == "/dev/stdout"


def test_a_render_to_dev_stdout_redirected_to_a_file_fills_that_file(tmp_path):
    out = tmp_path / "out.mp4"
    with open(out, "wb") as f:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(SAMPLE), "-o", "/dev/stdout",
                            "--size", "160x90", "--quiet"], cwd=ROOT, stdout=f, stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _frames(out.read_bytes(), tmp_path)["video"] >= 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "probe.bin"]  # no partial file left


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [("--version",), ("--help",), ("render", SAMPLE, "-o", "{tmp}/v.mp4", "--json", "-q",
                                                                  "--size", "160x90")])
def test_standard_output_on_a_full_disk_is_one_error_line(tmp_path, args):
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", *args], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: No space left on device"], r.stderr


def test_lipsync_to_a_closed_standard_output_is_one_error_line():
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli lipsync '{SAMPLE}' -o - -f rhubarb-json >&-"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: -o -: standard output is closed"], r.stderr


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("render", "--help"), ("render",), ("avatar",)])
def test_help_and_version_to_a_closed_standard_output_are_one_error_line(args):
    """Started with stdout closed, Python leaves sys.stdout None and Click printed the help into
    nothing, exit 0: now one line and exit 2, as `ls --help >&-` does."""
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli {' '.join(args)} >&-"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == ["error: standard output is closed"], r.stderr


@pytest.mark.parametrize("cmd", [
    "render {sample} -o - --size 160x90",
    "live --input {sample} -o - --duration 1 --size 160x90",
    "avatar prepare {photo} -o {tmp}/av --json",
    "batch {tmp}/jobs.csv --out-dir {tmp}/out --json",
    "monitor --pid {pid} --once",
    "monitor --pid {pid} --once --json --csv {tmp}/m.csv",
])
def test_a_command_whose_output_is_stdout_refuses_a_closed_one_before_working(tmp_path, cmd):
    """What would be written to a closed stdout is refused up front (exit 2, one line, nothing
    written): avatar prepare, batch and monitor did all their work and then failed, live -o -
    exited 0 with the video lost, render -o - failed in the encoder."""
    photo = tmp_path / "face.png"
    import cv2
    import skimage.data

    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    (tmp_path / "jobs.csv").write_text(f"input,output\n{SAMPLE},a.mp4\n")
    line = cmd.format(sample=SAMPLE, photo=photo, tmp=tmp_path, pid=os.getpid())
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli {line} >&-"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    what = {"render": "-o -", "live": "-o -", "monitor": "monitor"}.get(cmd.split()[0], "--json")
    what = "--json" if "--once --json" in cmd else what
    assert r.stderr.strip().splitlines() == [f"error: {what}: standard output is closed"], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png", "jobs.csv"]


def test_monitor_with_stdout_closed_writes_its_csv(tmp_path):
    """`monitor --csv FILE >&-` (a monitor left in the background) has somewhere to write: it
    samples into the file and prints nothing, where it was refused like a monitor printing to stdout."""
    csv_path = tmp_path / "m.csv"
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli monitor --pid {os.getpid()} --interval 0.2 "
                        f"--once --csv '{csv_path}' >&-"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = csv_path.read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith("timestamp,elapsed_s,rss_mb,"), rows
    assert float(rows[1].split(",")[2]) > 0, rows


def test_monitor_csv_on_stdout_is_the_only_thing_there(tmp_path):
    """`--csv /dev/stdout`: stdout carries the CSV alone (the plain sample lines were mixed into
    it); with stdout closed it is refused (the samples went to /dev/null and the exit was 0), and
    beside --json, which writes there too, it is refused."""
    base = f"'{sys.executable}' -m dhlive_cli monitor --pid {os.getpid()} --interval 0.2 --once"
    r = subprocess.run(["bash", "-c", f"{base} --csv /dev/stdout"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = r.stdout.splitlines()
    assert len(rows) == 2 and rows[0].startswith("timestamp,elapsed_s,rss_mb,") and rows[1].count(",") == rows[0].count(","), rows
    for extra, msg in ((" --csv /dev/stdout >&-", "--csv /dev/stdout: standard output is closed"),
                       (" --csv /dev/fd/1 >&-", "--csv /dev/fd/1: standard output is closed"),
                       (" --json --csv /dev/stdout", "--csv /dev/stdout and --json both write to standard output")):
        r = subprocess.run(["bash", "-c", base + extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith(f"error: {msg}") and len(r.stderr.splitlines()) == 1, (extra, r.stderr)
        assert r.stdout == "", r.stdout


def test_a_render_with_stdout_and_stderr_closed_renders(tmp_path):
    """Descriptors 0-2 closed at start: the next pipe the process made took number 2 and its
    ffmpeg child was handed the wrong one (no audio stream, exit 2); /dev/null fills them now."""
    out = tmp_path / "v.mp4"
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli render '{SAMPLE}' -o '{out}' --size 160x90 "
                        "--metrics off <&- >&- 2>&-"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0
    assert out.read_bytes()[4:8] == b"ftyp"


def test_a_closed_stdin_is_named_as_closed(tmp_path):
    """The decoder of `-` found descriptor 0 closed ('Bad file descriptor'; then, with /dev/null
    put there and inherited, ffmpeg's 'Invalid data found'): a closed stdin is said to be closed
    before any child starts."""
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli lipsync - -o '{tmp_path}/x.tsv' <&-"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: -: standard input is closed"), r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_render_with_standard_output_closed_still_renders(tmp_path):
    """Only what is asked for on stdout fails: a render's report goes to stderr."""
    out = tmp_path / "v.mp4"
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli render '{SAMPLE}' -o '{out}' --size 160x90 "
                        "--metrics off >&-"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("wrote ") and out.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_sigterm_stops_lipsync_like_ctrl_c(tmp_path, to):
    """SIGTERM (a service manager's stop) ends lipsync as Ctrl+C does: exit 130, one line, no
    output and no partial file, no decoder left running (it was killed by the signal before).
    The line says the output was removed only where there was a file to remove."""
    import psutil

    out = tmp_path / "cues.json" if to == "file" else "-"
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "lipsync", "-", "-o", out, "-f", "rhubarb-json"],
                         cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        p.stdin.write(SAMPLE.read_bytes())  # the speech arrives, the stream stays open: lipsync waits for more
        p.stdin.flush()
        me = psutil.Process(p.pid)
        deadline = 120.0
        import time

        t0 = time.monotonic()
        while not any(c.name() == "ffmpeg" for c in me.children()):
            assert time.monotonic() - t0 < deadline, "no decoder started"
            time.sleep(0.05)
        kids = me.children(recursive=True)
        p.terminate()
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert err.decode().strip().splitlines()[-1] == ("interrupted: unfinished output removed" if to == "file" else "interrupted")
    assert list(tmp_path.iterdir()) == []
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]


def test_lipsync_through_a_link_to_its_input_refuses_and_keeps_the_input(tmp_path):
    speech = tmp_path / "in.flac"
    speech.write_bytes(SAMPLE.read_bytes())
    link = tmp_path / "link.tsv"
    link.symlink_to(speech)
    before = speech.read_bytes()
    r = dhlive("lipsync", speech, "-o", link)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {link}: is the input file; give a different output name"], r.stderr
    assert speech.read_bytes() == before and link.is_symlink()


def test_render_json_with_standard_output_closed_is_refused_before_rendering(tmp_path):
    out = tmp_path / "v.mp4"
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dhlive_cli render '{SAMPLE}' -o '{out}' --json -q >&-"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --json: standard output is closed"], r.stderr
    assert not out.exists()


def test_which_names_are_our_own_descriptors(tmp_path):
    from dhlive_cli.outpaths import names_own_descriptor

    (tmp_path / "fds").symlink_to("/proc/self/fd")
    (tmp_path / "err").symlink_to("/dev/stderr")
    (tmp_path / "hop").symlink_to(tmp_path / "err")
    # "fds/../fd/1": the kernel goes up from where the link leads (/proc/PID), not from tmp_path
    ours = ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/2", f"/proc/{os.getpid()}/fd/0",
            tmp_path / "fds" / "1", tmp_path / "err", tmp_path / "hop", f"{tmp_path}/fds/../fd/1"]
    others = ["/dev/null", "/proc/1/fd/1", "/dev/fd", tmp_path / "out.mp4", SAMPLE, "/proc/self/fd/../fd"]
    assert [p for p in ours if not names_own_descriptor(p)] == []
    assert [p for p in others if names_own_descriptor(p)] == []


def test_a_stop_after_the_render_is_complete_says_it_is_there(tmp_path, monkeypatch):
    """SIGTERM (or Ctrl+C) landing once the finished file has its name -- while the children are
    stopped -- said "interrupted: unfinished output removed" over a complete video. In-process,
    the signal sent to ourselves right after RenderIO.finish()."""
    import signal

    from dhlive_cli.commands.render import _render
    from dhlive_cli.errors import InterruptedAfterOutput
    from dhlive_cli.render_io import RenderIO

    real_finish = RenderIO.finish

    def finish_then_sigterm(self):
        real_finish(self)
        os.kill(os.getpid(), signal.SIGTERM)  # _render's own handler turns it into KeyboardInterrupt

    monkeypatch.setattr(RenderIO, "finish", finish_then_sigterm)
    out = tmp_path / "out.mp4"
    old = signal.getsignal(signal.SIGTERM)
    with pytest.raises(InterruptedAfterOutput, match="out.mp4 was already complete"):
        _render(SAMPLE, out, None, "default", "160x90", None, "cpu", None, False, True)
    assert signal.getsignal(signal.SIGTERM) == old  # the handler is put back
    assert _frames(out.read_bytes(), tmp_path)["video"] > 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "probe.bin"]



def _render_to(tmp_path, name, *extra, **io):
    return subprocess.run([sys.executable, "-m", "dhlive_cli", "render", *extra, "-o", name, "--size", "160x90",
                           "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=False, timeout=300, **io)


def test_a_named_descriptor_is_written_as_it_is(tmp_path):
    """The encoder gets a copy of our descriptor, not the name to open again: a `>>` file keeps
    what it held (it was truncated), and a read-only one is an error (it was overwritten)."""
    log = tmp_path / "app.out"
    log.write_bytes(b"EARLIER\n")
    with open(log, "ab") as f:
        r = _render_to(tmp_path, "/dev/stdout", str(SAMPLE), stdout=f)
    assert r.returncode == 0, r.stderr
    data = log.read_bytes()
    assert data.startswith(b"EARLIER\n") and _frames(data[8:], tmp_path)["video"] > 25
    ro = tmp_path / "ro.txt"
    ro.write_bytes(b"keep")
    with open(ro, "rb") as f:
        r = _render_to(tmp_path, "/dev/stdout", str(SAMPLE), stdout=f)
    assert r.returncode == 2 and b"open for reading only" in r.stderr and ro.read_bytes() == b"keep"


@pytest.mark.parametrize("case", ["stdout closed", "descriptor not open", "json on the same stdout", "stdin is the input"])
def test_a_named_descriptor_that_cannot_take_the_video_is_refused(tmp_path, case):
    """Each ended with exit 0 and the video lost (closed stdout: dhlive holds /dev/null there),
    over the input (`-o /dev/stdin <> speech`: the input emptied), or mixed with --json's line."""
    speech = tmp_path / "speech.flac"
    speech.write_bytes(SAMPLE.read_bytes())
    if case == "stdout closed":
        r = _render_to(tmp_path, "/dev/stdout", str(speech), stdout=subprocess.DEVNULL, close_fds=True,
                       preexec_fn=lambda: os.close(1))
        want = b"standard output is closed"
    elif case == "descriptor not open":
        r = _render_to(tmp_path, "/dev/fd/7", str(speech), stdout=subprocess.DEVNULL)
        want = b"descriptor 7 is not open"
    elif case == "json on the same stdout":
        r = _render_to(tmp_path, "/dev/stdout", str(speech), "--json", stdout=subprocess.DEVNULL)
        want = b"--json with -o /dev/stdout"
    else:
        fd = os.open(speech, os.O_RDWR)
        try:
            r = _render_to(tmp_path, "/dev/stdin", "-", stdin=fd, stdout=subprocess.DEVNULL)
        finally:
            os.close(fd)
        want = b"is the input file"
    assert r.returncode == 2 and want in r.stderr, r.stderr
    assert speech.read_bytes() == SAMPLE.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.flac"]


@pytest.mark.parametrize("fd", [3, 4, 5, 6])
def test_a_descriptor_dhlive_opened_itself_is_not_an_output(tmp_path, fd):
    """`live -o /dev/fd/5` with nothing given on 5: dhlive's own metrics socket and pipes sit on
    3-6, and the recording went into one of them (exit 0, lost) or failed naming `pipe:7`."""
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--input", str(SAMPLE), "--duration", "1",
                        "-o", f"/dev/fd/{fd}", "--size", "160x90", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and f"descriptor {fd} is not open" in r.stderr, r.stderr


def test_an_output_that_is_where_messages_or_json_go_is_refused(tmp_path):
    """-o /dev/stderr into a file: dhlive's own lines were appended to the video; --json with -o
    /dev/fd/5 where 5 is stdout's file: the JSON line was."""
    err = tmp_path / "err.mp4"
    with open(err, "wb") as f:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(SAMPLE), "-o", "/dev/stderr", "--size",
                            "160x90"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f, timeout=300)
    assert r.returncode == 2 and b"that is also standard error" in err.read_bytes()
    out = tmp_path / "out.mp4"
    with open(out, "wb") as f:
        other = os.dup(f.fileno())  # `5>&1`: another descriptor on stdout's file
        try:
            r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(SAMPLE), "-o", f"/dev/fd/{other}",
                                "--json", "--size", "160x90"], cwd=ROOT, stdout=f, stderr=subprocess.PIPE, timeout=300,
                               pass_fds=(other,))
        finally:
            os.close(other)
    assert r.returncode == 2 and f"--json with -o /dev/fd/{other}".encode() in r.stderr and out.read_bytes() == b""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to hand over a file the process may not open")
def test_stdin_a_file_we_may_not_open_by_name_is_read_as_given(tmp_path):
    """`sudo -u x dhlive lipsync - < private.wav`: the shell opened the file; opening it again by
    its /proc name (to probe it as a file) is refused to the process. It is read once, as a pipe
    is. Here: a file of nobody's, mode 600, and root without its power to override that."""
    speech = tmp_path / "speech.flac"
    speech.write_bytes(SAMPLE.read_bytes())
    os.chmod(speech, 0o600)
    os.chown(speech, 65534, 65534)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    with open(speech, "rb") as f:
        r = subprocess.run(drop + [sys.executable, "-m", "dhlive_cli", "lipsync", "-", "-o", "-", "-f", "frames"], cwd=ROOT,
                           stdin=f, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"\n") > 300  # 13.5 s at 25 fps, and the header


def test_a_stop_between_the_finished_render_and_the_end_of_the_command_says_it_is_complete(monkeypatch, capsys):
    """The stop lands once _render has returned (the summary, --json's line): the line is
    chosen when the stop lands, from the output's state, not when the command began."""
    import typer

    from dhlive_cli.commands import render as cmd

    class Done:
        complete, to_stdout, output_name = True, False, "out.mp4"

    def finished_then_stopped(*args, state=None, **kw):
        state["io"] = Done()
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "_render", finished_then_stopped)
    with pytest.raises(typer.Exit) as e:
        cmd.render(SAMPLE, Path("out.mp4"), quiet=True, json_out=False, avatar=None, preset="default", size=None,
                   fps=None, device="cpu", model=None, metrics="off", format=None)
    assert e.value.exit_code == 130
    assert capsys.readouterr().err.strip() == "interrupted: out.mp4 was already complete"


def test_stdout_that_is_also_stderr_or_the_input_is_refused_for_dash_o(tmp_path):
    """`render x -o - > f 2>&1`: dhlive's summary line ended the video; `-o - >> input`: the
    video was appended to the speech file. Both refused, as for -o /dev/stdout."""
    both = tmp_path / "both.mkv"
    with open(both, "wb") as f:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(SAMPLE), "-o", "-", "--size", "160x90"],
                           cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=300)
    assert r.returncode == 2 and both.read_bytes().startswith(b"error: -o -: that is also standard error")
    speech = tmp_path / "speech.flac"
    speech.write_bytes(SAMPLE.read_bytes())
    with open(speech, "ab") as f:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", str(speech), "-o", "-", "--size", "160x90"],
                           cwd=ROOT, stdout=f, stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 2 and b"is the input file" in r.stderr and speech.read_bytes() == SAMPLE.read_bytes()


def test_a_sessions_file_output_dash_is_refused_not_a_file_named_dash(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(f'[[session]]\nname = "a"\ninput = ["{SAMPLE}"]\noutput = "-"\n')
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "live", "--sessions", str(spec), "--duration", "1",
                        "--size", "160x90", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'give output = "/dev/stdout"' in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_names_with_markup_are_printed_as_written(tmp_path):
    """A batch folder named with `[/]` ended a finished batch in rich's MarkupError traceback;
    the summary lines print names as text."""
    out = tmp_path / "b[/]o"
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"audio,output\n{SAMPLE},a.mp4\n")
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "batch", str(jobs), "--out-dir", str(out), "--size",
                        "160x90", "--workers", "1", "--metrics", "off"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert str(out) in r.stderr and (out / "a.mp4").exists()


def test_summary_line_colour_follows_richs_switches(tmp_path):
    env = {**os.environ, "TTY_COMPATIBLE": "1"}
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "lipsync", str(SAMPLE), "-o", tmp_path / "c.json"], cwd=ROOT,
                       capture_output=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stderr.startswith(b"\x1b["), r.stderr[:40]
    env.pop("TTY_COMPATIBLE")
    env.pop("FORCE_COLOR", None)
    r = subprocess.run([sys.executable, "-m", "dhlive_cli", "lipsync", str(SAMPLE), "-o", tmp_path / "c.json"], cwd=ROOT,
                       capture_output=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stderr.startswith(b"wrote "), r.stderr[:40]


def test_an_output_that_is_stdins_file_is_refused(tmp_path):
    """`render - -o talk.mp4 < talk.mp4`: the finished video was renamed over the input."""
    talk = tmp_path / "talk.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "1", "-c:a", "aac", str(talk)], check=True)
    before = talk.read_bytes()
    with open(talk, "rb") as f:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "render", "-", "-o", str(talk), "--size", "160x90"],
                           cwd=ROOT, stdin=f, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "is the input file" in r.stderr, r.stderr
    assert talk.read_bytes() == before


def _locked(path: Path) -> bool:
    """Another process holds an exclusive flock(2) on path (hold_recording's claim)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_a_recording_in_progress_is_refused_to_a_second_dhlive(tmp_path):
    """Two processes, one recording: a second `live -o` of the same file exited 0 after
    truncating it under the first one's encoder (its Matroska header broken, 540 of 763 frames
    readable), and a render would have been renamed over it. Both are refused now (exit 2, one
    line, the recording untouched), and the file is free again once the first has stopped."""
    import time

    from tests.test_live import start_live, stop

    rec = tmp_path / "m.mkv"
    first = start_live("--size", "160x90", "-o", str(rec), "--input", str(SAMPLE), "--loop")
    try:
        deadline = time.monotonic() + 120  # the claim itself is the event waited for
        while not _locked(rec):
            assert first.poll() is None, first.stderr.read().decode()[-500:]
            assert time.monotonic() < deadline, "the recording was never claimed"
            time.sleep(0.05)
        want = [f"error: {rec}: another dhlive process is recording to this file; give a different output name"]
        for args in (["live", "--size", "160x90", "-o", rec, "--duration", "1", "--quiet"],
                     ["render", SAMPLE, "-o", rec, "--size", "160x90", "--quiet"]):
            r = dhlive(*args)
            assert r.returncode == 2 and r.stderr.strip().splitlines() == want, (args, r.stderr)
        link = tmp_path / "link.mkv"
        link.symlink_to(rec)
        r = dhlive("render", SAMPLE, "-o", link, "--size", "160x90", "--quiet")  # the link leads to it
        assert r.returncode == 2 and "another dhlive process is recording" in r.stderr, r.stderr
    finally:
        _, err = stop(first)
    assert first.returncode == 0, err
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(rec), "-f", "null", "-"], capture_output=True, text=True,
                         timeout=120)
    assert dec.returncode == 0 and dec.stderr == "", dec.stderr  # whole: nobody truncated it
    r = dhlive("live", "--size", "160x90", "-o", rec, "--duration", "1", "--quiet")
    assert r.returncode == 0, r.stderr  # released with the first process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.mkv", "m.mkv"]


@pytest.mark.parametrize("cmd", ["render", "lipsync"])
def test_a_link_planted_at_the_work_file_name_is_not_followed(tmp_path, cmd):
    """The work file had a fixed name (.NAME.dhlive-partial.EXT): a symbolic link planted there
    (another user, in a shared folder) made the render or lipsync write into the link's target
    and then rename the link over the output: the target overwritten, the output a link to it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / ("sym.mp4" if cmd == "render" else "cues.tsv")
    for name in (f".{out.name}.dhlive-partial{out.suffix}", f".{out.name}.dhlive-partial",
                 f".{out.name}.dhlive-probe"):
        (tmp_path / name).symlink_to(victim)
    args = ["--size", "160x90", "--quiet"] if cmd == "render" else []
    r = dhlive(cmd, SAMPLE, "-o", out, *args)
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious\n"
    assert out.is_file() and not out.is_symlink() and out.stat().st_size > 0
    if cmd == "render":
        assert out.read_bytes()[4:8] == b"ftyp"
    left = sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink())
    assert left == sorted([out.name, "victim.txt"]), left  # no work file left behind


def test_two_renders_to_one_output_each_finish_whole(tmp_path):
    """Two renders to one output shared the one work file: the second's rename took the first's
    file away (the first failed: "No such file or directory") and the output was left without
    streams. Each has its own now; the output is whichever finished last, whole."""
    import time

    import numpy as np
    import soundfile as sf

    long_in = tmp_path / "long.flac"
    t = np.arange(16000 * 60) / 16000
    sf.write(long_in, (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), 16000)
    out = tmp_path / "same.mp4"
    first = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(long_in), "-o", str(out), "--size",
                              "160x90", "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # the first's work file existing is the event waited for
        while not list(tmp_path.glob(".same.mp4.dhlive-partial*")):
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = dhlive("render", SAMPLE, "-o", out, "--size", "160x90", "--quiet")
        still_running = first.poll() is None
    finally:
        _, err = first.communicate(timeout=300)
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0, err
    dec = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert dec.returncode == 0 and dec.stderr == "", dec.stderr
    assert float(dec.stdout) > (59.0 if still_running else 0.5), (dec.stdout, still_running)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.flac", "same.mp4"]


@pytest.mark.parametrize("which, args, says", [
    ("out", ["render", SAMPLE, "-o", "-", "--size", "160x90"], "error: -o -: is a terminal; pipe the video"),
    ("out", ["render", SAMPLE, "-o", "/dev/stdout", "--size", "160x90"], "error: /dev/stdout: is a terminal;"),
    ("out", ["live", "-o", "-", "--duration", "1", "--size", "160x90"], "error: -o -: is a terminal;"),
    ("in", ["render", "-", "-o", "{tmp}/t.mp4"], "error: -: standard input is a terminal; pipe the audio in"),
    ("in", ["lipsync", "-", "-o", "{tmp}/t.tsv"], "error: -: standard input is a terminal;"),
    ("in", ["live", "--input", "-", "-o", "{tmp}/t.mkv", "--duration", "1", "--size", "160x90"],
     "error: session 'main': input -: standard input is a terminal;"),
])
def test_a_terminal_is_not_taken_for_a_video_or_audio_stream(tmp_path, which, args, says):
    """`render x -o -` typed at a terminal printed 49 KB of Matroska on it; `render - -o x.mp4`
    with the terminal as stdin waited there for ever without a word. Both are one line now,
    nothing written; text (lipsync's cues) still goes to a terminal."""
    import pty

    m, s = pty.openpty()
    try:
        line = [str(a).format(tmp=tmp_path) for a in args]
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", *line], cwd=ROOT, stdin=s if which == "in" else subprocess.DEVNULL,
                           stdout=s if which == "out" else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           timeout=120)
    finally:
        os.close(s)
        os.close(m)
    assert r.returncode == 2 and r.stderr.strip().startswith(says) and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stdin, says", [
    ("null", "error: -: standard input is /dev/null, there is nothing to read; pipe the audio in"),
    ("closed", "error: -: standard input is closed, there is nothing to read;"),
    ("empty pipe", "error: stdin: cannot decode audio: nothing readable as audio came in (was it empty, "
                   "or not an audio stream?); ffmpeg: Invalid data found"),
    ("text pipe", "error: stdin: cannot decode audio: nothing readable as audio came in"),
])
@pytest.mark.parametrize("command", ["render", "lipsync"])
def test_stdin_with_nothing_to_read_is_said_so(tmp_path, command, stdin, says):
    """`render - -o x.mp4` from a service or cron job (stdin /dev/null or closed) or fed an empty
    pipe said only ffmpeg's "pipe:0: Invalid data found when processing input"."""
    out = tmp_path / ("t.mp4" if command == "render" else "t.tsv")
    line = [sys.executable, "-m", "dhlive_cli", command, "-", "-o", str(out)]
    if stdin == "closed":
        line = ["sh", "-c", 'exec "$@" <&-', "sh", *line]
    feed = {"null": subprocess.DEVNULL, "closed": None}.get(stdin, subprocess.PIPE)
    p = subprocess.Popen(line, cwd=ROOT, stdin=feed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate({"empty pipe": "", "text pipe": "hello, not audio\n"}.get(stdin), timeout=120)
    assert p.returncode == 2 and err.strip().startswith(says) and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_an_input_named_by_a_pipe_or_a_device_is_said_to_be_one(tmp_path):
    """`cat x.wav | render /dev/stdin`, `render FIFO` and `render /dev/zero` were all "empty
    file" (the size of a pipe or a device is 0); a pipe holding a video without sound said
    ffmpeg's "Output file #0 does not contain any stream"."""
    fifo = tmp_path / "ff"
    os.mkfifo(fifo)
    novideo = tmp_path / "v.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=d=1:s=64x64", "-an", str(novideo)], check=True)
    out = tmp_path / "o.mp4"
    cases = [(["render", "/dev/stdin"], SAMPLE, "error: /dev/stdin: standard input is a pipe here; give - to read it"),
             (["render", str(fifo)], None, f"error: {fifo}: is a pipe, which can be read once only; give - and redirect it"),
             (["render", "/dev/zero"], None, "error: /dev/zero: is a device, not an audio file"),
             (["render", "-"], novideo, "error: stdin: cannot decode audio: no audio stream in what came in")]
    for args, piped, says in cases:
        p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", *args, "-o", str(out)], cwd=ROOT,
                             stdin=subprocess.PIPE if piped else subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            _, err = p.communicate(piped.read_bytes() if piped else None, timeout=120)
        except BrokenPipeError:  # refused before reading its stdin
            _, err = p.communicate(timeout=120)
        err = err.decode()
        assert p.returncode == 2 and err.startswith(says) and len(err.strip().splitlines()) == 1, (args, err)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ff", "v.mkv"]


def test_cues_still_go_to_a_terminal(tmp_path):
    import pty

    m, s = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "dhlive_cli", "lipsync", str(SAMPLE), "-o", "-"], cwd=ROOT,
                           stdin=subprocess.DEVNULL, stdout=s, stderr=subprocess.PIPE, text=True, timeout=120)
        os.set_blocking(m, False)
        got = os.read(m, 65536)
    finally:
        os.close(s)
        os.close(m)
    assert r.returncode == 0 and got.startswith(b"0.00\tX"), (r.stderr, got[:80])


def test_cues_on_a_full_disk_name_the_output(tmp_path):
    """lipsync writes its cues through a descriptor now: a full disk read "error: No space left
    on device", without the file; the line names it, and nothing is left there."""
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        (full / "fill").write_bytes(b"\0" * 60 * 1024)
        long_in = tmp_path / "long.flac"
        import numpy as np
        import soundfile as sf

        sf.write(long_in, np.zeros(16000 * 20, np.float32), 16000)
        r = dhlive("lipsync", long_in, "-o", full / "c.tsv", "--format", "frames")
        assert r.returncode == 2 and r.stderr.strip() == f"error: {full / 'c.tsv'}: No space left on device", r.stderr
        assert sorted(p.name for p in full.iterdir()) == ["fill"]
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)


def test_a_live_recording_into_a_fifo_with_its_reader_waiting_still_streams(tmp_path):
    """The recording's claim opened and closed a FIFO: its waiting reader got an end of file and
    left, and the encoder then blocked for ever. A FIFO (or device) is not claimed, only written."""
    fifo = tmp_path / "ff.mkv"
    os.mkfifo(fifo)
    got: list = []
    reader = _read_fifo(fifo, got)
    r = dhlive("live", "--input", SAMPLE, "-o", fifo, "--size", "160x90", "--duration", "2", "--quiet", timeout=120)
    reader.join(60)
    assert r.returncode == 0, r.stderr
    assert got and got[0][:4] == b"\x1a\x45\xdf\xa3", got[:1]  # the Matroska stream arrived


def test_a_live_recording_through_a_link_to_a_file_not_there_yet(tmp_path):
    """`-o link.mkv` with the link's target not made yet was refused by the claim ("cannot open:
    No such file or directory"); the target is created, as render does."""
    (tmp_path / "d").mkdir()
    link = tmp_path / "link.mkv"
    link.symlink_to(tmp_path / "d" / "t.mkv")
    r = dhlive("live", "--input", SAMPLE, "-o", link, "--size", "160x90", "--duration", "1", "--quiet", timeout=120)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and (tmp_path / "d" / "t.mkv").stat().st_size > 0


def test_a_render_does_not_rename_over_a_recording_that_began_meanwhile(tmp_path):
    """A render checked for a recording at its output only when it started: a `live -o` that
    began during the render had its file renamed away at the end (its encoder wrote on into a
    deleted file, the run said it had succeeded). The render fails now, one line, its work file
    removed; the recording is whole."""
    import time

    import numpy as np
    import soundfile as sf

    from tests.test_live import start_live, stop

    long_in = tmp_path / "long.flac"
    t = np.arange(16000 * 240) / 16000
    sf.write(long_in, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    out = tmp_path / "race.mkv"
    render = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(long_in), "-o", str(out), "--size",
                               "640x360", "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    live = None
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".race.mkv.dhlive-partial*")):  # the render is under way
            assert render.poll() is None and time.monotonic() < deadline, render.stderr.read()
            time.sleep(0.02)
        live = start_live("--size", "160x90", "-o", str(out), "--input", str(SAMPLE), "--loop")
        while not _locked(out):
            assert live.poll() is None and time.monotonic() < deadline, live.stderr.read().decode()
            time.sleep(0.02)
        _, err = render.communicate(timeout=600)
        lines = err.strip().splitlines()
        if render.returncode == 0:
            pytest.skip("the render finished before the recording began (a very fast machine)")
        assert render.returncode == 2 and len(lines) == 1 and "another dhlive process is recording" in lines[0], err
    finally:
        if render.poll() is None:
            render.kill()
        if live is not None:
            _, lerr = stop(live)
    assert live.returncode == 0, lerr
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True,
                         timeout=120)
    assert dec.returncode == 0 and dec.stderr == "", dec.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.flac", "race.mkv"]


@pytest.mark.parametrize("name", ["f.mp4", "f.mkv"])
def test_a_render_onto_a_full_disk_fails_instead_of_writing_a_cut_file(tmp_path, name):
    """ffmpeg exits 0 when only its trailer could not be written ("Error writing trailer: No
    space left on device"): the render said "wrote" over an mp4 without its index. Exit 2, one
    line, nothing left."""
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20k", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        r = dhlive("render", SAMPLE, "-o", full / name, "--size", "160x90", "--quiet")
        assert r.returncode == 2 and r.stderr.strip() == f"error: {full / name}: no space left on device", r.stderr
        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)


def test_a_hang_up_during_a_render_leaves_no_work_file(tmp_path):
    """SIGHUP (the terminal closed) ended a render by Python's default: the random-named work
    file stayed, one more per hang-up. It stops as SIGTERM does now."""
    import signal
    import time

    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "render", str(SAMPLE), "-o", str(tmp_path / "h.mp4"),
                          "--size", "1280x720", "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".h.mp4.dhlive-partial*")):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.01)
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the render finished before the hang-up landed")
    assert p.returncode == 130 and "unfinished output removed" in err, (p.returncode, err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cmd, out_name", [("render", "h.mp4"), ("lipsync", "c.tsv")])
def test_work_files_of_runs_killed_outright_are_removed_by_the_next(tmp_path, cmd, out_name):
    """A render SIGKILLed (or a power loss) leaves its random-named work file; nothing removed
    them, one more per killed run. The next run to the same output removes those whose process
    is gone; one of a process still running, a link, or another output's is left."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # a PID that ran and is gone (not reused in the moment this test takes)
    out = tmp_path / out_name
    suffix = out.suffix if cmd == "render" else ""
    stale = tmp_path / f".{out_name}.dhlive-partial-{dead.pid}-0123abcd{suffix}"
    running = tmp_path / f".{out_name}.dhlive-partial-{os.getpid()}-0123abcd{suffix}"
    other = tmp_path / f".x.mp4.dhlive-partial-{dead.pid}-0123abcd.mp4"
    link = tmp_path / f".{out_name}.dhlive-partial-{dead.pid}-4567abcd{suffix}"
    for f in (stale, running, other):
        f.write_bytes(b"partial")
    link.symlink_to(other)
    args = ["--size", "160x90", "--quiet"] if cmd == "render" else []
    r = dhlive(cmd, SAMPLE, "-o", out, *args)
    assert r.returncode == 0, r.stderr
    assert not stale.exists() and running.exists() and other.exists() and link.is_symlink()
    assert out.is_file()
