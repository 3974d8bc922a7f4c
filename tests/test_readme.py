"""The README's commands, run as a newcomer would: in a fresh clone, in order, in one shell.

Every fenced ```sh block of README.md is a step of one bash session (`set -euo pipefail`), so
`cd`, `source .venv/bin/activate` and files made by earlier blocks carry over as in a terminal.
A block whose first line is a comment saying it runs "in a second/third/another terminal" and
"keeps running" is started in the background in its own process group (a second terminal) and
killed at the end. The RTMP and API ports of the README (1935, 8765) are swapped for free ports,
HOME is a temp folder (the wheel's venv goes there), SDL uses its dummy drivers so ffplay runs
headless; nothing else is changed. A background step that ends by itself (the live runs with
--duration) must end with status 0; those still running at the end (nginx, ffplay) are stopped. Output of each block is kept in the test's temp folder.

It installs everything from scratch (make demo, make dist, a venv for the wheel): several
minutes, so it runs when DHLIVE_TEST_README=1 (.ci/run sets it), not in every `make test`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import rtmp_server

ROOT = Path(__file__).resolve().parents[1]
BACKGROUND = re.compile(r"#\s*in (a second|a third|another) terminal.*keeps running", re.I)

from_scratch = pytest.mark.skipif(os.environ.get("DHLIVE_TEST_README") != "1",
                                  reason="installs from scratch (minutes): set DHLIVE_TEST_README=1 (.ci/run does)")


def sh_blocks(markdown: str) -> list[tuple[str, bool]]:
    """(code, runs in the background) for every ```sh fenced block, in order."""
    out = []
    for m in re.finditer(r"^```sh[^\n]*\n(.*?)^```\s*$", markdown, re.M | re.S):
        code = m.group(1)
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        out.append((code, bool(BACKGROUND.search(first))))
    return out


def session_script(blocks: list[tuple[str, bool]], logs: Path) -> str:
    lines = ["set -euo pipefail"]
    for i, (code, background) in enumerate(blocks, 1):
        lines.append(f"echo '=== README block {i} ===' >&2")
        if background:
            script = logs / f"block{i}.sh"
            script.write_text("set -euo pipefail\n" + code)
            # its exit status goes to its log: a background step that fails fails the test
            lines.append(f"setsid bash -c 'bash {script}; echo \"exit status $?\"' > {logs}/block{i}.log 2>&1 &")
            lines.append(f"echo $! >> {logs}/pgids")
        else:
            lines.append(code.rstrip("\n"))
    return "\n".join(lines) + "\n"


def test_sh_blocks_are_found_and_background_ones_marked():
    blocks = sh_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 10
    assert blocks[0][0].startswith("make demo")
    assert sum(bg for _, bg in blocks) >= 4  # nginx, the live stream, ffplay, the API session


@pytest.mark.slow
@pytest.mark.timeout(3000)
@from_scratch
def test_every_readme_command_works_in_a_fresh_clone(tmp_path):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", head], check=True)
    readme = (clone / "README.md").read_text()
    ports = {"1935": str(rtmp_server.free_port()), "8765": str(rtmp_server.free_port())}
    readme = re.sub(r"\b(1935|8765)\b", lambda m: ports[m.group(1)], readme)
    logs = tmp_path / "logs"
    logs.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy",
               # a cache only: the same downloads as on a first run, fetched once
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    script = logs / "session.sh"
    script.write_text(session_script(sh_blocks(readme), logs))
    try:
        r = subprocess.run(["bash", str(script)], cwd=clone, env=env, capture_output=True, text=True, timeout=2700)

        def background_logs() -> str:
            return "\n".join(f"--- {p.name}\n{p.read_text()[-800:]}" for p in sorted(logs.glob("block*.log")))

        # the 15 s live stream ends by itself; with warm caches the foreground steps can finish
        # first, so wait for that event (bounded) before reading what the background steps said
        deadline = time.monotonic() + 180
        while r.returncode == 0 and not re.search(r"exit status \d", background_logs()) and time.monotonic() < deadline:
            time.sleep(0.5)
        # read before the background steps are stopped: what ended by itself ended well
        background = background_logs()
    finally:
        pgids = (logs / "pgids").read_text().split() if (logs / "pgids").exists() else []
        for pgid in pgids:
            try:
                os.killpg(int(pgid), signal.SIGTERM)
            except ProcessLookupError:
                pass
    assert r.returncode == 0, f"{r.stderr[-3000:]}\n{background}"
    failed = re.findall(r"exit status (?!0\b)\d+", background)
    assert not failed, background
    assert re.search(r"exit status 0\b", background), background  # the 15 s live stream ended by itself, well
    try_dir = clone / "try"
    for made in ("hello.mp4", "hello.json", "story.mp4", "astronaut.mp4", "avatars/astronaut/preview.png",
                 "baseline.mp4", "ffmpeg.mp4"):
        assert (try_dir / made).stat().st_size > 0, made
    assert (clone / "out" / "demo.mp4").stat().st_size > 0
    assert '"state"' in r.stdout or "state" in r.stdout  # the API answered with its status
    assert "Traceback" not in r.stderr + background
