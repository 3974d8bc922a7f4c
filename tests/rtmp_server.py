"""A real RTMP server for tests: Debian nginx + libnginx-mod-rtmp in the foreground, killed by PID."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def available() -> bool:
    return NGINX is not None and MODULE.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtmpServer:
    """nginx-rtmp on 127.0.0.1:port with one application `live`. on_publish: an HTTP URL nginx
    asks before accepting a publish (a 2xx answer accepts it, anything else refuses it)."""

    def __init__(self, workdir: Path, port: int | None = None, on_publish: str | None = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""
load_module {MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.port};
        chunk_size 4096;
        application live {{ live on; record off; {f"on_publish {on_publish};" if on_publish else ""} }}
    }}
}}
""")
        self.conf = conf

    def url(self, key: str = "test") -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> "RtmpServer":
        self.proc = subprocess.Popen([NGINX, "-c", str(self.conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()[-400:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
