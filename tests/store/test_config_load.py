"""Loading the org config into the configuration tables (DESIGN §4), on SQLite and Postgres.

Idempotent (a second load changes no byte), archives instead of deleting, keeps stream ids
across ``renamed_from``, is transactional, and the lookups read it back; ``dpp config load``
reports what changed and refuses an invalid file without touching the database.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from dpp_lib.cli import app
from dpp_lib.errors import ConfigError
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.ingest.types import StageMapping
from dpp_lib.orgconfig import OrgConfig, parse_config
from dpp_lib.settings import Settings
from dpp_lib.store import config_tables, schema
from dpp_lib.store.config_tables import apply_config, config_fingerprint, load_lookups
from tests.support import EXAMPLE_CONFIG

# Every configuration table, with the order that makes a dump deterministic.
CONFIG_TABLES = {
    "delivery_streams": "name",
    "tech_streams": "name",
    "repositories": "full_name",
    "jira_projects": "project_key",
    "status_mappings": "jira_project_key, display_order, jira_status_name",
    "org_settings": "key",
}

FIRST_LOAD = Counter(
    {
        "settings": 6,  # organisation, jira_fields, value_map, cross_stream, pulse, version
        "delivery_streams.created": 4,
        "tech_streams.created": 5,
        "repositories.created": 12,
        "jira_projects.created": 4,
        "status_mappings.created": 44,
    }
)


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return data


def cfg_of(data: dict[str, Any]) -> OrgConfig:
    return parse_config(yaml.safe_dump(data, allow_unicode=True), file="test.yaml")


def load(engine: sa.Engine, data: dict[str, Any] | OrgConfig) -> Counter[str]:
    cfg = data if isinstance(data, OrgConfig) else cfg_of(data)
    with engine.begin() as conn:
        return apply_config(conn, cfg)


def dump(engine: sa.Engine) -> str:
    """Every row of every configuration table, as text (JSON values in canonical form)."""

    def canon(value: Any) -> str:
        if isinstance(value, dict | list):
            return json.dumps(value, sort_keys=True, default=str)
        return repr(value)

    out = []
    with engine.connect() as conn:
        for table, order in CONFIG_TABLES.items():
            out.append(f"== {table}")
            for row in conn.exec_driver_sql(f"select * from {table} order by {order}"):
                out.append(" | ".join(f"{k}={canon(v)}" for k, v in row._mapping.items()))
    return "\n".join(out)


def select(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql))]


def ids(engine: sa.Engine, table: str, key: str, id_col: str) -> dict[str, str]:
    """key → id (as a canonical UUID string: SQLite stores UUIDs as bare hex)."""
    rows = select(engine, f"select {key}, {id_col} from {table}")
    return {str(r[key]): str(uuid.UUID(str(r[id_col]))) for r in rows}


def lookups(engine: sa.Engine) -> OrgLookups:
    with engine.connect() as conn:
        return load_lookups(conn)


def truthy(value: Any) -> bool:
    return bool(value)  # SQLite returns 0/1 through raw SQL


# --- first load and idempotency -----------------------------------------------------------


def test_first_load_fills_every_table(engine: sa.Engine) -> None:
    assert load(engine, example()) == FIRST_LOAD
    counts = {t: len(select(engine, f"select * from {t}")) for t in CONFIG_TABLES}
    assert counts == {
        "delivery_streams": 4,
        "tech_streams": 5,
        "repositories": 12,
        "jira_projects": 4,
        "status_mappings": 44,
        "org_settings": 6,
    }
    streams = {r["name"]: r for r in select(engine, "select * from tech_streams")}
    repos = {r["full_name"]: r for r in select(engine, "select * from repositories")}
    assert repos["acme-auth/token-service"]["tech_stream_id"] == streams["auth"]["stream_id"]
    assert repos["acme-auth/token-service"]["github_org"] == "acme-auth"
    assert repos["acme-auth/token-service"]["github_repo_name"] == "token-service"
    assert repos["acme-auth/token-service"]["deploy_target"] == "lambda:token-validator"
    assert sorted(n for n, r in repos.items() if not truthy(r["is_deployable"])) == [
        "acme-core-api/domain-models",
        "acme-frontend/ui-components",
    ]
    assert repos["acme-infra/platform-terraform"]["default_branch"] == "trunk"
    assert {r["origin"] for r in repos.values()} == {"config"}
    assert all(truthy(r["is_active"]) for r in repos.values())
    pay = select(
        engine,
        "select jira_status_name, pipeline_stage, is_active_work, display_order "
        "from status_mappings where jira_project_key = 'PAY' order by display_order",
    )
    assert [r["display_order"] for r in pay] == list(range(1, 12))
    assert [(r["jira_status_name"], r["pipeline_stage"], truthy(r["is_active_work"])) for r in pay][
        :4
    ] == [
        ("To Do", "backlog", False),
        ("In Analysis", "ba", True),
        ("Ready for Dev", "dev", False),
        ("In Development", "dev", True),
    ]
    settings = {r["key"] for r in select(engine, "select key from org_settings")}
    assert settings == {
        "organisation",
        "jira_fields",
        "value_map",
        "cross_stream",
        "pulse",
        "config_version",
    }
    ds = {r["name"]: r for r in select(engine, "select * from delivery_streams")}
    assert ds["insights"]["team_size"] == 6 and ds["insights"]["min_contributors"] == 5
    assert ds["onboarding"]["display_name"] == "Customer Onboarding"


def test_second_load_changes_nothing(engine: sa.Engine) -> None:
    load(engine, example())
    before = dump(engine)
    assert load(engine, example()) == Counter()
    assert dump(engine) == before
    # a freshly parsed file (new objects, same content) is the same config
    with engine.begin() as conn:
        assert apply_config(conn, parse_config(EXAMPLE_CONFIG.read_text())) == Counter()
    assert dump(engine) == before


def test_config_version_is_the_fingerprint_of_the_loaded_file(engine: sa.Engine) -> None:
    cfg = cfg_of(example())
    load(engine, cfg)
    assert lookups(engine).version == config_fingerprint(cfg)
    with engine.connect() as conn:
        assert config_tables.config_version(conn) == config_fingerprint(cfg)


def test_empty_database_has_empty_lookups(engine: sa.Engine) -> None:
    found = lookups(engine)
    assert found.version == "empty"
    assert found.delivery_by_label == {} and found.repositories == {}


# --- changes ---------------------------------------------------------------------------------


def modified() -> dict[str, Any]:
    """Rename a display name, remove a delivery stream (and its project), a repository and
    a status from the middle of PAY's workflow."""
    data = example()
    data["delivery_streams"][0]["display_name"] = "Payments & Cards"
    data["delivery_streams"] = [s for s in data["delivery_streams"] if s["name"] != "onboarding"]
    data["jira_projects"] = [p for p in data["jira_projects"] if p["key"] != "ONB"]
    data["repositories"] = [
        r for r in data["repositories"] if r["full_name"] != "acme-frontend/admin-console"
    ]
    pay = data["jira_projects"][0]
    assert pay["key"] == "PAY"
    pay["status_mappings"] = [m for m in pay["status_mappings"] if m["status"] != "Ready for UAT"]
    return data


