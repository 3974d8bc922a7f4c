"""The program's exit (dhlive_cli/entry.finish): what the interpreter's own exit does for others
still happens -- exit status, atexit handlers, flushed output -- and the prompt exit steps aside
when a non-daemon thread is still running or the output cannot be flushed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# output stays in Python's buffers until flushed, as it does for a user (not line by line)
BUFFERED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def run_script(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=BUFFERED_ENV)


def test_exit_status_output_and_atexit_handlers(tmp_path):
    marker = tmp_path / "atexit-ran"
    r = run_script(f"""
        import atexit, sys
        sys.path.insert(0, {str(ROOT)!r})
        from dhlive_cli.entry import finish
        atexit.register(lambda: open({str(marker)!r}, "w").write("yes"))
        sys.stdout.write("buffered " * 1000)  # left in the buffer: finish must flush it
        sys.stderr.write("to stderr")
        finish(3)
        print("finish returned")
    """, tmp_path)
    assert r.returncode == 3
    assert r.stdout == "buffered " * 1000 and r.stderr == "to stderr"
    assert marker.read_text() == "yes"


def test_none_is_status_0_and_a_message_is_status_1_on_stderr(tmp_path):
    for code, status, err in (("None", 0, ""), ("'error: it broke'", 1, "error: it broke\n"), ("258", 2, "")):
        r = run_script(f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            from dhlive_cli.entry import finish
            finish({code})
            print("finish returned")
        """, tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (status, "", err), code


def test_a_running_non_daemon_thread_is_waited_for(tmp_path):
    r = run_script(f"""
        import sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from dhlive_cli.entry import finish
        go = threading.Event()
        t = threading.Thread(target=lambda: (go.wait(), print("thread finished")))
        t.start()
        finish(0)
        print("finish returned")
        go.set()
    """, tmp_path)
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["finish returned", "thread finished"]


def test_output_to_a_closed_pipe_exits_as_python_does(tmp_path):
    # the reader is gone before the output is flushed: Python's own exit reports the failed flush
    # and exits 120; finish must leave that to it rather than exit 0 with the output lost unsaid
    results = []
    for call in ("finish(0)", "pass"):
        script = tmp_path / "s.py"
        script.write_text(textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            from dhlive_cli.entry import finish
            sys.stdin.readline()
            sys.stdout.write("x" * 100)
            {call}
        """))
        p = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=BUFFERED_ENV)
        p.stdout.close()  # the reader goes away before the script writes
        _, err = p.communicate("go\n", timeout=120)
        results.append((p.returncode, "BrokenPipeError" in err))
    assert results[0] == results[1] == (120, True)


SAMPLE = ROOT / "presets" / "samples" / "hello.flac"


def _with_reader_gone(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """dhlive with stdout a pipe whose reader has already left (`... | head -1` after its line)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "dhlive_cli", *args], cwd=tmp_path, stdout=w,
                              stderr=subprocess.PIPE, text=True, timeout=300, env=BUFFERED_ENV)
    finally:
        os.close(w)


@pytest.mark.parametrize("args", [["--help"], ["render", "--help"], ["--version"],
                                  ["lipsync", str(SAMPLE), "-o", "-"],
                                  ["render", str(SAMPLE), "-o", "-", "--size", "160x90"],
                                  ["render", str(SAMPLE), "-o", "out.mp4", "--size", "160x90", "--json"],
                                  ["live", "-o", "-", "--size", "160x90", "--duration", "2", "--quiet"]])
def test_a_reader_that_left_early_ends_the_run_quietly_with_sigpipes_status(args, tmp_path):
    """`dhlive lipsync x -o - | head -1` said "error: Broken pipe" (exit 2), `render -o - | head
    -c 1000` "error: encoder failed (exit 1): ... Broken pipe", and help or the version exited 1
    without a word: now each ends quietly with 141, the status of a filter killed by SIGPIPE.
    (--json: the video is complete, the line about it had nowhere to go.)"""
    p = _with_reader_gone(args, tmp_path)
    assert p.returncode == 141 and p.stderr == "", (p.returncode, p.stderr)
    left = sorted(x.name for x in tmp_path.iterdir())
    assert left == (["out.mp4"] if "out.mp4" in args else []), left


def test_an_error_of_its_own_is_still_told_when_the_reader_left(tmp_path):
    p = _with_reader_gone(["render", "missing.wav", "-o", "out.mp4"], tmp_path)
    assert p.returncode == 2 and p.stderr.strip() == "error: missing.wav: no such file", p.stderr
