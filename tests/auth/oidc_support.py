"""A real OpenID provider for the OIDC tests: npm ``oidc-provider`` (tests/oidc/provider.mjs)
on an ephemeral loopback port, plus a driver for its login and consent pages over HTTP.

``make oidc-provider`` (a prerequisite of ``make test``) installs its packages. Without them
(or without Node.js) the tests fail under CI and are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
import uvicorn

from dpp_lib.settings import Settings
from ingest_service.app import create_app

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "tests" / "oidc"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

CLIENT_ID = "dpp-test"
CLIENT_SECRET = "oidc-client-secret-for-tests-5c1d"
OTHER_CLIENT_ID = "another-app"
OTHER_CLIENT_SECRET = "another-app-secret-for-tests-77aa"

# Test accounts: the login typed in the provider's form → the claims of its ID tokens.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "Alice.Admin@example.com",
        "name": "Alice Admin",
        "groups": ["dpp-platform-admins", "staff"],
    },
    "pat": {
        "email": "pat.payments@example.com",
        "name": "Pat Payments",
        "groups": ["dpp-payments-leads"],
    },
    "nobody": {"email": "nobody@example.com", "name": "No Groups", "groups": []},
}


def client_registration(client_id: str, secret: str, redirect_uris: list[str]) -> dict[str, Any]:
    """A confidential web client (client_secret_basic at the token endpoint)."""
    return {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the OIDC test provider cannot run under CI: {reason}")
    pytest.skip(f"the OIDC test provider cannot run: {reason}")


@dataclass(frozen=True)
class RunningProvider:
    issuer: str
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@contextmanager
def run_provider(
    workdir: Path, *, clients: list[dict[str, Any]], accounts: dict[str, Any] | None = None
) -> Iterator[RunningProvider]:
    """Start provider.mjs with ``clients`` and ``accounts``; stop it on exit."""
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js (node) is not installed; `make oidc-provider` installs it")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        _unavailable("tests/oidc/node_modules is missing; run `make oidc-provider`")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "provider-config.json"
    config.write_text(json.dumps({"clients": clients, "accounts": accounts or ACCOUNTS}))
    log_file = workdir / "provider.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(node), str(PROVIDER_DIR / "provider.mjs"), str(config)],
            cwd=PROVIDER_DIR,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    try:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=30):
            pytest.fail(f"the OIDC test provider did not start in 30 s:\n{log_file.read_text()}")
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"the OIDC test provider exited:\n{log_file.read_text()}")
        yield RunningProvider(issuer=json.loads(line)["issuer"], log_file=log_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def sign_in_at_provider(
    authorize_url: str, *, login: str, redirect_uri: str, consent: bool = True
) -> str:
    """Follow ``authorize_url`` through the provider's login (any password) and consent
    pages as a browser would; returns the URL the provider sends the browser back to
    (``redirect_uri`` with ``code`` and ``state``, or ``error``)."""
    url = authorize_url
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        for _ in range(12):
            if url.startswith(redirect_uri):
                return url
            response = http.get(url)
            if response.status_code == 200 and 'value="login"' in response.text:
                response = http.post(
                    url, data={"prompt": "login", "login": login, "password": "anything"}
                )
            elif response.status_code == 200 and 'value="consent"' in response.text:
                if not consent:
                    response = http.get(url.rstrip("/") + "/abort")
                else:
                    response = http.post(url, data={"prompt": "consent"})
            if response.status_code not in (302, 303):
                raise AssertionError(
                    f"provider answered {response.status_code} at {url}: {response.text[:500]}"
                )
            url = urljoin(url, response.headers["location"])
    raise AssertionError(f"no redirect back to {redirect_uri} after 12 hops (last: {url})")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def reserve_port() -> socket.socket:
    """A bound loopback socket: its port is known before the server that will use it is
    made (the provider must know the app's redirect URI first)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(settings: Settings, sock: socket.socket) -> Iterator[str]:
    """The API under uvicorn on ``sock`` (a real server, in a thread); yields its origin."""
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dpp-api-oidc", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the API did not start under uvicorn")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