def test_modified_file_updates_archives_and_removes(engine: sa.Engine) -> None:
    load(engine, example())
    ds_ids = ids(engine, "delivery_streams", "name", "stream_id")
    repo_ids = ids(engine, "repositories", "full_name", "repo_id")
    before = {r["name"]: r for r in select(engine, "select * from delivery_streams")}

    assert load(engine, modified()) == Counter(
        {
            "delivery_streams.updated": 1,  # Payments display name
            "delivery_streams.archived": 1,  # onboarding
            "repositories.archived": 1,  # admin-console
            "jira_projects.archived": 1,  # ONB
            "status_mappings.removed": 1,  # PAY: Ready for UAT
            "status_mappings.updated": 3,  # PAY: In UAT, Done, Cancelled move up one
            "settings": 1,  # config_version
        }
    )

    after = {r["name"]: r for r in select(engine, "select * from delivery_streams")}
    assert set(after) == set(before)  # archived, not deleted
    assert ids(engine, "delivery_streams", "name", "stream_id") == ds_ids
    assert after["payments"]["display_name"] == "Payments & Cards"
    assert not truthy(after["onboarding"]["is_active"])
    assert all(truthy(after[n]["is_active"]) for n in ("payments", "lending", "insights"))
    # only the changed streams were touched
    changed = {n for n in after if after[n]["updated_at"] != before[n]["updated_at"]}
    assert changed == {"payments", "onboarding"}

    repos = {r["full_name"]: r for r in select(engine, "select * from repositories")}
    assert len(repos) == 12
    assert ids(engine, "repositories", "full_name", "repo_id") == repo_ids
    assert [n for n, r in repos.items() if not truthy(r["is_active"])] == [
        "acme-frontend/admin-console"
    ]
    onb = select(engine, "select is_active from jira_projects where project_key = 'ONB'")
    assert [truthy(r["is_active"]) for r in onb] == [False]

    pay = select(
        engine,
        "select jira_status_name, display_order from status_mappings "
        "where jira_project_key = 'PAY' order by display_order",
    )
    assert "Ready for UAT" not in [r["jira_status_name"] for r in pay]
    assert [r["display_order"] for r in pay] == list(range(1, 11))
    assert pay[7]["jira_status_name"] == "In UAT"

    found = lookups(engine)
    assert found.delivery_stream("onboarding") is None
    assert "customer onboarding" not in found.delivery_by_label
    assert found.repository("acme-frontend/admin-console") is None
    assert found.repository_by_target("cloudfront:admin-console") is None
    assert "ONB" not in found.jira_projects
    assert ("PAY", "ready for uat") not in found.status_mappings
    # an archived stream stays addressable by id (history keeps pointing at it)
    assert found.delivery_by_key[ds_ids["onboarding"]] == uuid.UUID(ds_ids["onboarding"])

    state = dump(engine)
    assert load(engine, modified()) == Counter()
    assert dump(engine) == state


