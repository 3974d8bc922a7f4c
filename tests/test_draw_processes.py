"""Draw processes (live.drawing): sessions beyond one per core drawn outside the clock's process.

Real parts: real draw processes (python -m dhlive_cli.live.draw_worker), real shared memory,
a real Studio with real encoders writing recordings that are decoded back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from multiprocessing.connection import Client

import numpy as np
import psutil
import pytest

from dhlive_cli.avatar.drawn import MouthShape
from dhlive_cli.compositor import Composer, i420_shape, load_avatar
from dhlive_cli.errors import EngineError
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.live.drawing import DrawPool, shared_frames
from dhlive_cli.session_spec import SessionSpec
from tests.conftest import dhlive_threads
from tests.loadcheck import Starvation


def _mouths(n: int) -> list[MouthShape]:
    rng = np.random.default_rng(7)
    return [MouthShape(float(a), float(b), float(c), float(d)) for a, b, c, d in rng.random((n, 4))]


def _draw_processes() -> list[psutil.Process]:
    out = []
    for c in psutil.Process().children():
        try:
            if "dhlive_cli.live.draw_worker" in " ".join(c.cmdline()):
                out.append(c)
        except psutil.Error:
            pass
    return out


@pytest.fixture
def one_draw_process():
    """A DrawPool of one draw process and the frame-ring shape (slots, h * 3 / 2, w) of a 320x180
    session; the pool is closed after the test."""
    pool = DrawPool(1)
    try:
        yield pool, (2, *i420_shape(180, 320))
    finally:
        pool.close()


def _killed_under(pool: DrawPool, shape: tuple[int, ...]) -> tuple:
    """Session "a" opened on `pool` (its only draw process), then that process SIGKILLed and
    reaped: (the session's RemoteDrawer, the dead process)."""
    first, _ = _open(pool, "a", shape)
    (proc,) = _draw_processes()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return first, proc


def _one_beyond_the_cores(tmp_path) -> tuple:
    """A sessions file of cores + 1 small sessions (160x90, preset low), each recording to
    s{i}.mkv in tmp_path: (its path, the session count). Skips on machines of more than 4 cores."""
    cores = os.cpu_count() or 1
    if cores > 4:
        pytest.skip("needs cores + 1 sessions: kept to small machines")
    n = cores + 1
    toml = tmp_path / "studio.toml"
    toml.write_text('preset = "low"\nsize = "160x90"\n' + "".join(
        f'[[session]]\nname = "s{i}"\noutput = "s{i}.mkv"\n' for i in range(n)))
    return toml, n


def _open(pool: DrawPool, name: str, shape: tuple[int, ...]):
    """Session `name` (the embedded avatar, frame ring of `shape` = (slots, h * 3 / 2, w)) given to
    a draw process of `pool`: (its RemoteDrawer, its shared frames)."""
    frames, fd = shared_frames(shape, name)
    try:
        return pool.connect(name, None, shape[2], shape[1] * 2 // 3, 25, frames, fd), frames
    finally:
        os.close(fd)


def _studio(draw_processes: int, local_draws: int, stop_after_frames: int | None = None):
    """A real Studio (360p, ultrafast encoders) whose first `local_draws` sessions draw in this
    process and the others in `draw_processes` draw processes."""
    from dhlive_cli.inference import InferencePool
    from dhlive_cli.presets import load_preset
    from dhlive_cli.sinks import EncoderOptions
    from dhlive_cli.studio import Studio

    studio = Studio(InferencePool(), load_preset("low"), EncoderOptions(preset="ultrafast", threads=1),
                    draw_processes=draw_processes, stop_after_frames=stop_after_frames)
    studio.local_draws = local_draws
    return studio


def test_a_draw_process_draws_the_same_bytes_as_the_session_thread():
    w, h = 320, 180
    shape = (4, *i420_shape(h, w))
    frames, fd = shared_frames(shape, "t")
    pool = DrawPool(1)
    try:
        remote = pool.connect("t", None, w, h, 25, frames, fd)
        os.close(fd)
        local = Composer(load_avatar(None, w, h, 25))
        want = np.zeros(shape, np.uint8)  # the same four slots, drawn here
        for f, m in enumerate(_mouths(40)):
            slot = f % 4
            fresh = f < 4  # each slot is converted whole the first time, then only its boxes
            remote.draw(slot, f, m, fresh)
            local.draw(want[slot], f, m, fresh=fresh)
            assert np.array_equal(frames[slot], want[slot]), f  # the same bytes, in the shared slot
        remote.close()
    finally:
        pool.close()
    assert not _draw_processes()


def test_a_refused_avatar_and_a_dead_draw_process_are_engine_errors(tmp_path, one_draw_process):
    pool, shape = one_draw_process
    frames, fd = shared_frames(shape, "bad")
    with pytest.raises(EngineError, match="not an avatar directory"):
        pool.connect("bad", tmp_path, 320, 180, 25, frames, fd)  # no avatar.toml there
    os.close(fd)
    remote, frames = _open(pool, "ok", shape)
    remote.draw(0, 0, MouthShape(), True)
    (proc,) = _draw_processes()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with pytest.raises(EngineError, match="draw process is gone"):
        remote.draw(1, 1, MouthShape(), True)
    remote.close()


def test_a_wrong_key_is_refused_by_the_draw_process():
    pool = DrawPool(1)
    try:
        remote, frames = _open(pool, "k", (2, *i420_shape(180, 320)))
        address = pool._workers[0]["address"]
        assert (os.stat(os.path.dirname(address)).st_mode & 0o777) == 0o700  # only this user reaches it
        from multiprocessing import AuthenticationError

        with pytest.raises((AuthenticationError, EOFError, ConnectionError)):
            Client(address, family="AF_UNIX", authkey=b"not the key")
        remote.draw(0, 0, MouthShape(), True)  # the process is still serving its session
        remote.close()
    finally:
        pool.close()


def _frames_of(path) -> int:
    out = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-map", "0:v", "-f", "null", "-"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    probe = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "framemd5",
                            "-"], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in probe.splitlines() if line and not line.startswith("#"))


