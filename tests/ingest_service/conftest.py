from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from ingest_service.app import create_app
from ingest_service.worker import Worker


@pytest.fixture
def client(settings: Settings, org: sa.Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def worker(settings: Settings, org: sa.Engine) -> Worker:
    return Worker.from_settings(settings, org)