def test_restoring_the_file_reactivates_with_the_same_ids(engine: sa.Engine) -> None:
    load(engine, example())
    ds_ids = ids(engine, "delivery_streams", "name", "stream_id")
    repo_ids = ids(engine, "repositories", "full_name", "repo_id")
    load(engine, modified())
    assert load(engine, example()) == Counter(
        {
            "delivery_streams.updated": 2,  # payments renamed back, onboarding reactivated
            "repositories.updated": 1,
            "jira_projects.updated": 1,
            "status_mappings.created": 1,
            "status_mappings.updated": 3,
            "settings": 1,
        }
    )
    assert ids(engine, "delivery_streams", "name", "stream_id") == ds_ids
    assert ids(engine, "repositories", "full_name", "repo_id") == repo_ids
    rows = select(engine, "select is_active from delivery_streams")
    rows += select(engine, "select is_active from repositories")
    rows += select(engine, "select is_active from jira_projects")
    assert all(truthy(r["is_active"]) for r in rows)
    assert lookups(engine).delivery_stream("onboarding") == uuid.UUID(ds_ids["onboarding"])


def test_removed_tech_stream_is_archived_and_its_repositories_too(engine: sa.Engine) -> None:
    load(engine, example())
    data = example()
    data["tech_streams"] = [s for s in data["tech_streams"] if s["name"] != "infra"]
    data["repositories"] = [
        r for r in data["repositories"] if not r["full_name"].startswith("acme-infra/")
    ]
    assert load(engine, data) == Counter(
        {"tech_streams.archived": 1, "repositories.archived": 1, "settings": 1}
    )
    infra = select(engine, "select is_active from tech_streams where name = 'infra'")
    assert [truthy(r["is_active"]) for r in infra] == [False]
    found = lookups(engine)
    assert found.tech_stream_id("infra") is None
    assert found.tech_stream_by_install("41000105") is None
    assert found.tech_stream_by_org("acme-infra") is None


def test_discovered_repositories_are_not_archived_by_a_load(engine: sa.Engine) -> None:
    load(engine, example())
    ts = ids(engine, "tech_streams", "name", "stream_id")
    with engine.begin() as conn:
        conn.execute(
            schema.repositories.insert().values(
                repo_id=uuid.uuid4(),
                tech_stream_id=uuid.UUID(ts["core-api"]),
                github_org="acme-core-api",
                github_repo_name="found-in-a-webhook",
                full_name="acme-core-api/found-in-a-webhook",
                origin="discovered",
            )
        )
    before = dump(engine)
    assert load(engine, example()) == Counter()
    assert dump(engine) == before


def test_renamed_from_keeps_the_stream_id(engine: sa.Engine) -> None:
    load(engine, example())
    ds_ids = ids(engine, "delivery_streams", "name", "stream_id")
    ts_ids = ids(engine, "tech_streams", "name", "stream_id")
    data = example()
    data["delivery_streams"][0].update(name="payments-cards", renamed_from="payments")
    data["jira_projects"][0]["delivery_stream"] = "payments-cards"
    data["tech_streams"][1].update(name="identity", renamed_from="auth")
    changes = load(engine, data)
    assert changes == Counter(
        {
            "delivery_streams.renamed": 1,
            "delivery_streams.updated": 1,
            "tech_streams.renamed": 1,
            "tech_streams.updated": 1,
            "settings": 1,
        }
    )
    new_ds = ids(engine, "delivery_streams", "name", "stream_id")
    new_ts = ids(engine, "tech_streams", "name", "stream_id")
    assert new_ds["payments-cards"] == ds_ids["payments"] and "payments" not in new_ds
    assert new_ts["identity"] == ts_ids["auth"] and "auth" not in new_ts
    assert len(new_ds) == 4 and len(new_ts) == 5
    found = lookups(engine)
    assert found.delivery_stream("payments-cards") == uuid.UUID(ds_ids["payments"])
    assert found.delivery_stream("payments") is None
    assert found.tech_stream_id("identity") == uuid.UUID(ts_ids["auth"])
    # the project and repositories point at the same ids, so they did not change
    assert found.jira_projects["PAY"].delivery_stream_id == uuid.UUID(ds_ids["payments"])
    token = found.repository("acme-auth/token-service")
    assert token is not None and token.tech_stream_id == uuid.UUID(ts_ids["auth"])

    # renamed_from left in the file: loading again changes nothing
    state = dump(engine)
    assert load(engine, data) == Counter()
    assert dump(engine) == state


