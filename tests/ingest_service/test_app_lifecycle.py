"""An API process gives back what it holds when it stops: database connections and its
computing processes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from ingest_service.app import create_app
from ingest_service.state import ServiceState


def test_stopping_the_app_closes_its_connections(settings: Settings, org: sa.Engine) -> None:
    app = create_app(settings)
    state: ServiceState = app.state.dpp
    with TestClient(app) as client:
        assert client.get("/health/deep").status_code in (200, 503)
        assert state.engine.pool.checkedin() >= 1  # the deep check used the engine
    assert state.engine.pool.checkedin() == 0
    assert state.computer._executor is None
