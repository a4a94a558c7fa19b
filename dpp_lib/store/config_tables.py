"""Load the org config file into the configuration tables, and read them back as lookups.

``apply_config`` is idempotent (loading the same file twice changes no row) and runs in the
caller's transaction, so an error anywhere leaves the database unchanged. Streams and
repositories that disappear from the file are archived (``is_active = false``), never deleted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa

from dpp_lib.ingest.lookups import (
    JiraProjectInfo,
    OrgLookups,
    RepositoryInfo,
    TechStreamInfo,
)
from dpp_lib.ingest.types import JiraFieldIds, StageMapping
from dpp_lib.orgconfig import FOUND_STAGES, PIPELINE_STAGES, OrgConfig
from dpp_lib.store import data_versions
from dpp_lib.store.schema import (
    delivery_streams,
    jira_projects,
    org_settings,
    repositories,
    status_mappings,
    tech_streams,
)
from dpp_lib.store.types import now_utc

SETTINGS_KEYS = ("organisation", "jira_fields", "value_map", "cross_stream", "pulse")
CONFIG_VERSION_KEY = "config_version"


def config_fingerprint(cfg: OrgConfig) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()


def apply_config(conn: sa.Connection, cfg: OrgConfig) -> Counter[str]:
    """Write ``cfg`` into the configuration tables; returns counts of what changed."""
    changes: Counter[str] = Counter()
    for key in SETTINGS_KEYS:
        _put_setting(conn, key, getattr(cfg, key).model_dump(mode="json"), changes)
    ds_ids = _sync_streams(
        conn,
        delivery_streams,
        [
            {
                "name": s.name,
                "display_name": s.display_name,
                "description": s.description,
                "team_size": s.team_size,
                "min_contributors": s.min_contributors,
                "labels": list(s.labels),
                "_renamed_from": s.renamed_from,
            }
            for s in cfg.delivery_streams
        ],
        "delivery_streams",
        changes,
    )
    ts_ids = _sync_streams(
        conn,
        tech_streams,
        [
            {
                "name": s.name,
                "display_name": s.display_name,
                "description": s.description,
                "github_org": s.github_org,
                "github_install_id": s.github_install_id,
                "ticket_key_pattern": s.ticket_key_pattern,
                "min_contributors": s.min_contributors,
                "_renamed_from": s.renamed_from,
            }
            for s in cfg.tech_streams
        ],
        "tech_streams",
        changes,
    )
    _sync_repositories(conn, cfg, ts_ids, changes)
    _sync_jira_projects(conn, cfg, ds_ids, changes)
    if changes:
        _put_setting(conn, CONFIG_VERSION_KEY, {"sha256": config_fingerprint(cfg)}, changes)
        data_versions.bump(conn, ["config"])
    return changes


def _put_setting(conn: sa.Connection, key: str, value: Any, changes: Counter[str]) -> None:
    current = conn.execute(sa.select(org_settings.c.value).where(org_settings.c.key == key))
    row = current.first()
    if row is None:
        conn.execute(org_settings.insert().values(key=key, value=value, updated_at=now_utc()))
        changes["settings"] += 1
    elif _canon(row[0]) != _canon(value):
        conn.execute(
            org_settings.update()
            .where(org_settings.c.key == key)
            .values(value=value, updated_at=now_utc())
        )
        changes["settings"] += 1


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _sync_streams(
    conn: sa.Connection,
    table: sa.Table,
    wanted: list[dict[str, Any]],
    label: str,
    changes: Counter[str],
) -> dict[str, uuid.UUID]:
    existing = {r.name: r._mapping for r in conn.execute(sa.select(table))}
    ids: dict[str, uuid.UUID] = {}
    for spec in wanted:
        renamed_from = spec.pop("_renamed_from")
        row = existing.get(spec["name"])
        if row is None and renamed_from and renamed_from in existing:
            row = existing.pop(renamed_from)
            changes[f"{label}.renamed"] += 1
        if row is None:
            stream_id = uuid.uuid4()
            conn.execute(table.insert().values(stream_id=stream_id, **spec, updated_at=now_utc()))
            changes[f"{label}.created"] += 1
        else:
            stream_id = row["stream_id"]
            diff = {k: v for k, v in spec.items() if row[k] != v}
            if not row["is_active"]:
                diff["is_active"] = True
            if diff:
                conn.execute(
                    table.update()
                    .where(table.c.stream_id == stream_id)
                    .values(**diff, updated_at=now_utc())
                )
                changes[f"{label}.updated"] += 1
        ids[spec["name"]] = stream_id
    for name, row in existing.items():
        if name not in ids and row["is_active"]:
            conn.execute(
                table.update()
                .where(table.c.stream_id == row["stream_id"])
                .values(is_active=False, updated_at=now_utc())
            )
            changes[f"{label}.archived"] += 1
    return ids


def _sync_repositories(
    conn: sa.Connection, cfg: OrgConfig, ts_ids: Mapping[str, uuid.UUID], changes: Counter[str]
) -> None:
    org_stream = {s.github_org.casefold(): ts_ids[s.name] for s in cfg.tech_streams}
    existing = {
        (r.github_org.casefold(), r.github_repo_name.casefold()): r._mapping
        for r in conn.execute(sa.select(repositories))
    }
    seen = set()
    for repo in cfg.repositories:
        org, name = repo.full_name.split("/", 1)
        key = (org.casefold(), name.casefold())
        seen.add(key)
        values = {
            "tech_stream_id": org_stream[org.casefold()],
            "github_org": org,
            "github_repo_name": name,
            "full_name": repo.full_name,
            "default_branch": repo.default_branch,
            "is_deployable": repo.deployable,
            "deploy_target": repo.deploy_target,
            "is_active": True,
            "origin": "config",
        }
        row = existing.get(key)
        if row is None:
            conn.execute(repositories.insert().values(repo_id=uuid.uuid4(), **values))
            changes["repositories.created"] += 1
        elif any(row[k] != v for k, v in values.items()):
            conn.execute(
                repositories.update().where(repositories.c.repo_id == row["repo_id"]).values(values)
            )
            changes["repositories.updated"] += 1
    for key, row in existing.items():
        if key not in seen and row["origin"] == "config" and row["is_active"]:
            conn.execute(
                repositories.update()
                .where(repositories.c.repo_id == row["repo_id"])
                .values(is_active=False)
            )
            changes["repositories.archived"] += 1


def _sync_jira_projects(
    conn: sa.Connection, cfg: OrgConfig, ds_ids: Mapping[str, uuid.UUID], changes: Counter[str]
) -> None:
    existing = {r.project_key: r._mapping for r in conn.execute(sa.select(jira_projects))}
    for project in cfg.jira_projects:
        values = {
            "delivery_stream_id": ds_ids.get(project.delivery_stream or ""),
            "derivation": list(project.derivation),
            "components": {k: str(ds_ids[v]) for k, v in project.components.items()},
            "is_active": True,
        }
        row = existing.pop(project.key, None)
        if row is None:
            conn.execute(
                jira_projects.insert().values(
                    project_id=uuid.uuid4(), project_key=project.key, **values
                )
            )
            changes["jira_projects.created"] += 1
        elif any(row[k] != v for k, v in values.items()):
            conn.execute(
                jira_projects.update()
                .where(jira_projects.c.project_key == project.key)
                .values(values)
            )
            changes["jira_projects.updated"] += 1
        _sync_status_mappings(conn, project.key, project.status_mappings, changes)
    for key, row in existing.items():
        if row["is_active"]:
            conn.execute(
                jira_projects.update()
                .where(jira_projects.c.project_key == key)
                .values(is_active=False)
            )
            changes["jira_projects.archived"] += 1


def _sync_status_mappings(
    conn: sa.Connection, project_key: str, mappings: Any, changes: Counter[str]
) -> None:
    sm = status_mappings
    existing = {
        r.jira_status_name: r._mapping
        for r in conn.execute(sa.select(sm).where(sm.c.jira_project_key == project_key))
    }
    for order, m in enumerate(mappings, start=1):
        values = {"pipeline_stage": m.stage, "is_active_work": m.active, "display_order": order}
        row = existing.pop(m.status, None)
        if row is None:
            conn.execute(
                sm.insert().values(
                    mapping_id=uuid.uuid4(),
                    jira_project_key=project_key,
                    jira_status_name=m.status,
                    **values,
                )
            )
            changes["status_mappings.created"] += 1
        elif any(row[k] != v for k, v in values.items()):
            conn.execute(sm.update().where(sm.c.mapping_id == row["mapping_id"]).values(values))
            changes["status_mappings.updated"] += 1
    for row in existing.values():
        conn.execute(sm.delete().where(sm.c.mapping_id == row["mapping_id"]))
        changes["status_mappings.removed"] += 1


def load_lookups(conn: sa.Connection) -> OrgLookups:
    """Read the configuration tables into an ``OrgLookups`` snapshot."""
    settings = {r.key: r.value for r in conn.execute(sa.select(org_settings))}
    organisation = settings.get("organisation", {})
    value_map = settings.get("value_map", {"stages": {}, "streams": {}})
    ds_rows = list(conn.execute(sa.select(delivery_streams)))
    ts_rows = list(conn.execute(sa.select(tech_streams)))
    by_name = {r.name: r.stream_id for r in ds_rows} | {r.name: r.stream_id for r in ts_rows}

    delivery_by_label: dict[str, uuid.UUID] = {}
    delivery_by_key: dict[str, uuid.UUID] = {}
    for r in ds_rows:
        delivery_by_key[str(r.stream_id)] = r.stream_id
        if not r.is_active:
            continue
        delivery_by_key[r.name.casefold()] = r.stream_id
        for label in [r.name, r.display_name, *(r.labels or [])]:
            delivery_by_label.setdefault(label.strip().casefold(), r.stream_id)
    tech_by_label: dict[str, uuid.UUID] = {}
    infos = []
    for r in ts_rows:
        if not r.is_active:
            continue
        infos.append(
            TechStreamInfo(
                r.stream_id,
                r.name,
                r.display_name,
                r.github_org,
                r.github_install_id,
                r.ticket_key_pattern or "",
            )
        )
        for label in (r.name, r.display_name, r.github_org):
            tech_by_label.setdefault(label.casefold(), r.stream_id)
    ds_ids = {r.stream_id for r in ds_rows}
    for label, name in value_map.get("streams", {}).items():
        stream_id = by_name.get(name)
        if stream_id is None:
            continue
        target = delivery_by_label if stream_id in ds_ids else tech_by_label
        target[label.strip().casefold()] = stream_id

    repos: dict[str, RepositoryInfo] = {}
    targets: dict[str, RepositoryInfo] = {}
    for r in conn.execute(sa.select(repositories).where(repositories.c.is_active)):
        info = RepositoryInfo(
            r.repo_id, r.tech_stream_id, r.full_name, r.is_deployable, r.deploy_target
        )
        repos[r.full_name.casefold()] = info
        if r.deploy_target:
            targets[r.deploy_target.casefold()] = info
    projects = {
        r.project_key: JiraProjectInfo(
            r.project_key,
            r.delivery_stream_id,
            tuple(r.derivation),
            {k.casefold(): uuid.UUID(v) for k, v in (r.components or {}).items()},
        )
        for r in conn.execute(sa.select(jira_projects).where(jira_projects.c.is_active))
    }
    mappings = {
        (r.jira_project_key, r.jira_status_name.strip().casefold()): StageMapping(
            r.pipeline_stage, r.is_active_work
        )
        for r in conn.execute(sa.select(status_mappings))
    }
    stage_aliases = {s: s for s in (*PIPELINE_STAGES, *FOUND_STAGES)}
    stage_aliases |= {"code review": "code_review", "in production": "production"}
    stage_aliases |= {k.strip().casefold(): v for k, v in value_map.get("stages", {}).items()}
    fields = settings.get("jira_fields", {})
    return OrgLookups(
        version=(settings.get(CONFIG_VERSION_KEY) or {}).get("sha256", "empty"),
        delivery_by_label=delivery_by_label,
        delivery_by_key=delivery_by_key,
        tech_streams=tuple(infos),
        tech_by_label=tech_by_label,
        repositories=repos,
        repos_by_target=targets,
        jira_projects=projects,
        status_mappings=mappings,
        jira_fields=JiraFieldIds(**fields),
        stage_aliases=stage_aliases,
        production_environments=frozenset(
            organisation.get("production_environments", ["production"])
        ),
        time_zone=organisation.get("time_zone", "UTC"),
        incident_correlation_window_minutes=int(
            organisation.get("incident_correlation_window_minutes", 60)
        ),
        holidays=frozenset(date.fromisoformat(str(d)) for d in organisation.get("holidays", [])),
    )


def config_version(conn: sa.Connection) -> str:
    value = conn.execute(
        sa.select(org_settings.c.value).where(org_settings.c.key == CONFIG_VERSION_KEY)
    ).scalar()
    return str((value or {}).get("sha256", "empty"))