def test_renamed_from_on_a_first_load_just_creates(engine: sa.Engine) -> None:
    data = example()
    data["delivery_streams"][0]["renamed_from"] = "old-payments"
    assert load(engine, data)["delivery_streams.created"] == 4


def test_renamed_from_cannot_take_a_stream_still_in_the_file(engine: sa.Engine) -> None:
    load(engine, example())
    payments = ids(engine, "delivery_streams", "name", "stream_id")["payments"]
    data = example()
    data["delivery_streams"].append(
        {"name": "cards", "display_name": "Cards", "team_size": 3, "renamed_from": "payments"}
    )
    try:
        load(engine, data)
    except ConfigError:
        return  # refusing the file is a fine answer
    assert ids(engine, "delivery_streams", "name", "stream_id").get("payments") == payments


# --- transactions ----------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["empty", "loaded"])
def test_failure_midway_leaves_the_tables_as_they_were(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    if start == "loaded":
        load(engine, example())
    before = dump(engine)

    calls = []

    def boom(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise RuntimeError("jira projects failed")

    monkeypatch.setattr(config_tables, "_sync_jira_projects", boom)
    with pytest.raises(RuntimeError, match="jira projects failed"), engine.begin() as conn:
        apply_config(conn, cfg_of(modified()))
    assert calls, "apply_config must have got as far as the Jira projects"
    assert dump(engine) == before


# --- lookups ---------------------------------------------------------------------------------


def test_lookups_resolve_labels_targets_and_statuses(engine: sa.Engine) -> None:
    data = example()
    data["value_map"]["streams"].update({"Money Movement": "payments", "Core Platform": "core-api"})
    cfg = cfg_of(data)
    load(engine, cfg)
    ds = {k: uuid.UUID(v) for k, v in ids(engine, "delivery_streams", "name", "stream_id").items()}
    ts = {k: uuid.UUID(v) for k, v in ids(engine, "tech_streams", "name", "stream_id").items()}
    found = lookups(engine)

    # delivery streams: name, display name and labels, case-insensitively; value_map aliases
    by_label = found.delivery_by_label
    assert by_label["payments"] == ds["payments"]
    assert by_label["customer onboarding"] == ds["onboarding"]
    assert by_label["loans"] == ds["lending"]
    assert by_label["reporting"] == ds["insights"]
    assert by_label["money movement"] == ds["payments"]
    assert by_label["customer insights"] == ds["insights"]
    assert "core platform" not in by_label
    assert found.delivery_stream("PAYMENTS") == ds["payments"]
    assert found.delivery_stream(f" {ds['lending']} ") == ds["lending"]
    assert found.delivery_stream("Customer Onboarding") is None  # API/CLI: name or UUID only

    # tech streams: name, display name, org; aliases; install id
    assert found.tech_by_label["core platform"] == ts["core-api"]
    assert found.tech_by_label["auth service"] == ts["auth"]
    assert found.tech_by_label["acme-data"] == ts["data-layer"]
    assert found.tech_stream_id("Frontend") == ts["frontend"]
    assert found.tech_stream_id(str(ts["infra"])) == ts["infra"]
    infra = found.tech_stream(ts["infra"])
    assert (
        infra is not None
        and infra.ticket_key_pattern == cfg.tech_stream("infra").ticket_key_pattern
    )
    by_install = found.tech_stream_by_install("41000103")
    assert by_install is not None and by_install.name == "data-layer"
    by_org = found.tech_stream_by_org("ACME-Frontend")
    assert by_org is not None and by_org.stream_id == ts["frontend"]

    # repositories: full name and deploy target, case-insensitively
    payments_service = found.repository("ACME-Core-API/Payments-Service")
    assert payments_service is not None and payments_service.tech_stream_id == ts["core-api"]
    assert found.repository_by_target(" ECS:Payments-Service ") == payments_service
    token = found.repository_by_target("lambda:token-validator")
    assert token is not None and token.full_name == "acme-auth/token-service"
    library = found.repository("acme-frontend/ui-components")
    assert library is not None and not library.is_deployable and library.deploy_target is None
    assert len(found.repos_by_target) == 10

    # status mappings, queue and active, keyed by casefolded status
    assert found.status_mappings[("PAY", "ready for qa")] == StageMapping("qa", False)
    assert found.status_mappings[("PAY", "in qa")] == StageMapping("qa", True)
    assert found.status_mappings[("PAY", "in code review")] == StageMapping("code_review", True)
    assert found.status_mappings[("ONB", "won't do")] == StageMapping("cancelled", False)
    assert len(found.status_mappings) == 44

    # projects, stage aliases, fields, environments
    lend = found.jira_projects["LEND"]
    assert lend.delivery_stream_id is None
    assert lend.derivation == ("custom_field", "label", "component")
    assert lend.components == {"loan origination": ds["lending"], "credit reports": ds["insights"]}
    assert found.jira_projects["PAY"].delivery_stream_id == ds["payments"]
    assert found.stage_aliases["live"] == "production"
    assert found.stage_aliases["testing"] == "qa"
    assert found.stage_aliases["code review"] == "code_review"
    assert found.stage_aliases["uat"] == "uat"
    assert found.jira_fields.delivery_stream == "customfield_10100"
    assert found.jira_fields.story_points == "customfield_10016"
    assert found.production_environments == frozenset({"production", "prod"})
    assert found.version == config_fingerprint(cfg)


# --- the CLI -----------------------------------------------------------------------------------


def run_cli(settings: Settings, *args: str) -> Any:
    env = {
        "DPP_DATABASE_URL": settings.resolved_database_url(),
        "DPP_SECRETS_DIR": str(settings.secrets_dir),
        "DPP_VAR_DIR": str(settings.var_dir),
        "DPP_ENVIRONMENT": "test",
    }
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_config_load_prints_the_changes(settings: Settings, engine: sa.Engine) -> None:
    first = run_cli(settings, "config", "load", str(EXAMPLE_CONFIG))
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == (
        f"loaded {EXAMPLE_CONFIG}: delivery_streams.created 4, jira_projects.created 4, "
        "repositories.created 12, settings 6, status_mappings.created 44, "
        "tech_streams.created 5"
    )
    state = dump(engine)
    second = run_cli(settings, "config", "load", str(EXAMPLE_CONFIG))
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == f"loaded {EXAMPLE_CONFIG}: no changes"
    assert dump(engine) == state
    audit = select(engine, "select action, actor_type, target_id, details from audit_log")
    assert len(audit) == 1  # the no-op load is not audited
    assert audit[0]["action"] == "config.load" and audit[0]["actor_type"] == "cli"
    assert audit[0]["target_id"] == str(EXAMPLE_CONFIG)
    details = audit[0]["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert details == dict(FIRST_LOAD)


def test_cli_config_load_of_a_modified_file(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    load(engine, example())
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(modified(), allow_unicode=True))
    result = run_cli(settings, "config", "load", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"loaded {path}: delivery_streams.archived 1, delivery_streams.updated 1, "
        "jira_projects.archived 1, repositories.archived 1, settings 1, "
        "status_mappings.removed 1, status_mappings.updated 3"
    )


@pytest.mark.parametrize("start", ["empty", "loaded"])
def test_cli_refuses_an_invalid_file_and_changes_nothing(
    settings: Settings, engine: sa.Engine, tmp_path: Path, start: str
) -> None:
    if start == "loaded":
        load(engine, example())
    before = dump(engine)
    audit_before = select(engine, "select * from audit_log")
    data = modified()
    data["tech_streams"][2]["github_org"] = "acme data!"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_cli(settings, "config", "load", str(path))
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "error: invalid organisation config" in result.stderr
    assert f"{path}: tech_streams[2].github_org: String should match pattern" in result.stderr
    assert dump(engine) == before
    assert select(engine, "select * from audit_log") == audit_before


def test_cli_reports_a_missing_file(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    result = run_cli(settings, "config", "load", str(path))
    assert result.exit_code != 0
    assert f"{path}: (file): cannot read: No such file or directory" in result.stderr
    assert lookups(engine).version == "empty"
    assert select(engine, "select * from delivery_streams") == []