def test_studio_sessions_beyond_the_cores_draw_in_processes_and_record_every_frame(tmp_path):
    frames = 50
    # the first session draws here, the next two in the draw process
    studio = _studio(draw_processes=1, local_draws=1, stop_after_frames=frames)
    try:
        sessions = [studio.create(SessionSpec(name=f"s{i}", output=tmp_path / f"s{i}.mkv")) for i in range(3)]
        assert [s._remote is not None for s in sessions] == [False, True, True]
        assert len(_draw_processes()) == 1
        deadline = time.monotonic() + 120  # a timeout for the event, not a speed bound
        # a recording drops a frame (counted) only when its encoder falls behind: never on a quiet
        # machine; on a loaded one at most one per frame time the processes waited for a CPU
        with Starvation(children=True, poll_s=0.05) as starved:
            while not all(s.finished for s in sessions):
                assert time.monotonic() < deadline, [s.snapshot()["frames"] for s in sessions]
                time.sleep(0.05)
        dropped = [s.snapshot()["outputs"][0]["frames_dropped"] for s in sessions]
    finally:
        studio.close()
    assert not _draw_processes()  # closed with the studio
    assert not [t for t in dhlive_threads() if t.startswith(("dhlive-draw", "dhlive-out", "dhlive-tick"))]
    for i in range(3):
        assert dropped[i] <= starved.allowed(0), (dropped, starved.seconds)
        assert _frames_of(tmp_path / f"s{i}.mkv") == frames - dropped[i], (i, dropped)


