"""Schemathesis against ``/openapi.json`` on the demo organisation: at least 1,000 generated
requests over every documented operation, zero server errors, every error in the envelope
(DESIGN §6), every read answer conforming to its documented schema."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ingest_service.app import create_app
from tests.conftest import DemoOrg
from tests.ingest_service.api_support import bearer, keys_for

MIN_REQUESTS = 1_000
EXAMPLES_PER_OPERATION = 90
UNLIMITED = "summary=1000000,trends=1000000,breakdown=1000000,drilldown=1000000"


# Real stream names, so generated requests reach the computations and not only the 404s.
KNOWN = {"stream": ["payments", "core-api", "lending"], "tech_stream": ["core-api", "auth"]}


def strategies(operation: Any) -> list[Any]:
    """Random valid requests, the same with real stream names, and invalid requests."""
    out = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
    names = {p.name for p in operation.query} if operation.query else set()
    for parameter, values in KNOWN.items():
        if parameter in names:
            out += [operation.as_strategy(query={parameter: v}) for v in values]
    return out


@pytest.mark.slow
def test_generated_requests_never_break_the_api(demo_sqlite: DemoOrg) -> None:
    app = create_app(demo_sqlite.settings.model_copy(update={"api_rate_limits": UNLIMITED}))
    auth = bearer(keys_for(demo_sqlite).admin)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    requests: Counter[str] = Counter()
    answered: Counter[str] = Counter()  # operation → 2xx answers
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]

    current = {"label": ""}
    for operation in operations:
        current["label"] = operation.label

        @given(case=st.one_of(*strategies(operation)))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(headers={**auth, **(case.headers or {})})
            requests[current["label"]] += 1
            answered[current["label"]] += response.status_code < 300
            where = f"{case.method} {case.formatted_path} {case.query}"
            assert response.status_code < 500, f"{where}: {response.text[:300]}"
            if response.status_code >= 400:
                body = response.json()
                assert body["status"] == "error", body
                assert body["error"]["code"] and body["message"] and body["request_id"], body
            elif case.method == "GET" and case.path.startswith("/api/v1/"):
                case.validate_response(response)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:800]}")

    assert not failures, "\n\n".join(failures)
    assert sum(requests.values()) >= MIN_REQUESTS, dict(requests)
    assert len(requests) == len(operations) >= 18, sorted(requests)
    # generated requests must reach the computations, not only the parameter checks
    reads = {k: v for k, v in answered.items() if k.startswith("GET /api/v1/")}
    assert sum(reads.values()) >= 200 and all(reads.values()), dict(answered)
