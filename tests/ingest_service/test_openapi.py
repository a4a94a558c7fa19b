"""The OpenAPI document: every endpoint documented with a response model, its errors and an
example that is a real answer of the demo organisation (regenerated here and compared), and
``/docs`` served without loading anything from the internet."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest_service.app import create_app
from ingest_service.examples import generate, normalised
from ingest_service.openapi import examples
from tests.conftest import DemoOrg

OPERATIONS = {
    ("get", "/api/v1/streams/delivery"),
    ("get", "/api/v1/streams/tech"),
    ("get", "/api/v1/sprints"),
    ("get", "/api/v1/metrics/realtime"),
    ("get", "/api/v1/metrics/diagnostic"),
    ("get", "/api/v1/metrics/trends"),
    ("get", "/api/v1/metrics/forecast"),
    ("get", "/api/v1/metrics/pulse"),
    ("get", "/api/v1/metrics/cross-stream"),
    ("get", "/api/v1/metrics/breakdown"),
    ("get", "/api/v1/metrics/drilldown"),
    ("get", "/api/v1/admin/data-quality"),
    ("get", "/api/v1/admin/integration-health"),
    ("get", "/api/v1/admin/system-alerts"),
    ("post", "/api/v1/pr-events/{event_id}/link-ticket"),
    ("get", "/api/v1/cache/stats"),
    ("post", "/api/v1/cache/invalidate"),
}


def test_every_endpoint_has_a_model_errors_and_a_real_example(demo_sqlite: DemoOrg) -> None:
    with TestClient(create_app(demo_sqlite.settings)) as client:
        spec = client.get("/openapi.json").json()
    found = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert found >= OPERATIONS
    for method, path in OPERATIONS:
        responses = spec["paths"][path][method]["responses"]
        content = responses["200"]["content"]["application/json"]
        assert "$ref" in content["schema"] or content["schema"], path
        assert "example" in content or len(content.get("examples", {})) == 2, path
        assert {"401", "403", "429"} <= set(responses), path
        assert spec["paths"][path][method].get("description"), path
    for path in ("/health", "/health/deep"):
        assert (
            "example"
            in spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        ), path
    trends = spec["paths"]["/api/v1/metrics/trends"]["get"]["responses"]["200"]["content"]
    assert set(trends["application/json"]["examples"]) == {"default", "summary"}


@pytest.mark.slow
def test_the_committed_examples_are_what_the_demo_organisation_answers(
    demo_sqlite: DemoOrg, tmp_path: Path
) -> None:
    """Regenerated on a copy (the generator links a PR and flushes the cache)."""
    source = demo_sqlite.url.removeprefix("sqlite:///")
    copy = tmp_path / "copy.sqlite3"
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    settings = demo_sqlite.settings.model_copy(update={"database_url": f"sqlite:///{copy}"})
    fresh = generate(settings)
    assert normalised(fresh) == normalised(examples()), (
        "ingest_service/openapi_examples.json is out of date: run `dpp api examples --write`"
    )


def test_docs_pages_load_only_local_assets(demo_sqlite: DemoOrg) -> None:
    with TestClient(create_app(demo_sqlite.settings)) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources, page
            for url in sources:
                assert not re.match(r"(https?:)?//", url), (page, url)
                assert client.get(url).status_code == 200, (page, url)
            assert "fonts.googleapis" not in html and "cdn" not in html.lower()
