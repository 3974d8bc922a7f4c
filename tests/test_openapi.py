"""The live API's OpenAPI document: valid (openapi-spec-validator), the same routes as the
server's router and as README's endpoint table, served at /openapi.json by a real
`dhlive live --listen`; /healthz without a token; 201 with a Location that answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from openapi_spec_validator import validate

from dhlive_cli.api import ApiServer
from dhlive_cli.api.openapi import openapi
from tests import rtmp_server
from tests.test_api import engine, make_session  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
TOKEN = "an-api-token-for-the-openapi-test-0123"


def _documented() -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in openapi()["paths"].items() for m in item if m in METHODS}


def _readme_endpoints() -> set[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n### Live API\n", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE)` \| `([^`]+)` \|", section, flags=re.M)
    assert len(rows) >= 10, "README's Live API table was not found"
    return set(rows)


def test_document_is_valid_openapi():
    validate(openapi())
    json.loads(json.dumps(openapi()))  # plain JSON, nothing Python-only in it


def test_document_has_exactly_the_servers_routes(make_session):  # noqa: F811
    srv = ApiServer(make_session())  # not started: the route table is all we read
    routes = {(m, p) for m, p, _ in srv.routes()}
    assert routes == _documented(), (routes ^ _documented())


def test_document_describes_every_endpoint_the_readme_lists():
    readme = _readme_endpoints()
    assert readme == _documented(), {"README only": readme - _documented(), "OpenAPI only": _documented() - readme}


def _http(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def test_served_document_healthz_and_location(tmp_path):
    port = rtmp_server.free_port()
    out = tmp_path / "rec"
    out.mkdir()
    env = {**os.environ, "DHLIVE_API_TOKEN": TOKEN}
    p = subprocess.Popen([sys.executable, "-m", "dhlive_cli", "live", "--quiet", "--preset", "low",
                          "--listen", f"127.0.0.1:{port}", "--output-dir", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 120
        while True:  # the API answers once models are loaded
            try:
                code, _, body = _http(port, "GET", "/healthz")
                break
            except OSError:
                assert p.poll() is None, p.stderr.read().decode()
                assert time.monotonic() < deadline, "the API never answered"
                time.sleep(0.2)
        assert code == 200 and json.loads(body) == {"status": "ok"}  # no token needed
        assert _http(port, "GET", "/healthz", headers={"Host": "evil.example:80"})[0] == 421  # guards still apply
        assert _http(port, "GET", "/openapi.json")[0] == 401  # everything else needs the token
        code, headers, body = _http(port, "GET", "/openapi.json", headers=auth)
        assert code == 200 and headers["Content-Type"].startswith("application/json")
        served = json.loads(body)
        validate(served)
        assert served == openapi()
        # a client resolves the servers' URL against where it fetched the document: this server
        # (a fixed "http://127.0.0.1:8765" sent generated clients to another port)
        assert [sv["url"] for sv in served["servers"]] == ["/"]
        spec = json.dumps({"name": "loc", "output": "loc.mkv", "size": "320x180"}).encode()
        code, headers, body = _http(port, "POST", "/v1/sessions", spec, {**auth, "Content-Type": "application/json"})
        assert code == 201, body
        assert headers["Location"] == "/v1/sessions/loc"
        code, _, body = _http(port, "GET", headers["Location"], headers=auth)
        assert code == 200 and json.loads(body)["session"] == "loc"
        assert _http(port, "DELETE", "/v1/sessions/loc", headers=auth)[0] == 200
    finally:
        p.terminate()
        err = p.communicate(timeout=30)[1].decode()
    assert p.returncode == 0, err