def test_studio_stops_only_the_sessions_of_a_draw_process_that_died(tmp_path):
    studio = _studio(draw_processes=1, local_draws=1)
    try:
        here, there = (studio.create(SessionSpec(name=n, output=tmp_path / f"{n}.mkv")) for n in ("here", "there"))
        deadline = time.monotonic() + 120
        while there.snapshot()["frames"] < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (proc,) = _draw_processes()
        proc.send_signal(signal.SIGKILL)
        while "there" not in [n for n, _ in studio.removed]:
            studio.supervise()
            assert time.monotonic() < deadline, there.snapshot()
            time.sleep(0.05)
        f0 = here.snapshot()["frames"]
        while here.snapshot()["frames"] < f0 + 25:  # the other session goes on
            assert time.monotonic() < deadline and not here.failed
            time.sleep(0.05)
        assert list(studio.sessions()) == ["here"]
    finally:
        studio.close()


def test_a_session_after_a_draw_process_died_is_drawn_by_a_new_one():
    # the dead process has the fewest sessions once its own are stopped: every later session
    # was given to it and refused ("a draw process has died") for the rest of the Studio's life
    w, h = 320, 180
    shape = (2, *i420_shape(h, w))
    pool = DrawPool(1)
    try:
        first, proc = _killed_under(pool, shape)
        with pytest.raises(EngineError, match="draw process is gone"):
            first.draw(0, 0, MouthShape(), True)
        first.close()
        for n in range(2):
            remote, frames = _open(pool, f"b{n}", shape)
            remote.draw(0, 0, MouthShape(), True)
            assert frames[0].any()  # drawn, by the process started in the dead one's place
            remote.close()
        (again,) = _draw_processes()
        assert again.pid != proc.pid
        assert sorted(os.listdir(os.path.dirname(pool._workers[0]["address"]))) == [
            os.path.basename(pool._workers[0]["address"])]  # the dead one's socket is gone
    finally:
        pool.close()
    assert not _draw_processes()


def test_a_caller_that_hangs_up_in_the_handshake_does_not_stop_the_draw_process_accepting(one_draw_process):
    # a connection dropped (or junk sent) before the key check ended the process's accepting
    # thread: the next session's connect() then waited forever
    import socket
    import threading

    pool, shape = one_draw_process
    first, frames = _open(pool, "a", shape)
    address = pool._workers[0]["address"]
    s = socket.socket(socket.AF_UNIX)
    s.connect(address)
    s.close()  # hangs up before answering the challenge
    s = socket.socket(socket.AF_UNIX)
    s.connect(address)
    s.recv(64)  # the challenge
    s.sendall(b"\xff\xff\xff\x7f")  # a length past what the handshake reads
    s.close()
    from multiprocessing import AuthenticationError

    with pytest.raises((AuthenticationError, EOFError, ConnectionError)):  # still checks keys
        Client(address, family="AF_UNIX", authkey=b"not the key")
    frames, fd = shared_frames(shape, "b")
    got: list = []
    t = threading.Thread(target=lambda: got.append(pool.connect("b", None, 320, 180, 25, frames, fd)), daemon=True)
    t.start()
    t.join(120)  # a timeout for the event, not a speed bound
    os.close(fd)
    assert got, "the second session was never accepted"
    got[0].draw(0, 0, MouthShape(), True)
    first.draw(0, 0, MouthShape(), True)
    got[0].close()
    first.close()


def test_a_closed_session_leaves_nothing_mapped_in_its_draw_process(one_draw_process):
    # the serving loop's names kept the last closed session's state (avatar, frame ring mapped
    # from shared memory) alive until another session of that process closed
    pool, shape = one_draw_process
    first, frames = _open(pool, "gone", shape)
    first.draw(0, 0, MouthShape(), True)
    first.close()
    second, frames = _open(pool, "kept", shape)
    second.draw(0, 0, MouthShape(), True)  # served after the first one's close (sent before)
    (proc,) = _draw_processes()
    with open(f"/proc/{proc.pid}/maps") as f:
        maps = f.read()
    assert "memfd:dhlive-kept" in maps and "memfd:dhlive-gone" not in maps
    second.close()


