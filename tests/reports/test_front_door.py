"""``/reports/`` on the front door: sign-in required, a user sees only the reports of the
delivery streams they may see, another stream's report and a missing one get the same
answer, nothing outside the published pages is reachable, and every page carries a
Content-Security-Policy that lets it load nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from dpp_lib.settings import ensure_secrets
from dpp_lib.store.db import make_engine
from dpp_lib.views.common import load_org
from ingest_service.app import create_app
from tests.dashboards.conftest import SignedIn, make_user
from tests.reports.conftest import LENDING, PAYMENTS, Published


@dataclass(frozen=True)
class Door:
    client: TestClient
    root: Path
    ann: SignedIn  # viewer of payments only
    admin: SignedIn

    def get(self, path: str, who: SignedIn | None = None) -> httpx.Response:
        self.client.cookies.clear()
        if who is not None:
            self.client.cookies.set("dpp_session", who.token)
        answer: httpx.Response = self.client.get(path, follow_redirects=False)
        return answer


@pytest.fixture(scope="module")
def door(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    base = tmp_path_factory.mktemp("reports-door")
    source = Path(published.org.url.removeprefix("sqlite:///"))
    shutil.copy(source, base / "dpp.sqlite3")
    url = f"sqlite:///{base / 'dpp.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        streams = {s.name: s.stream_id for s in load_org(conn).delivery}
        ann = make_user(conn, "Ann Payments", ("viewer", streams["payments"]))
        admin = make_user(conn, "Ada Admin", ("platform_admin", None))
    engine.dispose()
    shutil.copytree(published.org.settings.secrets_dir, base / "secrets")
    (base / "outside.html").write_text("<p>not a report</p>")
    settings = published.org.settings.model_copy(
        update={
            "database_url": url,
            "var_dir": base,
            "secrets_dir": base / "secrets",
            "reports_dir": published.root,
            "api_compute_in": "threads",
            "dashboards_enabled": False,
        }
    )
    ensure_secrets(settings)
    with TestClient(create_app(settings)) as client:
        yield Door(client, published.root, ann, admin)


def test_without_a_session_every_path_redirects_to_sign_in(door: Door) -> None:
    for path in ("/reports/", f"/reports/{PAYMENTS}", "/reports/nope/nope.html", "/reports/x"):
        answer = door.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["location"] == f"/login?next={path}"
    root = door.get("/reports")
    assert root.status_code == 307 and root.headers["location"] == "/reports/"


def test_the_index_lists_only_the_streams_the_user_may_see(door: Door) -> None:
    ann = door.get("/reports/", door.ann)
    assert ann.status_code == 200
    assert f'href="{PAYMENTS}"' in ann.text and "PAY Sprint 105" in ann.text
    assert "LEND" not in ann.text and "lending" not in ann.text.lower()
    assert "default-src 'none'" in ann.headers["content-security-policy"]
    admin = door.get("/reports/", door.admin)
    assert f'href="{PAYMENTS}"' in admin.text and f'href="{LENDING}"' in admin.text


def test_a_report_in_scope_is_served_as_published_with_a_strict_policy(door: Door) -> None:
    answer = door.get(f"/reports/{PAYMENTS}", door.ann)
    assert answer.status_code == 200
    assert answer.content == (door.root / PAYMENTS).read_bytes()
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; img-src data:; style-src 'unsafe-inline'")
    assert "script-src" not in policy  # the reports have no script at all
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_another_streams_report_and_a_missing_one_get_the_same_answer(door: Door) -> None:
    other = door.get(f"/reports/{LENDING}", door.ann)
    missing = door.get("/reports/payments/pay-sprint-999.html", door.ann)
    no_stream = door.get("/reports/nowhere/pay-sprint-105.html", door.ann)
    for answer in (other, missing, no_stream):
        assert answer.status_code == 404
        assert answer.text == other.text
    assert "LEND" not in other.text
    assert door.get(f"/reports/{LENDING}", door.admin).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/reports/payments/..%2F..%2Foutside.html",
        "/reports/%2e%2e/outside.html",
        "/reports/..%2Foutside.html",
        "/reports/payments/%2e%2e%2f%2e%2e%2fdpp.sqlite3",
        "/reports/payments/pay-sprint-105.json",
        "/reports/runs/retro/payments/pay-sprint-105.ipynb",
        "/reports/payments/.pay-sprint-105.html",
        "/reports/index.html",
    ],
)
def test_nothing_but_published_pages_is_reachable(door: Door, path: str) -> None:
    answer = door.get(path, door.admin)
    assert answer.status_code == 404, path
    assert "not a report" not in answer.text and "sqlite" not in answer.text
