"""Real servers on loopback for the dashboards' front door: the API (uvicorn, in a thread) and
Voila (a subprocess), on a copy of the demo organisation with three signed-in users.

One set of servers per test module (Voila with a preheated kernel takes a few seconds).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpp_lib.auth.roles import grant_role
from dpp_lib.auth.sessions import create_session
from dpp_lib.auth.users import create_user
from dpp_lib.dashboards.voila import VoilaServer
from dpp_lib.settings import Settings, ensure_secrets
from dpp_lib.store.db import make_engine
from dpp_lib.store.types import now_utc
from dpp_lib.views.common import load_org
from ingest_service.runtime import free_port, running_api
from tests.conftest import DemoOrg
from tests.support import ROOT

PASSWORD = "correct horse battery staple"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass(frozen=True)
class SignedIn:
    user_id: uuid.UUID
    name: str
    email: str
    token: str  # the session cookie's value


@dataclass(frozen=True)
class Site:
    """The running front door: ``base`` is the API's origin; ``voila`` Voila's (loopback)."""

    base: str
    voila: VoilaServer
    settings: Settings
    engine: sa.Engine
    streams: dict[str, uuid.UUID]  # delivery stream name → id
    ann: SignedIn  # viewer of the payments delivery stream only
    bob: SignedIn  # viewer of the lending delivery stream only
    admin: SignedIn  # platform admin

    def page(self, query: str = "") -> str:
        return f"{self.base}/dashboards/voila/render/whoami.ipynb{query}"


def make_user(conn: sa.Connection, name: str, *grants: tuple[str, uuid.UUID | None]) -> SignedIn:
    email = f"{name.split()[0].lower()}@example.com"
    user = create_user(
        conn,
        email=email,
        display_name=name,
        password=PASSWORD,
        auth_source="database",
        actor=None,
    )
    for role, stream_id in grants:
        grant_role(conn, user_id=user.user_id, role=role, delivery_stream_id=stream_id, actor=None)
    _, token = create_session(
        conn,
        user_id=user.user_id,
        auth_method="database",
        now=now_utc(),
        duration=timedelta(hours=2),
    )
    return SignedIn(user.user_id, name, email, token)


@pytest.fixture(scope="module")
def site(demo_sqlite: DemoOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("front-door")
    source = Path(demo_sqlite.url.removeprefix("sqlite:///"))
    shutil.copy(source, base / "dpp.sqlite3")
    url = f"sqlite:///{base / 'dpp.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        streams = {s.name: s.stream_id for s in load_org(conn).delivery}
        ann = make_user(conn, "Ann Payments", ("viewer", streams["payments"]))
        bob = make_user(conn, "Bob Lending", ("viewer", streams["lending"]))
        admin = make_user(conn, "Ada Admin", ("platform_admin", None))
    shutil.copytree(demo_sqlite.settings.secrets_dir, base / "secrets")
    # Only the page these tests open: Voila preheats a kernel for every notebook it serves.
    pages = base / "pages"
    pages.mkdir()
    shutil.copy(ROOT / "notebooks" / "dashboards" / "whoami.ipynb", pages)
    settings = demo_sqlite.settings.model_copy(
        update={
            "database_url": url,
            "var_dir": base,
            "secrets_dir": base / "secrets",
            "api_compute_in": "threads",
            "voila_port": free_port(),
            "voila_pool_size": 1,  # the production path: preheated kernel, wait_for_request
            "dashboards_dir": pages,
        }
    )
    ensure_secrets(settings)  # session_key signs the sign-in form's CSRF token
    with VoilaServer(settings) as voila, running_api(settings) as api:
        yield Site(api, voila, settings, engine, streams, ann, bob, admin)
    engine.dispose()
