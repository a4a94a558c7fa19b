"""Kernel-side identity and the data layer's stream check (both backends), and the Voila
command line: loopback, offline template, identity header, no secret in argv."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.roles import grant_role
from dpp_lib.auth.users import create_user
from dpp_lib.dashboards import data, identity, pages
from dpp_lib.dashboards.voila import voila_argv, voila_env
from dpp_lib.settings import Settings
from dpp_lib.views.common import load_org

AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)


def test_query_params_take_the_last_value() -> None:
    env = {"QUERY_STRING": "stream=payments&stream=lending&zone=&x=a%20b"}
    assert identity.query_params(env) == {"stream": "lending", "zone": "", "x": "a b"}
    assert identity.query_params({}) == {}


@pytest.mark.parametrize("value", ["", "  ", "admin", "1 OR 1=1"])
def test_no_or_malformed_user_is_not_signed_in(value: str) -> None:
    with pytest.raises(identity.NotSignedIn):
        identity.signed_in_user_id({"HTTP_X_FORWARDED_USER": value})


def _scoped_user(conn: sa.Connection, stream: str) -> uuid.UUID:
    org = load_org(conn)
    stream_id = next(s.stream_id for s in org.delivery if s.name == stream)
    user = create_user(
        conn,
        email=f"{stream}@example.com",
        display_name=f"{stream} viewer",
        password="correct horse battery staple",
        auth_source="database",
        actor=None,
    )
    grant_role(conn, user_id=user.user_id, role="viewer", delivery_stream_id=stream_id, actor=None)
    return user.user_id


def test_the_data_layer_refuses_streams_outside_the_scope(org: sa.Engine) -> None:
    with org.begin() as conn:
        user_id = _scoped_user(conn, "payments")
        env = {"HTTP_X_FORWARDED_USER": str(user_id)}
        principal = identity.current_principal(conn, env)
        loaded = load_org(conn)
        lending = next(s for s in loaded.delivery if s.name == "lending")
        assert [s.name for s in data.visible_streams(loaded, principal).delivery] == ["payments"]
        assert data.visible_streams(loaded, principal).tech == ()
        assert data.delivery_stream(loaded, principal, "Payments").name == "payments"
        for other in ("lending", "LENDING", str(lending.stream_id), "no-such-stream", ""):
            with pytest.raises(data.StreamAccessDenied):
                data.stream_wip(conn, principal, other, as_of=AS_OF)
        wip = data.stream_wip(conn, principal, "payments", as_of=AS_OF)
        assert wip.stream.name == "payments" and wip.wip_total == sum(wip.by_stage.values())
        lines = [r.describe() for r in data.role_lines(conn, loaded, principal)]
        assert lines == ["viewer: delivery stream payments"]


def test_the_page_shows_the_access_message_and_no_figure(org: sa.Engine) -> None:
    with org.begin() as conn:
        env = {"HTTP_X_FORWARDED_USER": str(_scoped_user(conn, "payments"))}
        denied = pages.whoami_html(conn, stream="lending", as_of=AS_OF, environ=env)
        allowed = pages.whoami_html(conn, stream="payments", as_of=AS_OF, environ=env)
        anonymous = pages.whoami_html(conn, stream="payments", as_of=AS_OF, environ={})
    assert 'role="alert"' in denied and "dpp-stream-figure" not in denied
    assert "dpp-stream-figure" in allowed and 'role="alert"' not in allowed
    assert "dpp-not-signed-in" in anonymous and "dpp-user" not in anonymous


def test_an_unknown_or_deactivated_user_is_not_signed_in(org: sa.Engine) -> None:
    with org.connect() as conn, pytest.raises(identity.NotSignedIn):
        identity.current_principal(conn, {"HTTP_X_FORWARDED_USER": str(uuid.uuid4())})


def test_an_unscoped_principal_sees_every_stream(org: sa.Engine) -> None:
    everyone = Principal("user", str(uuid.uuid4()), "Ada", frozenset({"admin"}))
    with org.connect() as conn:
        loaded = load_org(conn)
        assert data.visible_streams(loaded, everyone).delivery == loaded.delivery


def test_voila_runs_on_loopback_behind_the_front_door(tmp_path: Path) -> None:
    settings = Settings(environment="test", var_dir=tmp_path, voila_port=8123)
    argv = voila_argv(settings)
    assert "--Voila.ip=127.0.0.1" in argv and "--Voila.port=8123" in argv
    assert "--Voila.base_url=/dashboards/" in argv
    assert "--VoilaConfiguration.template=lab-offline" in argv
    assert "--VoilaConfiguration.http_header_envs=X-Forwarded-User" in argv
    assert "--Voila.port_retries=0" in argv
    assert "--VoilaExecutor.iopub_timeout=60" in argv  # a busy kernel's outputs are kept
    env = voila_env(
        settings, "s3cret", base={"HTTP_X_FORWARDED_USER": "x", "QUERY_STRING": "y", "PATH": "/b"}
    )
    assert "s3cret" not in " ".join(argv)
    assert env["JUPYTER_TOKEN"] == "s3cret" and env["PATH"] == "/b"
    assert "HTTP_X_FORWARDED_USER" not in env and "QUERY_STRING" not in env
