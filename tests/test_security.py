"""The live API attacked the way issue 12 did it, through a real `dhlive live --listen` server.

One server per module (real ffmpeg recording `main.mkv`, the drawn avatar at 320x180), started
with the grants an operator would give: an output folder, a media folder, one RTMP host. Every
case checks the answer (a 4xx with a one-line JSON error, or an exit 2 with one `error:` line),
that no file outside the grants was created or changed, and at the end that nothing is left
running. `pytest -m security -s` prints the table of cases and outcomes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import soundfile as sf

from dhlive_cli.timebase import SAMPLE_RATE
from tests import rtmp_server
from tests.conftest import tone
from tests.slow_clients import trickle

pytestmark = [pytest.mark.security, pytest.mark.timeout(600)]

ROWS: list[tuple[str, str, str]] = []  # (case, outcome, verdict)
TOKEN = "a-long-enough-test-token-0123456789"
SAMPLE = Path(__file__).resolve().parents[1] / "presets" / "samples" / "hello.flac"


def row(case: str, outcome: str, ok: bool) -> None:
    ROWS.append((case, outcome, "ok" if ok else "FAIL"))


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    if ROWS:
        w = max(len(c) for c, _, _ in ROWS)
        print("\n\nsecurity cases (issue 12)\n" + "-" * (w + 60))
        for case, outcome, verdict in ROWS:
            print(f"{case:<{w}}  {verdict:<4}  {outcome}")


# ---------------------------------------------------------------------------------- the server

def cli(*args, env=None, cwd=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dhlive_cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


def one_error_line(p: subprocess.CompletedProcess, needle: str = "") -> bool:
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    return (p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
            and "Traceback" not in p.stderr)


class Live:
    """`dhlive live --listen` as a child process (its own process group)."""

    def __init__(self, root: Path, *extra, env: dict | None = None):
        self.root = root
        self.port = rtmp_server.free_port()
        args = [sys.executable, "-m", "dhlive_cli", "live", "--listen", f"127.0.0.1:{self.port}", "--quiet",
                "--preset", "low", "--size", "320x180", *map(str, extra)]
        self.log = open(root / "server.log", "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log, cwd=root,
                                     start_new_session=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while True:
            try:
                req(self.port, "GET", "/v1/sessions", timeout=2)  # any answer: it is up
                break
            except OSError:
                pass
            assert self.proc.poll() is None, self.stderr()
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        self.ps = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> tuple[int, list[int]]:
        kids = [c.pid for c in self.ps.children(recursive=True)]
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        time.sleep(0)  # (children are reaped by then: they are waited for by the server)
        left = [pid for pid in kids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        return rc, left


def req(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
        timeout: float = 30) -> tuple[int, dict | str]:
    """One request with exactly these headers (Host included when given)."""
    headers = dict(headers or {})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    finally:
        c.close()


def post_session(port: int, spec, ctype: str = "application/json", **headers):
    body = spec if isinstance(spec, bytes) else json.dumps(spec).encode()
    return req(port, "POST", "/v1/sessions", body, {"Content-Type": ctype, **headers})


def is_json_error(answer, status: int) -> bool:
    code, body = answer
    return code == status and isinstance(body, dict) and set(body) == {"error"} and "\n" not in body["error"]


def ws_handshake(port: int, path: str = "/v1/stream", host: str | None = None, origin: str | None = None) -> int:
    """The status a WebSocket upgrade gets (101 when it connects)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = (f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
        if origin:
            head += f"Origin: {origin}\r\n"
        s.sendall((head + "\r\n").encode())
        return int(s.recv(64).split(b" ")[1])


def snapshot_tree(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under these folders with (size, mtime_ns): what "nothing changed" compares."""
    out = {}
    for r in roots:
        for p in sorted(r.rglob("*")):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Folders: out/ (granted for recordings, holds the CLI's main.mkv), media/ (granted inputs),
    home/ (the operator's own files: nothing may touch them), and the running server."""
    root = tmp_path_factory.mktemp("sec")
    out, media, home = root / "out", root / "media", root / "home"
    for d in (out, media, home):
        d.mkdir()
    sf.write(media / "hello.wav", tone(1.0), SAMPLE_RATE, subtype="PCM_16")
    sf.write(home / "private.flac", tone(1.0), SAMPLE_RATE)
    (home / ".bashrc").write_text("echo hello\n")
    os.mkfifo(home / "fifo")
    (media / "escape.flac").symlink_to(home / "private.flac")  # a link out of the grant
    (out / "link.mkv").symlink_to(home / ".bashrc")
    srv = Live(root, "-o", out / "main.mkv", "--output-dir", out, "--media-dir", media,
               "--allow-rtmp", "127.0.0.1:1", "--pixel-budget", "5",
               env={"DHLIVE_TEST_ENCODER_GATE": str(root / "gate")})  # a FIFO only while test_7 runs
    deadline = time.monotonic() + 60
    while not (out / "main.mkv").exists():  # the encoder creates it once it has its first frames
        assert time.monotonic() < deadline and srv.proc.poll() is None, srv.stderr()
        time.sleep(0.2)
    home_before = snapshot_tree(home)
    yield {"root": root, "out": out, "media": media, "home": home, "srv": srv, "port": srv.port}
    # nothing outside the grants changed, for the whole module
    rc, left = srv.stop()
    assert snapshot_tree(home) == home_before
    row("end: SIGTERM, children left", f"exit {rc}, {len(left)} left", rc == 0 and not left)
    assert rc == 0 and not left, (rc, left, srv.stderr()[-2000:])
    assert "Traceback" not in srv.stderr(), srv.stderr()[-3000:]


# ------------------------------------------------------------------------ 1. browser, host, files

def test_1_browser_and_dns_rebinding_are_refused(world):
    port, home = world["port"], world["home"]
    evil = {"name": "w", "output": str(home / ".bashrc")}
    a = post_session(port, evil, "text/plain", Origin="http://evil.example")
    row("1 cross-origin text/plain POST /v1/sessions", f"{a[0]}", is_json_error(a, 403))
    assert is_json_error(a, 403)
    a = post_session(port, evil, "text/plain")
    row("1 same, no Origin, text/plain", f"{a[0]}", is_json_error(a, 415))
    assert is_json_error(a, 415)
    a = req(port, "GET", "/v1/status", headers={"Host": f"attacker.example:{port}"})
    row("1 Host: attacker.example (DNS rebinding)", f"{a[0]}", is_json_error(a, 421))
    assert is_json_error(a, 421)
    a = req(port, "GET", "/v1/status", headers={"Host": f"127.0.0.1:{port + 1}"})
    assert is_json_error(a, 421)  # a loopback name on another port is not us either
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert req(port, "GET", "/v1/status", headers={"Host": host})[0] == 200, host
    # not host[:port] at all, though a loopback name is in them (a reviewer's list: each passed)
    arabic = "".join(chr(0x660 + int(d)) for d in str(port))
    for host in (f"localhost]:{port}", f"localhost :{port}", f"localhost:{arabic}".encode(), f"[[::1]]:{port}"):
        a = req(port, "GET", "/v1/status", headers={"Host": host})
        assert is_json_error(a, 421), (host, a)
    code = ws_handshake(port, origin="http://evil.example")
    row("1 WebSocket from a foreign Origin", str(code), code == 403)
    assert code == 403
    code = ws_handshake(port, host=f"attacker.example:{port}")
    row("1 WebSocket with Host: attacker.example", str(code), code == 421)
    assert code == 421
    assert ws_handshake(port, origin=f"http://127.0.0.1:{port}") == 101  # our own page's origin


def test_1_outputs_are_names_inside_the_grant_never_overwritten(world):
    port, home, out = world["port"], world["home"], world["out"]
    cases = {
        "absolute path": str(home / ".bashrc"),
        "no suffix": "bashrc",
        "FIFO": str(home / "fifo"),
        "device": "/dev/null",
        "symlink in the grant": "link.mkv",
        "../ path": "../home/x.mkv",
        "NUL in name": "a\x00.mkv",
        "lone surrogate": "a\ud800.mkv",
    }
    for what, name in cases.items():
        a = post_session(port, {"name": "w", "output": name})
        ok = a[0] in (400, 409) and is_json_error(a, a[0])
        row(f"1 output: {what}", f"{a[0]} {a[1]['error'][:60] if isinstance(a[1], dict) else a[1][:60]}", ok)
        assert ok, (what, a)
    assert (out / "link.mkv").is_symlink() and (home / ".bashrc").read_text() == "echo hello\n"
    assert req(port, "GET", "/v1/sessions")[1]["sessions"] == ["main"]


# -------------------------------------------------------------- 2. the running recording is safe

def test_2_the_running_recording_cannot_be_destroyed(world):
    port, out = world["port"], world["out"]
    main = out / "main.mkv"
    for name in (f"{out}/../{out.name}/main.mkv", f"/{out}/main.mkv", "main.mkv"):
        size0 = main.stat().st_size
        a = post_session(port, {"name": "clash", "output": name})
        ok = a[0] in (400, 409) and main.stat().st_size >= size0
        row(f"2 second session writing {name.replace(str(out), 'OUT')}", f"{a[0]}, main.mkv kept", ok)
        assert ok, (name, a)
    # a hard link of the recording is the same file: compared by (st_dev, st_ino), not by name
    os.link(main, out / "hard.mkv")
    try:
        a = post_session(port, {"name": "clash", "output": "hard.mkv"})
        row("2 second session writing a hard link of main.mkv", str(a[0]), a[0] == 409)
        assert a[0] == 409
    finally:
        (out / "hard.mkv").unlink()
    st = req(port, "GET", "/v1/sessions/main/status")[1]
    assert st["outputs"][0]["connected"] and main.exists()  # still being written


def test_2_another_dhlive_cannot_write_over_a_running_recording(world, tmp_path):
    """The command line's main.mkv and an API session's b.mkv are claimed (flock): a second
    dhlive's `live -o` or `render -o` of either is refused; b.mkv's claim went unchecked (the
    API holds its own descriptor), so a render renamed over it and its encoder wrote on into a
    deleted file."""
    port, out = world["port"], world["out"]
    a = post_session(port, {"name": "b", "output": "b.mkv", "size": "160x90"})
    assert a[0] == 201, a
    try:
        for name in ("main.mkv", "b.mkv"):
            for args in (["live", "-o", out / name, "--duration", "1", "--size", "160x90", "--quiet"],
                         ["render", SAMPLE, "-o", out / name, "--size", "160x90", "--quiet"]):
                p = cli(*args, cwd=tmp_path, timeout=120)
                ok = one_error_line(p, "another dhlive process is recording to this file")
                row(f"2 another dhlive's {args[0]} -o {name}", f"exit {p.returncode}", ok)
                assert ok, (name, args[0], p.stderr)
        ino = (out / "b.mkv").stat().st_ino
        assert req(port, "GET", "/v1/sessions/b/status")[1]["outputs"][0]["connected"]
    finally:
        assert req(port, "DELETE", "/v1/sessions/b")[0] == 200
    assert (out / "b.mkv").stat().st_ino == ino  # the recording stayed where it was
    p = cli("render", SAMPLE, "-o", out / "b2.mkv", "--size", "160x90", "--quiet", cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr  # (a new name renders as usual)
    (out / "b2.mkv").unlink()


def test_2_refused_starts_change_no_file(tmp_path):
    keep = tmp_path / "keep.mkv"
    keep.write_bytes(b"precious")
    toml = tmp_path / "s.toml"
    toml.write_text(f'[[session]]\nname = "a"\noutput = "{keep}"\n'
                    f'[[session]]\nname = "b"\noutput = "{tmp_path}/missing/dir/b.mkv"\n')
    p = cli("live", "--sessions", toml, "--quiet", "--preset", "low", cwd=tmp_path)
    ok = one_error_line(p) and keep.read_bytes() == b"precious"
    row("2 sessions file, invalid second session", f"exit {p.returncode}, first output untouched", ok)
    assert ok, p.stderr
    for env, needle in (({}, "requires a token"), ({"DHLIVE_API_TOKEN": "   "}, "requires a token"),
                        ({"DHLIVE_API_TOKEN": "short"}, "16 characters")):
        p = cli("live", "--listen", "0.0.0.0:0", "-o", keep, "--quiet", "--preset", "low", env=env, cwd=tmp_path)
        ok = one_error_line(p, needle) and keep.read_bytes() == b"precious"
        row(f"2 --listen 0.0.0.0, token {env.get('DHLIVE_API_TOKEN', 'unset')!r}", f"exit {p.returncode}, -o untouched", ok)
        assert ok, p.stderr
    p = cli("live", "--listen", "0.0.0.0:0", "-o", tmp_path / "new.mkv", "--quiet", env={"DHLIVE_API_TOKEN": ""})
    assert p.returncode == 2 and not (tmp_path / "new.mkv").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["keep.mkv", "s.toml"]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_2_an_ipv6_listen_address_in_brackets_serves_and_a_bad_one_changes_no_file(tmp_path):
    """`--listen [::1]:PORT` (the form URLs and --allow-rtmp use) was refused only after the
    sessions had started ("Name or service not known"), leaving the recording behind: the port
    check took the brackets off and the server did not."""
    port = rtmp_server.free_port()
    rec = tmp_path / "v6.mkv"
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--listen", f"[::1]:{port}", "-o", str(rec),
                          "--quiet", "--preset", "low", "--size", "160x90"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("::1", port, timeout=5)
                c.request("GET", "/v1/status")
                r = c.getresponse()
                body = json.loads(r.read())
                c.close()
                break
            except OSError:
                assert p.poll() is None, p.stderr.read()
                assert time.monotonic() < deadline, "the API on [::1] did not come up"
                time.sleep(0.2)
        assert r.status == 200 and body["session"] == "main", body
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0 and "Traceback" not in err, err
    rec.unlink()
    for bad in ("[::1:80", "[::1]]:80", "::1]:80"):
        q = cli("live", "--listen", bad, "-o", rec, "--quiet", "--preset", "low", cwd=tmp_path)
        assert one_error_line(q, "expected HOST:PORT") and not rec.exists(), (bad, q.stderr)


# ------------------------------------------------------------ 3. reading and connecting elsewhere

def test_3_inputs_and_hosts_only_inside_the_grants(world):
    port, home = world["port"], world["home"]
    answers = {}
    for what, name in (("absolute local file", str(home / "private.flac")), ("../ path", "../home/private.flac"),
                       ("symlink out of the grant", "escape.flac"), ("missing file", "nope.flac"),
                       ("a directory", "."), ("existing file outside (abs)", "/etc/hostname")):
        a = post_session(port, {"name": "r", "rtmp": "rtmp://127.0.0.1:1/live/k", "input": [name]})
        answers[what] = a[1].get("error", "").replace(repr(name)[:82], "NAME") if isinstance(a[1], dict) else a
        ok = is_json_error(a, 400)
        row(f"3 input: {what}", str(a[0]), ok)
        assert ok, (what, a)
    # no existence oracle: a file that is there outside the grant and one that is not read the same
    same = len({answers[k] for k in ("symlink out of the grant", "missing file", "existing file outside (abs)")}) == 1
    row("3 input errors reveal nothing (exists vs missing)", "identical messages" if same else str(answers), same)
    assert same, answers
    for what, body in (("HLS playlist", f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{home}/private.flac\n#EXT-X-ENDLIST\n"),
                       ("ffconcat list", f"ffconcat version 1.0\nfile '{home}/private.flac'\n")):
        a = req(port, "POST", "/v1/speak", body.encode(), {"Content-Type": "audio/mpegurl"})
        ok = is_json_error(a, 400)
        row(f"3 /v1/speak body: {what} naming a local file", str(a[0]), ok)
        assert ok, a
    msgs = set()
    open_port = port  # something listens here (the API itself)
    for url in (f"rtmp://127.0.0.1:{open_port}/live/k", "rtmp://127.0.0.1:9/live/k", "rtmp://10.1.2.3/live/k",
                "rtmp://user:pw@127.0.0.1:1/live/k"):
        a = post_session(port, {"name": "scan", "rtmp": url})
        msgs.add(a[1].get("error") if isinstance(a[1], dict) else a[1])
        assert is_json_error(a, 400), (url, a)
    row("3 rtmp to hosts/ports not granted (open, closed, other)", f"400 x4, {len(msgs)} distinct message", len(msgs) == 1)
    assert len(msgs) == 1, msgs
    a = post_session(port, {"name": "ok", "rtmp": "rtmp://127.0.0.1:1/live/k", "input": ["hello.wav"]})
    row("3 granted host and media name", str(a[0]), a[0] == 201)
    assert a[0] == 201, a
    assert req(port, "DELETE", "/v1/sessions/ok")[0] == 200


# ---------------------------------------------------------------------- 4. memory, availability

async def _aborted_uploads(port: int, n: int, size: int) -> None:
    """n uploads that announce `size` bytes, send all but the last one, then hang up."""
    chunk = b"\x00" * 2**20

    async def one(i: int):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        ctype = "audio/wav" if i % 2 else "audio/L16; rate=192000; channels=8"
        w.write(f"POST /v1/speak HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {size}\r\n\r\n".encode())
        left = size - 1
        while left > 0:
            w.write(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))
            await w.drain()
        w.transport.abort()

    await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)


def test_4_aborted_uploads_free_their_memory(world):
    srv, port = world["srv"], world["port"]
    asyncio.run(_aborted_uploads(port, 8, 20 * 2**20))  # warm-up: thread pool, allocator arenas
    time.sleep(1.0)
    rss0 = srv.rss()
    for _ in range(2):
        asyncio.run(_aborted_uploads(port, 64, 20 * 2**20))
        # the server reads what the sockets still hold, then meets the hang-up: on a busy machine
        # that takes a while, and until then those uploads hold their (bounded) buffers
        deadline = time.monotonic() + 180
        while req(port, "GET", "/v1/status")[1]["api"]["uploads_in_progress"]:
            assert time.monotonic() < deadline, "aborted uploads were never noticed"
            time.sleep(0.2)
    grown = (srv.rss() - rss0) / 2**20
    row("4 64 aborted 20 MB uploads, twice (no gc.collect)", f"RSS {grown:+.1f} MB", grown < 30)
    print(f"aborted uploads: RSS {rss0 / 2**20:.0f} MB -> {srv.rss() / 2**20:.0f} MB")
    assert grown < 30, grown
    assert req(port, "GET", "/v1/status")[0] == 200


def test_4_slow_clients_cannot_lock_out_speech(world):
    """64 slow bodies (a byte every 2 s: under the idle limit, so only being the slowest gets
    them dropped) and 136 slow-header connections, each reopened when dropped, for 60 s; a
    legitimate speak every few seconds is answered 202."""
    port = world["port"]
    st0 = req(port, "GET", "/v1/status")[1]
    pcm = (tone(0.5) * 32767).astype("<i2").tobytes()

    body_head = (f"POST /v1/speak HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: audio/wav\r\n"
                 "Content-Length: 1000000\r\n\r\n").encode()
    header_head = f"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()

    async def go():
        stop = asyncio.Event()
        attackers = [asyncio.create_task(trickle(port, stop, body_head, 2.0)) for _ in range(64)]
        attackers += [asyncio.create_task(trickle(port, stop, header_head, 5.0)) for _ in range(136)]
        await asyncio.sleep(3.0)
        codes, worst = [], 0.0
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            code, _ = await asyncio.to_thread(req, port, "POST", "/v1/speak", pcm, {"Content-Type": "audio/pcm"})
            worst = max(worst, time.monotonic() - t0)
            codes.append(code)
            await asyncio.sleep(4.0)
        stop.set()
        await asyncio.gather(*attackers, return_exceptions=True)
        return codes, worst

    codes, worst = asyncio.run(go())
    st1 = req(port, "GET", "/v1/status")[1]
    skipped = st1["skipped_ticks"] - st0["skipped_ticks"]
    ok = set(codes) == {202}
    row("4 64 slow bodies + 136 slow headers, 60 s: legitimate speaks",
        f"{len(codes)}x {sorted(set(codes))}, slowest answer {worst:.2f} s, main skipped ticks {skipped}, "
        f"slow clients dropped {st1['api']['dropped_slow_clients']}", ok)
    assert ok, codes
    assert worst < 10.0  # a bound on behaviour ("still answers"); the latency itself is a benchmark
    assert st1["api"]["dropped_slow_clients"] > 0


def test_4_websockets_are_bounded_and_closed_with_their_session(world):
    port = world["port"]

    async def go():
        import aiohttp

        async with aiohttp.ClientSession() as http:
            idle, refused = [], 0
            for _ in range(32):  # the 32 idle clients: 8 get in (the per-session cap)
                try:
                    idle.append(await http.ws_connect(f"http://127.0.0.1:{port}/v1/stream"))
                except aiohttp.WSServerHandshakeError as e:
                    assert e.status == 503
                    refused += 1
            assert len(idle) == 8 and refused == 24
            await asyncio.sleep(2.5)  # idle past the eviction threshold
            fresh = await http.ws_connect(f"http://127.0.0.1:{port}/v1/stream")
            await fresh.send_bytes((tone(0.04) * 32767).astype("<i2").tobytes())
            async def gone(w) -> bool:
                try:
                    return (await w.receive(timeout=0.5)).type in (
                        aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                except asyncio.TimeoutError:
                    return False

            evicted = sum([await gone(w) for w in idle])
            row("4 32 idle WebSockets, then a new client", f"8 in (cap), 24 x 503; the new one connects, "
                f"{evicted} idle one closed", evicted >= 1)
            assert evicted >= 1
            for w in (*idle, fresh):
                await w.close()
            # a deleted session's sockets are closed at once
            assert post_session(port, {"name": "ws", "rtmp": "rtmp://127.0.0.1:1/live/k"})[0] == 201
            mine = [await http.ws_connect(f"http://127.0.0.1:{port}/v1/sessions/ws/stream") for _ in range(3)]
            assert (await asyncio.to_thread(req, port, "DELETE", "/v1/sessions/ws"))[0] == 200
            kinds = [(await w.receive(timeout=5)).type for w in mine]
            closed = all(k in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                         for k in kinds)
            row("4 WebSockets of a deleted session", "closed" if closed else str(kinds), closed)
            assert closed

    asyncio.run(go())
    st = req(port, "GET", "/v1/status")[1]
    assert st["api"]["ws_clients"] == 0


def test_4_sizes_are_admitted_against_the_pixel_budget(world):
    port = world["port"]
    codes = [post_session(port, {"name": f"big{i}", "rtmp": "rtmp://127.0.0.1:1/live/k", "size": "4096x4096"})[0]
             for i in range(3)]
    row("4 three 4096x4096 API sessions", str(codes), codes == [400] * 3)
    assert codes == [400] * 3
    # 5 Mpx/s granted, main draws 320x180x25 = 1.44: one more such session fits, 640x360 does not
    a = post_session(port, {"name": "mid", "rtmp": "rtmp://127.0.0.1:1/live/k", "size": "640x360"})
    b = post_session(port, {"name": "small", "rtmp": "rtmp://127.0.0.1:1/live/k", "size": "320x180"})
    row("4 640x360 over the pixel budget / 320x180 within it", f"{a[0]} / {b[0]}", a[0] == 503 and b[0] == 201)
    assert is_json_error(a, 503) and b[0] == 201
    assert req(port, "DELETE", "/v1/sessions/small")[0] == 200


def test_4_a_wav_of_millions_of_tiny_chunks_is_refused_fast(world):
    port = world["port"]
    n = 2_500_000
    body = bytearray(b"RIFF" + struct.pack("<I", 4 + 8 * n + 8) + b"WAVE")
    body += b"junk\x00\x00\x00\x00" * n + b"data\x00\x00\x00\x00"
    t0 = time.monotonic()
    a = req(port, "POST", "/v1/speak", bytes(body), {"Content-Type": "audio/wav"})
    took = time.monotonic() - t0
    row("4 20 MB WAV of 2.5 M tiny RIFF chunks", f"{a[0]} in {took:.1f} s", is_json_error(a, 400))
    assert is_json_error(a, 400), a


# --------------------------------------------------------------------------------- 5. secrets

def test_5_tokens_stay_out_of_ps_and_the_query(tmp_path):
    p = cli("live", "--listen", "127.0.0.1:0", "--token", TOKEN, "--quiet")
    row("5 --token on the command line", f"exit {p.returncode}", one_error_line(p, "ps"))
    assert one_error_line(p, "ps"), p.stderr
    tf = tmp_path / "token"
    tf.write_text(TOKEN + "\n")
    srv = Live(tmp_path, "--token-file", tf, "-o", tmp_path / "t.mkv")
    try:
        port = srv.port
        assert req(port, "GET", "/v1/status")[0] == 401
        assert req(port, "GET", "/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        a = req(port, "GET", f"/v1/status?token={TOKEN}", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
        row("5 ?token= with an Upgrade header off the WebSocket path", str(a[0]), is_json_error(a, 401))
        assert is_json_error(a, 401)
        assert ws_handshake(port, f"/v1/stream?token={TOKEN}") == 101
        assert TOKEN not in " ".join(srv.ps.cmdline())
    finally:
        rc, left = srv.stop()
    assert rc == 0 and not left
    for tok in ("   ", "short"):
        p = cli("live", "--listen", "0.0.0.0:0", "-o", tmp_path / "x.mkv", "--quiet", env={"DHLIVE_API_TOKEN": tok})
        row(f"5 public bind with token {tok!r}", f"exit {p.returncode}", one_error_line(p))
        assert one_error_line(p) and not (tmp_path / "x.mkv").exists()


# --------------------------------------------------------------------------- 6. crashes

def test_6_malformed_json_is_a_400_not_a_crash(world):
    port = world["port"]
    for what, body in (("NUL in a path", b'{"name": "n", "output": "a\\u0000.mkv"}'),
                       ("lone surrogate in a path", b'{"name": "n", "avatar": "\\ud800"}'),
                       ("NUL in an input", b'{"name": "n", "rtmp": "rtmp://127.0.0.1:1/a/b", "input": ["\\u0000"]}'),
                       ("30,000 nested [", b"[" * 30000),
                       ("invalid UTF-8", b'{"name": "\xff"}')):
        a = post_session(port, body)
        row(f"6 JSON: {what}", str(a[0]), is_json_error(a, 400))
        assert is_json_error(a, 400), (what, a)
    for path in ("/v1/sessions/%00/status", "/v1/sessions/%ED%A0%80/status"):
        a = req(port, "GET", path)
        assert a[0] in (400, 404) and is_json_error(a, a[0]), (path, a)

    async def nested_ws():
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{port}/v1/stream") as ws:
                await ws.send_str("[" * 30000)
                msg = await ws.receive(timeout=5)
                return msg.type, ws.close_code

    kind, code = asyncio.run(nested_ws())
    row("6 WebSocket text of 30,000 nested [", f"close {code}", code == 1003)
    assert code == 1003, (kind, code)
    assert req(port, "GET", "/v1/status")[0] == 200


def _raw(port: int, data: bytes) -> bytes:
    """Send these bytes as they are; the answer's first bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return s.recv(4096)


def test_6_malformed_http_is_a_400_and_no_traceback_in_the_log(world):
    """A request the client got wrong (duplicate Host, negative Content-Length, Content-Length
    beside chunked, a header without its colon, a chunk size that is not hex) was a 400 and an
    ERROR with a traceback in the operator's log (about 800 bytes per 40-byte request, before
    any token check); a body whose gzip is broken was a 500 "internal error" and a traceback.
    Now: 400s, and the log does not grow."""
    port, srv = world["port"], world["srv"]
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    before = len(srv.stderr())
    for what, data in (("duplicate Host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
                       ("negative Content-Length", b"POST /v1/speak HTTP/1.1\r\n" + host + b"Content-Length: -5\r\n\r\n"),
                       ("Content-Length and chunked", b"POST /v1/speak HTTP/1.1\r\n" + host
                        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
                       ("header without a colon", b"GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n"),
                       ("chunk size not hex", b"POST /v1/speak HTTP/1.1\r\n" + host
                        + b"Content-Type: audio/pcm\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n")):
        got = _raw(port, data)
        row(f"6 HTTP: {what}", got[:12].decode(errors="replace"), b" 400 " in got[:16])
        assert b" 400 " in got[:16], (what, got[:200])
    a = req(port, "POST", "/v1/speak", b"abcd", {"Content-Type": "audio/pcm", "Content-Encoding": "gzip"})
    row("6 HTTP: broken gzip body", str(a[0]), is_json_error(a, 400))
    assert is_json_error(a, 400) and "could not be read" in a[1]["error"], a
    assert req(port, "GET", "/v1/status")[0] == 200  # answered after all of it; any late log line is in by now
    assert len(srv.stderr()) == before, srv.stderr()[before:][:2000]


def _wait_for_a_scrape(mport: int) -> None:
    """Until the metrics port answers a scrape 200 (60 s bounds a port that never does); one
    closed unanswered (every slot still held) is "not yet"."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if req(mport, "GET", "/metrics", headers={"Host": f"127.0.0.1:{mport}"})[0] == 200:
                return
        except (http.client.RemoteDisconnected, ConnectionResetError):
            pass
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_6_the_metrics_port_answers_loopback_names_only_and_bounds_its_connections(world):
    """The separate metrics port (loopback only) answered any Host (a DNS-rebinding page could
    read it) and gave every connection a thread until its client left: 1000 idle half-sent
    requests made 736 threads. Now: 421 for a foreign Host, at most METRICS_MAX_CONNECTIONS
    served at once (more are closed unanswered), and an idle one is closed after its timeout."""
    from urllib.parse import urlsplit

    from dhlive_cli.metrics import METRICS_MAX_CONNECTIONS, read_discovery

    srv = world["srv"]
    url = urlsplit(read_discovery(srv.proc.pid)["metrics_url"])
    mport = url.port
    for host, want in ((f"127.0.0.1:{mport}", 200), (f"localhost:{mport}", 200), ("evil.example", 421),
                       (f"evil.example:{mport}", 421)):
        code, _ = req(mport, "GET", "/metrics", headers={"Host": host})
        row(f"6 metrics port, Host {host.split(':')[0]}", str(code), code == want)
        assert code == want, (host, code)
    threads0 = srv.ps.num_threads()
    idle = []
    try:
        for _ in range(200):  # half-sent requests that never end
            s = socket.create_connection(("127.0.0.1", mport), timeout=10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            idle.append(s)
        grew = srv.ps.num_threads() - threads0
        row("6 metrics port, 200 idle connections", f"+{grew} threads", grew <= METRICS_MAX_CONNECTIONS)
        assert grew <= METRICS_MAX_CONNECTIONS, grew
        # the first of them is closed by the server once its read timeout passes (the event
        # waited for; 60 s bounds a server that never closes it)
        idle[0].settimeout(60)
        assert idle[0].recv(1024) == b""
    finally:
        for s in idle:
            s.close()
    # the slots come back: a scrape is answered again. Until the other held connections' threads
    # have seen their timeout or their client's close (under load that can lag idle[0]'s), a
    # scrape is still closed unanswered, as documented for a full server
    _wait_for_a_scrape(mport)


def test_6_the_metrics_port_refuses_malformed_hosts_drip_feeding_and_huge_headers(world):
    """A fresh reviewer's findings on the metrics port: Host values that are not host[:port]
    ("[::1].evil.example", "localhost:evil", "127.0.0.1:80@evil.example") were taken for
    loopback; the listen backlog was 5 (a burst of scrapes waited for a SYN retransmit); a
    client sending one byte every few seconds (under the per-read timeout) kept its slot for
    ever; 16 connections with 100 header lines of 64 KiB pinned ~100 MB."""
    from urllib.parse import urlsplit

    from dhlive_cli.metrics import METRICS_DEADLINE_S, METRICS_MAX_CONNECTIONS, read_discovery

    srv = world["srv"]
    mport = urlsplit(read_discovery(srv.proc.pid)["metrics_url"]).port
    for host in ("[::1].evil.example", f"[::1]evil.example:{mport}", f"127.0.0.1:{mport}@evil.example", "localhost:evil",
                 f"127.0.0.1:{mport}:{mport}", "[[::1]]", "localhost]"):
        code, _ = req(mport, "GET", "/metrics", headers={"Host": host})
        row(f"6 metrics port, Host {host[:24]}", str(code), code == 421)
        assert code == 421, (host, code)
    ss = subprocess.run(["ss", "-Hltn", f"sport = :{mport}"], capture_output=True, text=True)
    if ss.returncode == 0 and ss.stdout.split():
        backlog = int(ss.stdout.split()[2])  # Send-Q of a listening socket: its backlog
        row("6 metrics port, listen backlog", str(backlog), backlog >= 4 * METRICS_MAX_CONNECTIONS)
        assert backlog >= 4 * METRICS_MAX_CONNECTIONS, ss.stdout

    # drip-fed: a byte every 2 s never lets the 10 s read timeout pass; the deadline closes it
    s = socket.create_connection(("127.0.0.1", mport), timeout=2)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
    t0 = time.monotonic()
    closed = False
    try:
        while time.monotonic() - t0 < 60:  # bounds a server that never closes it
            try:
                s.sendall(b"a")
                if s.recv(1024) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue  # nothing yet: keep dripping
            except OSError:  # reset: closed too
                closed = True
                break
    finally:
        s.close()
    held = time.monotonic() - t0
    row("6 metrics port, drip-fed request", f"closed after {held:.0f} s", closed)
    assert closed and held >= METRICS_DEADLINE_S - 1, held

    # huge headers: what a held connection may make the server read is capped
    rss0 = srv.rss()
    conns = []
    try:
        line = b"X-B: " + b"b" * 65000 + b"\r\n"
        for _ in range(METRICS_MAX_CONNECTIONS):
            c = socket.create_connection(("127.0.0.1", mport), timeout=10)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            try:
                for _ in range(99):
                    c.sendall(line)
            except OSError:  # the server stopped reading and closed: what the cap is for
                pass
            conns.append(c)
        grown = (srv.rss() - rss0) / 2**20
    finally:
        for c in conns:
            c.close()
    row("6 metrics port, 16 x 6.4 MB of headers", f"RSS {grown:+.1f} MB", grown < 20)
    assert grown < 20, grown
    _wait_for_a_scrape(mport)  # and the port answers again


def test_6_sessions_file_types_are_checked(tmp_path):
    for text, needle in (('preset = 5\n[[session]]\nname = "a"\noutput = "a.mkv"\n', "preset"),
                         ('size = 720\n[[session]]\nname = "a"\noutput = "a.mkv"\n', "size"),
                         ('[[session]]\nname = "a"\noutput = "a.mkv"\nsize = 720\n', "size"),
                         ('[[session]]\nname = "a"\noutput = 5\n', "output")):
        f = tmp_path / "s.toml"
        f.write_text(text)
        p = cli("live", "--sessions", f, "--quiet", cwd=tmp_path)
        first, last = text.splitlines()[0], text.splitlines()[-1]
        row(f"6 sessions file: {first if '[[' not in first else '[[session]] ' + last}",
            f"exit {p.returncode}", one_error_line(p, needle))
        assert one_error_line(p, needle), p.stderr
        assert not (tmp_path / "a.mkv").exists()


# --------------------------------------------------------- 7. races a local user could try (part C)

def test_7_a_link_swapped_in_after_create_cannot_redirect_the_recording(world):
    """The output file is created O_EXCL|O_NOFOLLOW, then the encoder starts: between the two a
    local user who can write in the output folder renames our file away and puts a link to a
    victim at its name. The encoder writes through our descriptor, so the victim is untouched and
    our (renamed) file grows. The server's encoder waits on a FIFO gate so the swap is certain to
    fall in that window."""
    import threading

    port, out, root = world["port"], world["out"], world["root"]
    victim = root / "victim.txt"
    victim.write_text("precious\n")
    gate = root / "gate"
    os.mkfifo(gate)
    answer = []
    t = threading.Thread(target=lambda: answer.append(post_session(port, {"name": "race", "output": "take.mkv"})))
    t.start()
    try:
        deadline = time.monotonic() + 60
        while not (out / "take.mkv").exists():  # created by the server, empty, before the encoder
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
        os.rename(out / "take.mkv", out / "moved.mkv")
        (out / "take.mkv").symlink_to(victim)
    finally:
        with open(gate, "wb"):  # opens once the encoder thread waits on it: let it start
            pass
        gate.unlink()
    t.join(60)
    assert answer and answer[0][0] == 201, answer
    deadline = time.monotonic() + 120
    while (out / "moved.mkv").stat().st_size == 0:
        assert time.monotonic() < deadline, world["srv"].stderr()[-2000:]
        time.sleep(0.2)
    assert req(port, "DELETE", "/v1/sessions/race")[0] == 200
    ok = victim.read_text() == "precious\n" and (out / "moved.mkv").stat().st_size > 0
    row("7 output path swapped for a link before the encoder opens it",
        f"victim {'untouched' if ok else 'CHANGED'}, real file {(out / 'moved.mkv').stat().st_size} B", ok)
    assert ok
    (out / "take.mkv").unlink()
    (out / "moved.mkv").unlink()


def test_7_an_input_swapped_for_a_link_after_its_check_is_skipped(world):
    """Inputs are checked when the session is created and played later: b.wav, checked, is
    replaced by a link out of the grant while a.wav plays. The player opens each file O_NOFOLLOW
    and compares it with the checked (st_dev, st_ino): b is skipped with one log line."""
    port, media, home, srv = world["port"], world["media"], world["home"], world["srv"]
    sf.write(media / "a.wav", tone(40.0), SAMPLE_RATE, subtype="PCM_16")  # over the 30 s buffer: a plays on
    sf.write(media / "b.wav", tone(1.0), SAMPLE_RATE, subtype="PCM_16")
    try:
        a = post_session(port, {"name": "swap", "rtmp": "rtmp://127.0.0.1:1/live/k", "input": ["a.wav", "b.wav"]})
        assert a[0] == 201, a
        (media / "b.wav").unlink()
        (media / "b.wav").symlink_to(home / "private.flac")
        line = "input b.wav: no longer the file that was checked: skipped"
        deadline = time.monotonic() + 120
        while line not in srv.stderr():  # drop what is queued so the player gets on to b
            assert time.monotonic() < deadline, srv.stderr()[-2000:]
            req(port, "POST", "/v1/sessions/swap/interrupt")
            time.sleep(0.5)
        n = srv.stderr().count(line)
        row("7 input swapped for a link out of the grant while playing", f"skipped, {n} log line", n == 1)
        assert n == 1
        assert req(port, "DELETE", "/v1/sessions/swap")[0] == 200
    finally:
        for n in ("a.wav", "b.wav"):
            (media / n).unlink(missing_ok=True)


def test_7_one_rtmp_stream_is_one_claim_however_it_is_spelled(world):
    port = world["port"]
    assert post_session(port, {"name": "r1", "rtmp": "rtmp://127.0.0.1:1/live/k"})[0] == 201
    try:
        for url, want in (("rtmp://127.0.0.1:01/live/k", 400), ("rtmp://127.0.0.1:+1/live/k", 400),
                          ("rtmp://127.0.0.1.:1/live/k", 409), ("rtmp://127.0.0.1:1/live/k", 409)):
            a = post_session(port, {"name": "r2", "rtmp": url})
            ok = is_json_error(a, want)
            row(f"7 second session to {url}", str(a[0]), ok)
            assert ok, (url, a)
        a = post_session(port, {"name": "r2", "rtmp": "rtmp://127.0.0.1:1/live/other"})
        assert a[0] == 201, a  # another stream key on the same server is another stream
        assert req(port, "DELETE", "/v1/sessions/r2")[0] == 200
    finally:
        assert req(port, "DELETE", "/v1/sessions/r1")[0] == 200


def test_7_empty_websocket_frames_do_not_keep_a_socket_active(world):
    """8 clients (the per-session cap) each send an empty binary frame twice a second: no audio,
    so after the eviction threshold a new client with speech still gets in."""
    port = world["port"]

    async def go():
        import aiohttp

        async with aiohttp.ClientSession() as http:
            squat = [await http.ws_connect(f"http://127.0.0.1:{port}/v1/stream") for _ in range(8)]
            stop = asyncio.Event()

            async def keep_sending(w):
                while not stop.is_set() and not w.closed:
                    try:
                        await w.send_bytes(b"")
                    except (ConnectionError, RuntimeError):
                        return
                    await asyncio.sleep(0.5)

            senders = [asyncio.create_task(keep_sending(w)) for w in squat]
            await asyncio.sleep(3.0)  # past the 2 s eviction threshold, empty frames all along
            try:
                fresh = await http.ws_connect(f"http://127.0.0.1:{port}/v1/stream")
                code = 101
            except aiohttp.WSServerHandshakeError as e:
                fresh, code = None, e.status
            stop.set()
            await asyncio.gather(*senders)
            row("7 8 WebSockets sending empty frames, then a client with audio", str(code), code == 101)
            assert code == 101
            await fresh.send_bytes((tone(0.04) * 32767).astype("<i2").tobytes())
            for w in (*squat, fresh):
                await w.close()

    asyncio.run(go())


def test_7_the_operators_session_cannot_be_deleted_through_the_api(world):
    port, out = world["port"], world["out"]
    size0 = (out / "main.mkv").stat().st_size
    a = req(port, "DELETE", "/v1/sessions/main")
    ok = is_json_error(a, 403)
    row("7 DELETE /v1/sessions/main (the operator's session)", str(a[0]), ok)
    assert ok, a
    st = req(port, "GET", "/v1/sessions/main/status")[1]
    assert st["outputs"][0]["connected"]
    deadline = time.monotonic() + 60
    while (out / "main.mkv").stat().st_size <= size0:  # still recording
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # an API client's own session is still its to delete
    assert post_session(port, {"name": "mine", "rtmp": "rtmp://127.0.0.1:1/live/k"})[0] == 201
    assert req(port, "DELETE", "/v1/sessions/mine")[0] == 200


# --------------------------------------------------------------- 8. the preview page and WebRTC

def _browser_offer() -> str:
    """A real WebRTC offer (aiortc as the browser: receive video and audio), its ICE candidates
    inside, as a page would POST it."""
    aiortc = pytest.importorskip("aiortc")

    async def make():
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_8_the_preview_page_and_its_webrtc_endpoint_open_no_hole(tmp_path):
    tf = tmp_path / "token"
    tf.write_text(TOKEN + "\n")
    srv = Live(tmp_path, "--token-file", tf, "-o", tmp_path / "p.mkv", "--max-viewers", "1")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    sdp = {"Content-Type": "application/sdp"}
    try:
        port = srv.port
        # the page: static, no data, served without the token; framing and foreign scripts refused
        code, page = req(port, "GET", "/")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        r.read()
        c.close()
        csp = headers.get("content-security-policy", "")
        ok = (code == 200 and "<video" in page and TOKEN not in page and "frame-ancestors 'none'" in csp
              and "access-control-allow-origin" not in headers and headers.get("x-content-type-options") == "nosniff")
        row("8 GET / without a token: the page only, no CORS, no framing", str(code), ok)
        assert ok, (code, headers)
        a = req(port, "GET", "/", headers={"Host": f"attacker.example:{port}"})
        row("8 GET / with Host: attacker.example (DNS rebinding)", str(a[0]), is_json_error(a, 421))
        assert is_json_error(a, 421)
        for path in ("/static/../pyproject.toml", "/static/%2e%2e/api/server.py", "/static/index.html/", "/index.html"):
            a = req(port, "GET", path)
            assert a[0] == 404 or is_json_error(a, 401), (path, a)  # never a file of the package tree
        # the signalling endpoint: token, Origin, content type, size, count
        offer = _browser_offer().encode()
        a = req(port, "POST", "/v1/webrtc", offer, sdp)
        row("8 POST /v1/webrtc without the token", str(a[0]), is_json_error(a, 401))
        assert is_json_error(a, 401)
        a = req(port, "POST", "/v1/webrtc", offer, {**sdp, **auth, "Origin": "http://evil.example"})
        row("8 POST /v1/webrtc from a foreign Origin (token and all)", str(a[0]), is_json_error(a, 403))
        assert is_json_error(a, 403)
        a = req(port, "OPTIONS", "/v1/webrtc", headers={"Origin": "http://evil.example",
                                                        "Access-Control-Request-Method": "POST"})
        assert a[0] in (403, 405), a  # no preflight is ever granted
        a = req(port, "POST", "/v1/webrtc", offer, {"Content-Type": "text/plain", **auth})
        row("8 offer as text/plain (a 'simple' cross-site POST)", str(a[0]), is_json_error(a, 415))
        assert is_json_error(a, 415)
        a = req(port, "POST", "/v1/webrtc", b"v=0\r\n" + b"a=x\r\n" * 20000, {**sdp, **auth})
        row("8 SDP offer of 120 KB", str(a[0]), is_json_error(a, 413))
        assert is_json_error(a, 413)
        a = req(port, "POST", "/v1/webrtc", b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nnonsense\r\n", {**sdp, **auth})
        row("8 malformed SDP", str(a[0]), is_json_error(a, 400))
        assert is_json_error(a, 400)
        text = offer.decode()
        lines = text.split("\r\n")
        broken = {"truncated": text[: len(text) // 2], "lines reversed": "\r\n".join(lines[::-1]),
                  "no fingerprint": "\r\n".join(ln for ln in lines if not ln.startswith("a=fingerprint")),
                  "no ICE credentials": "\r\n".join(ln for ln in lines if not ln.startswith("a=ice-")),
                  "NUL byte": text.replace("v=0", "v=0\x00"),
                  "unknown codecs only": text.replace("VP8/", "X1/").replace("H264/", "X2/").replace("opus/", "X3/")
                                             .replace("rtx/", "X4/").replace("PCMU/", "X5/").replace("PCMA/", "X6/")}
        answers = {what: req(port, "POST", "/v1/webrtc", body.encode(), {**sdp, **auth}) for what, body in broken.items()}
        ok = all(is_json_error(a, 400) for a in answers.values())
        row("8 malformed offers (truncated, reordered, no fingerprint/ICE, NUL, no codec)",
            " ".join(sorted({str(a[0]) for a in answers.values()})), ok)
        assert ok, answers
        st = req(port, "GET", "/v1/status", headers=auth)[1]
        assert st["viewers"] == 0 and st["api"]["webrtc_viewers"] == 0  # refused offers hold nothing
        a = req(port, "POST", "/v1/sessions/nobody/webrtc", offer, {**sdp, **auth})
        assert is_json_error(a, 404)
        # --max-viewers 1: the second viewer waits for the first to hang up
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/webrtc", offer, {**sdp, **auth, "Origin": f"http://127.0.0.1:{port}"})
        r = c.getresponse()
        code, answer, where = r.status, r.read().decode(), r.getheader("Location")
        c.close()
        assert code == 201 and answer.startswith("v=0") and where.startswith("/v1/webrtc/"), (code, answer)
        assert TOKEN not in answer
        a = req(port, "POST", "/v1/webrtc", offer, {**sdp, **auth})
        row("8 a viewer over --max-viewers", str(a[0]), is_json_error(a, 503))
        assert is_json_error(a, 503)
        assert req(port, "GET", "/v1/status", headers=auth)[1]["viewers"] == 1
        # hanging up takes the token too, and an id that is not a viewer tells nothing
        assert is_json_error(req(port, "DELETE", where), 401)
        assert is_json_error(req(port, "DELETE", "/v1/webrtc/0123456789abcdef", headers=auth), 404)
        assert req(port, "DELETE", where, headers=auth)[0] == 200
        assert req(port, "GET", "/v1/status", headers=auth)[1]["viewers"] == 0
        code, _ = req(port, "POST", "/v1/webrtc", offer, {**sdp, **auth})
        assert code == 201  # the place is free again
    finally:
        rc, left = srv.stop()
    assert rc == 0 and not left
    assert "Traceback" not in srv.stderr(), srv.stderr()[-3000:]


def _offer_with(video: str = "recvonly", audio: str | None = "recvonly", datachannel: bool = False) -> str:
    """A real aiortc offer: video sent ("sendrecv", a synthetic camera) or only received, audio
    or none, a data channel or not."""
    aiortc = pytest.importorskip("aiortc")
    from aiortc.mediastreams import VideoStreamTrack

    async def make():
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        if video == "sendrecv":
            pc.addTransceiver(VideoStreamTrack(), direction="sendrecv")
        elif video:
            pc.addTransceiver("video", direction=video)
        if audio:
            pc.addTransceiver("audio", direction=audio)
        if datachannel:
            pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_8_offers_that_would_spray_udp_or_pile_up_frames_are_refused(tmp_path):
    """Issue 18, found by attacking it: an offer with a thousand ICE candidates made the server
    send ~4200 STUN checks in 20 s to addresses of the client's choosing, and an offer that sends
    video (a camera) had aiortc decode it into a queue nobody reads (RSS +13 MB/s, not given
    back on hang-up). Both are refused now, as are offers without media of ours; the server
    sends nothing to the candidates' addresses."""
    srv = Live(tmp_path, "-o", tmp_path / "p.mkv", env={"DHLIVE_API_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/sdp"}
    catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # every candidate points here
    catcher.bind(("127.0.0.1", 0))
    catcher.settimeout(0.1)
    cport = catcher.getsockname()[1]
    try:
        port = srv.port
        plain = _offer_with()
        lines = [ln for ln in plain.split("\r\n") if not ln.startswith("a=candidate") and ln != "a=end-of-candidates"]
        flood = []
        for ln in lines:
            flood.append(ln)
            if ln == "a=mid:0":  # 800 candidates, all at our catcher (a third party)
                flood += [f"a=candidate:{i} 1 udp {2130706431 - i} 127.0.0.1 {cport} typ host" for i in range(800)]
                flood.append("a=end-of-candidates")
        cases = {
            "800 ICE candidates": "\r\n".join(flood),
            "sends video (a camera)": _offer_with(video="sendrecv"),
            "data channel only, 'm=video' in an attribute": _offer_with(video="", audio=None, datachannel=True)
            + "a=x-m=video\r\n",
            "media plus a data channel": _offer_with(datachannel=True),
            "two video sections": plain.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
            + plain[plain.index("m=video"):plain.index("m=audio")].replace("a=mid:0", "a=mid:2"),
        }
        answers = {what: req(port, "POST", "/v1/webrtc", body.encode(), auth) for what, body in cases.items()}
        for what, a in answers.items():
            row(f"8 offer: {what}", f"{a[0]} {a[1].get('error', '') if isinstance(a[1], dict) else ''}"[:90],
                is_json_error(a, 400))
        assert all(is_json_error(a, 400) for a in answers.values()), answers
        assert "800 UDP ICE candidates" in answers["800 ICE candidates"][1]["error"]
        st = req(port, "GET", "/v1/status", headers=auth)[1]
        assert st["viewers"] == 0 and st["api"]["webrtc_viewers"] == 0  # refused offers hold nothing
        # nothing was sent to the candidates: what a check would have reached within a few
        # seconds (aioice paces its first checks 20 ms apart) never came
        got, deadline = 0, time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                catcher.recvfrom(2048)
                got += 1
            except socket.timeout:
                pass
        assert got == 0, got
        # what a browser offers still connects: video received, microphone audio sent
        code, _ = req(port, "POST", "/v1/webrtc", _offer_with(audio="sendrecv").encode(), auth)
        assert code == 201
    finally:
        catcher.close()
        rc, left = srv.stop()
    assert rc == 0 and not left
    assert "Traceback" not in srv.stderr(), srv.stderr()[-3000:]