def test_draw_processes_start_under_a_long_temporary_folder(tmp_path, monkeypatch):
    # a Unix socket's path is at most 107 bytes: a TMPDIR this long made every draw process
    # fail to listen (a traceback, then "a draw process did not start" for the session)
    import tempfile

    deep = tmp_path / ("t" * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    pool = DrawPool(1)
    try:
        remote, frames = _open(pool, "deep", (2, *i420_shape(180, 320)))
        remote.draw(0, 0, MouthShape(), True)
        assert frames[0].any()
        (folder,) = os.listdir(deep)
        assert (os.stat(deep / folder).st_mode & 0o777) == 0o700
        remote.close()
    finally:
        pool.close()
    assert not os.listdir(deep)  # the sockets' folder is removed


def test_a_draw_process_without_its_key_does_not_listen(tmp_path):
    # a pool that died before writing the key left stdin at end of file: the empty key turned
    # multiprocessing's key check off for the socket
    import sys

    address = tmp_path / "w"
    for given in (b"", b"zz\n", b"00\n"):
        out = subprocess.run([sys.executable, "-m", "dhlive_cli.live.draw_worker", str(address)], input=given,
                             capture_output=True, timeout=120)
        assert out.returncode == 1 and b"ready" not in out.stdout, out
        assert out.stderr.decode().strip() == "dhlive draw process: no key on stdin"
        assert not address.exists()


def test_a_sessions_file_without_the_api_starts_only_the_draw_processes_it_can_use(tmp_path):
    # without --listen no session comes later, but the default counted --max-sessions (16):
    # one session beyond the cores started 2 x cores draw processes, all but one idle
    import sys

    toml, n = _one_beyond_the_cores(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--sessions", str(toml), "--quiet",
                          "--duration", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: set[int] = set()
    proc = psutil.Process(p.pid)
    while p.poll() is None:
        try:
            for c in proc.children():
                if "dhlive_cli.live.draw_worker" in " ".join(c.cmdline()):
                    seen.add(c.pid)
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, err = p.communicate()
    assert p.returncode == 0, err.decode()
    assert len(seen) == 1, seen
    for i in range(n):
        assert _frames_of(tmp_path / f"s{i}.mkv") == 75, i


def test_a_stop_signal_to_the_whole_process_group_fades_the_draw_process_sessions_out_too(tmp_path):
    # a service manager's stop (SIGTERM to the group) or the terminal's hang-up reached the draw
    # processes too: they died under their sessions, which then crashed ("the draw process is
    # gone") and lost frames, where sessions drawn here faded out and kept every frame
    import re
    import sys

    toml, n = _one_beyond_the_cores(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--sessions", str(toml), "--duration", "120"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        proc = psutil.Process(p.pid)
        deadline = time.monotonic() + 120  # a timeout for the event, not a speed bound
        # running: a draw process serves a session and every recording has its first frames
        while not ([c for c in proc.children() if "draw_worker" in " ".join(c.cmdline())]
                   and all((tmp_path / f"s{i}.mkv").exists() and (tmp_path / f"s{i}.mkv").stat().st_size > 4096
                           for i in range(n))):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = out.decode() + err.decode()
    assert p.returncode == 0, text
    assert "draw process is gone" not in text and "error" not in text.lower(), text
    for i in range(n):
        said = int(re.search(rf"stopped s{i}: (\d+) frames", text).group(1))
        assert _frames_of(tmp_path / f"s{i}.mkv") == said, (i, text)


def test_a_killed_pool_leaves_no_draw_process_and_no_socket_folder(tmp_path):
    # kill -9 of the process holding the pool: its draw processes see their stdin end and
    # exit; the folder of their sockets was left behind in the temporary folder
    import sys

    script = (
        "import os, sys, tempfile\n"
        "tempfile.tempdir = sys.argv[1]\n"
        "from dhlive_cli.compositor import i420_shape\n"
        "from dhlive_cli.live.drawing import DrawPool, shared_frames\n"
        "pool = DrawPool(2)\n"
        "rings = [shared_frames((2, *i420_shape(180, 320)), f'k{i}') for i in range(2)]\n"
        "remotes = [pool.connect(f'k{i}', None, 320, 180, 25, *rings[i]) for i in range(2)]\n"
        "print(*pool.pids(), flush=True)\n"
        "sys.stdin.read()\n")
    p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        pids = [int(x) for x in p.stdout.readline().split()]
        assert len(pids) == 2 and len(os.listdir(tmp_path)) == 1
        workers = [psutil.Process(x) for x in pids]
        p.kill()
        p.wait(30)
        psutil.wait_procs(workers, timeout=60)  # a timeout for the event, not a speed bound
        assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert os.listdir(tmp_path) == []


def test_a_failed_draw_is_one_message_without_a_traceback(capfd):
    # the draw process logged the failure with its traceback on the operator's stderr (the
    # session's thread then logged its own line): a session drawn here gives that one line only
    pool = DrawPool(1)
    try:
        remote, frames = _open(pool, "f", (2, *i420_shape(180, 320)))
        with pytest.raises(EngineError, match=r"^drawing failed: IndexError: "):
            remote.draw(7, 0, MouthShape(), True)  # no slot 7 in a ring of 2
        remote.draw(1, 1, MouthShape(), True)  # the process goes on serving
        remote.close()
    finally:
        pool.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "failed" not in err, err


def test_a_pool_whose_processes_cannot_start_leaves_no_folder_and_no_descriptor(tmp_path, monkeypatch):
    # every failed start (each connect() tries again) left its sockets' folder and the
    # descriptor held open on it
    import shutil
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "executable", shutil.which("false"))  # a "Python" that exits at once
    w, h = 320, 180
    pool = DrawPool(2)
    fds = len(os.listdir("/proc/self/fd"))
    try:
        for n in range(3):
            frames, fd = shared_frames((2, *i420_shape(h, w)), f"x{n}")
            with pytest.raises(EngineError, match="did not start"):
                pool.connect(f"x{n}", None, w, h, 25, frames, fd)
            os.close(fd)
            del frames
            assert os.listdir(tmp_path) == []
        assert len(os.listdir("/proc/self/fd")) == fds
    finally:
        pool.close()



def test_a_dead_draw_process_that_cannot_be_replaced_is_an_error_and_the_next_try_works(tmp_path, monkeypatch):
    # the dead one was taken out of the pool, and the next start made a second sockets'
    # folder and descriptor while the first stayed (until the pool closed)
    import shutil
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    w, h = 320, 180
    shape = (2, *i420_shape(h, w))
    pool = DrawPool(1)
    try:
        first, _ = _killed_under(pool, shape)
        first.close()
        python = sys.executable
        monkeypatch.setattr(sys, "executable", shutil.which("false"))  # the replacement exits at once
        frames, fd = shared_frames(shape, "b")
        with pytest.raises(EngineError, match="did not start"):
            pool.connect("b", None, w, h, 25, frames, fd)
        monkeypatch.setattr(sys, "executable", python)
        remote = pool.connect("b", None, w, h, 25, frames, fd)  # the next try starts one
        os.close(fd)
        remote.draw(0, 0, MouthShape(), True)
        assert frames[0].any()
        assert len(os.listdir(tmp_path)) == 1  # one sockets' folder, not one per start
        remote.close()
    finally:
        pool.close()
    assert os.listdir(tmp_path) == []


def test_draw_processes_start_as_sessions_need_them():
    # all `processes` started with the first session: one session beyond the cores started
    # four interpreters (~50 MB each, 3.5 s before that session could start, 1.2 s for one)
    w, h = 320, 180
    shape = (2, *i420_shape(h, w))
    pool = DrawPool(3)
    remotes = []
    try:
        for n, want in enumerate((1, 2, 3, 3)):
            frames, fd = shared_frames(shape, f"s{n}")
            remotes.append(pool.connect(f"s{n}", None, w, h, 25, frames, fd))
            os.close(fd)
            assert len(_draw_processes()) == want, n
        for r in remotes:
            r.close()
        frames, fd = shared_frames(shape, "again")
        again = pool.connect("again", None, w, h, 25, frames, fd)  # a process without sessions takes it
        os.close(fd)
        again.draw(0, 0, MouthShape(), True)
        assert len(_draw_processes()) == 3
        again.close()
    finally:
        pool.close()
    assert not _draw_processes()


def test_a_draw_process_that_died_is_reaped_when_its_sessions_close():
    # it stayed a zombie until another session was given to the pool (or the pool closed)
    pool = DrawPool(1)
    try:
        remote, frames = _open(pool, "z", (2, *i420_shape(180, 320)))
        (proc,) = _draw_processes()
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(EngineError):
            while True:  # until the session sees it gone, as its draw thread does
                remote.draw(0, 0, MouthShape(), True)
        remote.close()
        assert not psutil.pid_exists(proc.pid)
    finally:
        pool.close()


def test_concurrent_creates_draw_no_more_sessions_here_than_allowed(tmp_path):
    # each create counted only the running sessions and its own batch: four API requests at
    # once were all drawn in the clock's process (here: local_draws 1), none in draw processes
    import threading

    studio = _studio(draw_processes=2, local_draws=1)
    made, errors = [], []
    start = threading.Barrier(4)

    def create(i: int) -> None:
        start.wait()
        try:
            made.append(studio.create(SessionSpec(name=f"c{i}", output=tmp_path / f"c{i}.mkv")))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors and len(made) == 4
        assert sum(1 for s in made if s._remote is None) == 1
        # one of them removed: the next session is drawn here again
        here = next(s for s in made if s._remote is None)
        studio.remove(here.name)
        assert studio.create(SessionSpec(name="next", output=tmp_path / "next.mkv"))._remote is None
    finally:
        studio.close()


def test_a_session_removed_while_its_draw_process_stalls_is_closed_there_once_it_resumes(tmp_path):
    # stop() gives up waiting for the draw thread after its timeout and closed the session in
    # the draw process only if that thread had ended: otherwise the process kept the session's
    # avatar and frame ring, and the pool counted it, for the Studio's whole life
    studio = _studio(draw_processes=1, local_draws=0)
    try:
        stalled = studio.create(SessionSpec(name="stalled", output=tmp_path / "stalled.mkv"))
        deadline = time.monotonic() + 120  # a timeout for the event, not a speed bound
        while stalled.snapshot()["frames"] < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (proc,) = _draw_processes()
        proc.suspend()
        try:
            studio.remove("stalled")
            assert stalled._thread.is_alive()  # waiting for the stopped process's answer
        finally:
            proc.resume()
        stalled._thread.join(120)
        assert not stalled._thread.is_alive()
        assert studio.draw_pool._workers[0]["sessions"] == 0
        after = studio.create(SessionSpec(name="after", output=tmp_path / "after.mkv"))
        while after.snapshot()["frames"] < 2:  # answered after the stalled one's close (sent first)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with open(f"/proc/{proc.pid}/maps") as f:
            maps = f.read()
        assert "memfd:dhlive-after" in maps and "memfd:dhlive-stalled" not in maps
    finally:
        studio.close()


def test_one_sessions_slow_request_does_not_hold_up_the_other_sessions_of_its_draw_process(one_draw_process):
    """Each session has its own thread in the draw process: while one session's request is still
    arriving (here: half a message, as a slow avatar load would also keep its thread), the other
    session of the same process keeps getting its frames."""
    import struct
    import threading

    pool, shape = one_draw_process
    a, fa = _open(pool, "a", shape)
    slow = Client(pool._workers[0]["address"], family="AF_UNIX", authkey=pool._key)
    # a message of 100 bytes announced, 10 sent: its reader waits for the rest
    os.write(slow.fileno(), struct.pack("!i", 100) + b"x" * 10)
    drew = threading.Event()

    def draw_a():
        for f in range(10):
            a.draw(f % 2, f, MouthShape(), f < 2)
        drew.set()
    threading.Thread(target=draw_a, daemon=True).start()
    assert drew.wait(60), "session a was held up by another session's unfinished request"
    slow.close()
    a.draw(0, 10, MouthShape(), False)  # and the process goes on after the other hung up
    a.close()
