"""The organisation config file (DESIGN §4): example.yaml, and every kind of invalid file.

Pure: no database. Invalid variants are built by modifying the loaded example, so each
test changes exactly one thing; every error must name the file, the path inside it and
the problem.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from dpp_lib.errors import ConfigError, FieldProblem
from dpp_lib.orgconfig import (
    DEFAULT_SEVERITY_RULES,
    DEFAULT_TICKET_KEY_PATTERN,
    OrgConfig,
    parse_config,
    read_config,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
FILE = "org.yaml"


def example_dict() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


def parse(data: dict[str, Any]) -> OrgConfig:
    return parse_config(yaml.safe_dump(data, allow_unicode=True), file=FILE)


def config_error(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value


def assert_problem(exc: ConfigError, path: str, problem: str) -> None:
    """The message has a line ``FILE: path: ...problem...`` and the details agree."""
    assert exc.file == FILE
    lines = exc.message.splitlines()
    assert lines[0] == "invalid organisation config"
    matching = [line for line in lines[1:] if line.startswith(f"{FILE}: {path}: ")]
    assert matching, f"no line for {path!r} in:\n{exc.message}"
    assert any(problem in line for line in matching), f"{problem!r} not in {matching}"
    assert any(d.field == path and problem in d.problem for d in exc.details)


# --- example.yaml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> OrgConfig:
    return read_config(EXAMPLE)


def test_example_sections(example: OrgConfig) -> None:
    assert [s.name for s in example.tech_streams] == [
        "core-api",
        "auth",
        "data-layer",
        "frontend",
        "infra",
    ]
    assert [s.name for s in example.delivery_streams] == [
        "payments",
        "onboarding",
        "lending",
        "insights",
    ]
    assert len(example.repositories) == 12
    not_deployable = sorted(r.full_name for r in example.repositories if not r.deployable)
    assert not_deployable == ["acme-core-api/domain-models", "acme-frontend/ui-components"]
    # every deployable repository has a deploy target, and libraries have none
    assert all(bool(r.deploy_target) == r.deployable for r in example.repositories)
    assert [p.key for p in example.jira_projects] == ["PAY", "ONB", "LEND", "INS"]


def test_example_organisation(example: OrgConfig) -> None:
    org = example.organisation
    assert org.name == "Acme Financial"
    assert org.time_zone == "Europe/London"
    assert org.production_environments == ["production", "prod"]
    assert org.incident_correlation_window_minutes == 60
    assert org.min_contributors == 6
    assert len(org.holidays) == 18
    assert org.holidays[0] == date(2025, 12, 25)
    assert date(2026, 4, 3) in org.holidays  # Good Friday 2026
    assert org.holidays[-1] == date(2027, 12, 28)
    assert all(isinstance(d, date) for d in org.holidays)
    assert example.delivery_stream("insights").min_contributors == 5
    assert example.delivery_stream("payments").min_contributors is None
    assert example.delivery_stream("payments").team_size == 8
    assert example.delivery_stream("lending").labels == ["lending", "loans"]


def test_example_tech_streams(example: OrgConfig) -> None:
    assert {s.github_org for s in example.tech_streams} == {
        "acme-core-api",
        "acme-auth",
        "acme-data",
        "acme-frontend",
        "acme-infra",
    }
    assert example.tech_stream("auth").github_install_id == "41000102"
    patterns = {s.name: s.ticket_key_pattern for s in example.tech_streams}
    assert [n for n, p in patterns.items() if p != DEFAULT_TICKET_KEY_PATTERN] == ["infra"]
    infra = re.match(patterns["infra"], "INFRA/OPS-12-rotate-certs")
    assert infra is not None and infra.group(1) == "OPS-12"
    default = re.match(DEFAULT_TICKET_KEY_PATTERN, "feature/PAY-456-refunds")
    assert default is not None and default.group(1) == "PAY-456"


def test_example_repositories(example: OrgConfig) -> None:
    repos = {r.full_name: r for r in example.repositories}
    assert repos["acme-auth/token-service"].deploy_target == "lambda:token-validator"
    assert repos["acme-infra/platform-terraform"].default_branch == "trunk"
    assert {r.default_branch for n, r in repos.items() if "terraform" not in n} == {"main"}


# Spec Appendix C, row by row: (status, stage, is active work). "dev (queue)" is the dev
# stage as a wait state; Done is "N/A", i.e. not active work.
APPENDIX_C = [
    ("To Do", "backlog", False),
    ("In Analysis", "ba", True),
    ("Ready for Dev", "dev", False),
    ("In Development", "dev", True),
    ("In Code Review", "code_review", True),
    ("Ready for QA", "qa", False),
    ("In QA", "qa", True),
    ("Ready for UAT", "uat", False),
    ("In UAT", "uat", True),
    ("Done", "done", False),
]


def test_example_pay_status_mappings_follow_appendix_c(example: OrgConfig) -> None:
    pay = next(p for p in example.jira_projects if p.key == "PAY")
    got = [(m.status, m.stage, m.active) for m in pay.status_mappings]
    assert got[: len(APPENDIX_C)] == APPENDIX_C
    assert got[len(APPENDIX_C) :] == [("Cancelled", "cancelled", False)]
    queues = [m.status for m in pay.status_mappings if m.stage in ("dev", "qa", "uat")]
    assert [q for q in queues if q.startswith("Ready for")] == [
        "Ready for Dev",
        "Ready for QA",
        "Ready for UAT",
    ]
    assert pay.delivery_stream == "payments"
    assert pay.derivation == ["custom_field", "project"]


def test_example_every_project_maps_every_stage(example: OrgConfig) -> None:
    """Each project has a queue (inactive) and an active status for dev, qa and uat."""
    for project in example.jira_projects:
        stages = {m.stage for m in project.status_mappings}
        assert stages == {"backlog", "ba", "dev", "code_review", "qa", "uat", "done", "cancelled"}
        for stage in ("dev", "qa", "uat"):
            actives = {m.active for m in project.status_mappings if m.stage == stage}
            assert actives == {True, False}, (project.key, stage)
        assert not any(m.active for m in project.status_mappings if m.stage == "done")


def test_example_shared_project_and_value_map(example: OrgConfig) -> None:
    lend = next(p for p in example.jira_projects if p.key == "LEND")
    assert lend.delivery_stream is None
    assert lend.derivation == ["custom_field", "label", "component"]
    assert lend.components == {"Loan Origination": "lending", "Credit Reports": "insights"}
    assert example.value_map.stages["Live"] == "production"
    assert example.value_map.stages["Code Review"] == "code_review"
    assert example.value_map.streams == {"Customer Insights": "insights"}


def test_example_custom_field_ids(example: OrgConfig) -> None:
    assert example.jira_fields.model_dump() == {
        "delivery_stream": "customfield_10100",
        "tech_streams": "customfield_10101",
        "found_in_stage": "customfield_10102",
        "introduced_in_stage": "customfield_10103",
        "blocking_tech_stream": "customfield_10104",
        "flagged": "customfield_10021",
        "sprint": "customfield_10020",
        "story_points": "customfield_10016",
        "root_cause": "customfield_10105",
    }


def test_example_defaults(example: OrgConfig) -> None:
    assert example.cross_stream.calibration is True
    assert example.cross_stream.severity_rules == DEFAULT_SEVERITY_RULES
    assert (example.pulse.window_start_day, example.pulse.window_days) == (1, 7)


def test_read_config_equals_parse_config(example: OrgConfig) -> None:
    assert parse_config(EXAMPLE.read_text(encoding="utf-8")) == example


def test_install_id_given_as_a_number_is_read_as_text() -> None:
    data = example_dict()
    data["tech_streams"][0]["github_install_id"] = 41000101
    assert parse(data).tech_streams[0].github_install_id == "41000101"


def test_minimal_config_gets_the_documented_defaults() -> None:
    cfg = parse(
        {
            "organisation": {"name": "Tiny"},
            "delivery_streams": [{"name": "one", "display_name": "One", "team_size": 3}],
            "tech_streams": [
                {"name": "t", "display_name": "T", "github_org": "tiny", "github_install_id": "7"}
            ],
        }
    )
    assert cfg.organisation.time_zone == "UTC"
    assert cfg.organisation.incident_correlation_window_minutes == 60
    assert cfg.organisation.min_contributors == 6
    assert cfg.organisation.production_environments == ["production"]
    assert cfg.repositories == [] and cfg.jira_projects == []


# --- invalid variants ----------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set ``a.b[2].c`` in the loaded dict."""
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]

    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value

    return mutate


def _delete(section: str) -> Mutation:
    return lambda data: data.pop(section) and None


def _append(path: str, item: Any) -> Mutation:
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]

    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for part in parts:
            target = target[part]
        target.append(item)

    return mutate


INVALID: list[tuple[str, Mutation, str, str]] = [
    # (id, change, path, problem)
    (
        "org-with-space",
        _set("tech_streams[2].github_org", "acme data!"),
        "tech_streams[2].github_org",
        "should match pattern",
    ),
    (
        "repo-without-org",
        _set("repositories[0].full_name", "payments-service"),
        "repositories[0].full_name",
        "should match pattern",
    ),
    (
        "unknown-stage",
        _set("jira_projects[1].status_mappings[3].stage", "development"),
        "jira_projects[1].status_mappings[3].stage",
        "Input should be 'backlog', 'ba', 'dev', 'code_review', 'qa', 'uat', 'done' or 'cancelled'",
    ),
    (
        "unknown-time-zone",
        _set("organisation.time_zone", "Mars/Olympus_Mons"),
        "organisation.time_zone",
        "unknown time zone 'Mars/Olympus_Mons' (use an IANA name)",
    ),
    (
        "team-size-zero",
        _set("delivery_streams[0].team_size", 0),
        "delivery_streams[0].team_size",
        "greater than or equal to 1",
    ),
    (
        "team-size-missing",
        lambda d: d["delivery_streams"][3].pop("team_size") and None,
        "delivery_streams[3].team_size",
        "Field required",
    ),
    (
        "stream-name-not-a-slug",
        _set("delivery_streams[1].name", "Customer Onboarding"),
        "delivery_streams[1].name",
        "should match pattern",
    ),
    (
        "install-id-not-numeric",
        _set("tech_streams[0].github_install_id", "abc"),
        "tech_streams[0].github_install_id",
        "should match pattern",
    ),
    (
        "install-id-boolean",
        _set("tech_streams[0].github_install_id", True),
        "tech_streams[0].github_install_id",
        "valid string",
    ),
    (
        "ticket-pattern-bad-regex",
        _set("tech_streams[4].ticket_key_pattern", "(["),
        "tech_streams[4].ticket_key_pattern",
        "not a valid regular expression",
    ),
    (
        "ticket-pattern-no-group",
        _set("tech_streams[4].ticket_key_pattern", r"^[A-Z]+-\d+"),
        "tech_streams[4].ticket_key_pattern",
        "one capturing group",
    ),
    (
        "organisation-missing",
        _delete("organisation"),
        "organisation",
        "Field required",
    ),
    (
        "organisation-name-empty",
        _set("organisation.name", ""),
        "organisation.name",
        "at least 1 character",
    ),
    (
        "holiday-not-a-date",
        _set("organisation.holidays[1]", "2026-02-30"),
        "organisation.holidays[1]",
        "valid date",
    ),
    (
        "no-production-environments",
        _set("organisation.production_environments", []),
        "organisation.production_environments",
        "at least one production environment name is needed",
    ),
    (
        "correlation-window-zero",
        _set("organisation.incident_correlation_window_minutes", 0),
        "organisation.incident_correlation_window_minutes",
        "greater than or equal to 1",
    ),
    (
        "no-delivery-streams",
        _set("delivery_streams", []),
        "delivery_streams",
        "at least 1 item",
    ),
    (
        "no-tech-streams",
        _delete("tech_streams"),
        "tech_streams",
        "Field required",
    ),
    (
        "project-key-lowercase",
        _set("jira_projects[0].key", "pay"),
        "jira_projects[0].key",
        "should match pattern",
    ),
    (
        "unknown-derivation-method",
        _set("jira_projects[2].derivation[1]", "magic"),
        "jira_projects[2].derivation[1]",
        "Input should be 'custom_field', 'project', 'label' or 'component'",
    ),
    (
        "project-without-statuses",
        _set("jira_projects[3].status_mappings", []),
        "jira_projects[3].status_mappings",
        "at least 1 item",
    ),
    (
        "empty-status-name",
        _set("jira_projects[0].status_mappings[0].status", ""),
        "jira_projects[0].status_mappings[0].status",
        "at least 1 character",
    ),
    (
        "project-derivation-without-stream",
        _set("jira_projects[2].derivation", ["project", "label"]),
        "jira_projects[2]",
        "derivation uses 'project' but no delivery_stream is set",
    ),
    (
        "deployable-not-boolean",
        _set("repositories[3].deployable", "maybe"),
        "repositories[3].deployable",
        "valid boolean",
    ),
    (
        "min-contributors-zero",
        _set("tech_streams[1].min_contributors", 0),
        "tech_streams[1].min_contributors",
        "greater than or equal to 1",
    ),
    (
        "unknown-severity",
        _set("cross_stream.severity_rules", [{"severity": "extreme", "min_impacted_streams": 1}]),
        "cross_stream.severity_rules[0].severity",
        "Input should be 'low', 'medium', 'high' or 'critical'",
    ),
    (
        "pulse-window-too-long",
        _set("pulse.window_days", 40),
        "pulse.window_days",
        "less than or equal to 28",
    ),
    (
        "unknown-top-level-section",
        _set("repos", []),
        "repos",
        "Extra inputs are not permitted",
    ),
    (
        "unknown-stream-key",
        _set("delivery_streams[2].colour", "blue"),
        "delivery_streams[2].colour",
        "Extra inputs are not permitted",
    ),
    # These two name the offending key in the problem rather than in the path.
    (
        "custom-field-id-malformed",
        _set("jira_fields.sprint", "sprint"),
        "jira_fields",
        "sprint: 'sprint' is not a custom field id (customfield_NNNNN)",
    ),
    (
        "value-map-unknown-stage",
        _set("value_map.stages.Released", "shipped"),
        "value_map.stages",
        "'Released' maps to unknown stage 'shipped'",
    ),
]

DUPLICATES: list[tuple[str, Mutation, str, str]] = [
    (
        "delivery-stream-name",
        _set("delivery_streams[2].name", "payments"),
        "delivery_streams[2].name",
        "duplicate 'payments' (also delivery_streams[0])",
    ),
    (
        "tech-stream-name",
        _set("tech_streams[3].name", "core-api"),
        "tech_streams[3].name",
        "duplicate 'core-api' (also tech_streams[0])",
    ),
    (
        "github-org-case-insensitive",
        _set("tech_streams[1].github_org", "ACME-Core-API"),
        "tech_streams[1].github_org",
        "duplicate 'acme-core-api' (also tech_streams[0])",
    ),
    (
        "install-id",
        _set("tech_streams[3].github_install_id", "41000101"),
        "tech_streams[3].github_install_id",
        "duplicate '41000101' (also tech_streams[0])",
    ),
    (
        "repository-case-insensitive",
        _set("repositories[6].full_name", "ACME-Core-API/Payments-Service"),
        "repositories[6].full_name",
        "duplicate 'acme-core-api/payments-service' (also repositories[0])",
    ),
    (
        # repositories[3] has no deploy target: the path must still be the repository's own
        "deploy-target",
        _set("repositories[5].deploy_target", "ecs:payments-service"),
        "repositories[5].deploy_target",
        "duplicate 'ecs:payments-service' (also repositories[0])",
    ),
    (
        # lookups match deploy targets case-insensitively, so two may not differ by case only
        "deploy-target-case-insensitive",
        _set("repositories[8].deploy_target", "ECS:Ledger-Service"),
        "repositories[8].deploy_target",
        "duplicate 'ecs:ledger-service' (also repositories[1])",
    ),
    (
        "jira-project-key",
        _set("jira_projects[3].key", "PAY"),
        "jira_projects[3].key",
        "duplicate 'PAY' (also jira_projects[0])",
    ),
    (
        "status-name-in-a-project",
        _append("jira_projects[0].status_mappings", {"status": "in qa", "stage": "qa"}),
        "jira_projects[0]",
        "status 'in qa' is mapped twice",
    ),
]

REFERENCES: list[tuple[str, Mutation, str, str]] = [
    (
        "repository-org-not-a-tech-stream",
        _set("repositories[2].full_name", "acme-payments/api-gateway"),
        "repositories[2].full_name",
        "org 'acme-payments' is not the github_org of any tech stream",
    ),
    (
        "project-delivery-stream-unknown",
        _set("jira_projects[1].delivery_stream", "cards"),
        "jira_projects[1].delivery_stream",
        "unknown delivery stream 'cards'",
    ),
    (
        "component-to-unknown-stream",
        _set("jira_projects[2].components.Credit Reports", "analytics"),
        "jira_projects[2].components.Credit Reports",
        "unknown delivery stream 'analytics'",
    ),
    (
        "component-to-a-tech-stream",
        _set("jira_projects[2].components.Loan Origination", "core-api"),
        "jira_projects[2].components.Loan Origination",
        "unknown delivery stream 'core-api'",
    ),
    (
        "value-map-stream-unknown",
        _set("value_map.streams.Customer Insights", "analytics"),
        "value_map.streams.Customer Insights",
        "unknown stream 'analytics'",
    ),
]


def _ids(cases: list[tuple[str, Mutation, str, str]]) -> list[str]:
    return [c[0] for c in cases]


@pytest.mark.parametrize(("case", "mutate", "path", "problem"), INVALID, ids=_ids(INVALID))
def test_invalid_values(case: str, mutate: Mutation, path: str, problem: str) -> None:
    data = example_dict()
    mutate(data)
    assert_problem(config_error(data), path, problem)


@pytest.mark.parametrize(("case", "mutate", "path", "problem"), DUPLICATES, ids=_ids(DUPLICATES))
def test_duplicates(case: str, mutate: Mutation, path: str, problem: str) -> None:
    data = example_dict()
    mutate(data)
    assert_problem(config_error(data), path, problem)


@pytest.mark.parametrize(("case", "mutate", "path", "problem"), REFERENCES, ids=_ids(REFERENCES))
def test_references(case: str, mutate: Mutation, path: str, problem: str) -> None:
    data = example_dict()
    mutate(data)
    assert_problem(config_error(data), path, problem)


def test_every_problem_is_reported_at_once() -> None:
    data = example_dict()
    for _, mutate, _, _ in REFERENCES[:3]:
        mutate(data)
    _set("delivery_streams[2].name", "payments")(data)
    exc = config_error(data)
    # the duplicate name also makes 'lending' unknown to the LEND components
    for _, _, path, problem in [*REFERENCES[:3], DUPLICATES[0]]:
        assert_problem(exc, path, problem)


def test_a_valid_change_is_still_valid() -> None:
    """The helpers themselves: an unrelated, valid edit parses."""
    data = example_dict()
    _set("delivery_streams[0].display_name", "Payments & Cards")(data)
    _set("repositories[5].deploy_target", None)(data)
    assert parse(data).delivery_streams[0].display_name == "Payments & Cards"


def test_the_example_is_not_modified_by_the_cases() -> None:
    before = copy.deepcopy(example_dict())
    assert example_dict() == before


# --- files ------------------------------------------------------------------------------------


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("organisation:\n  name: Acme\ndelivery_streams: [unclosed\ntech_streams: []\n")
    with pytest.raises(ConfigError) as info:
        read_config(path)
    exc = info.value
    assert exc.file == str(path)
    (problem,) = exc.details
    assert re.fullmatch(r"line \d+, column \d+", problem.field)
    assert problem.field == "line 4, column 13"
    assert problem.problem.startswith("not valid YAML")
    assert f"{path}: line 4, column 13: not valid YAML" in exc.message


def test_yaml_tab_indentation_is_reported_with_position() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("organisation:\n\tname: Acme\n", file=FILE)
    (problem,) = info.value.details
    assert problem.field.startswith("line 2, column ")
    assert f"{FILE}: line 2, column " in info.value.message


@pytest.mark.parametrize(
    "text",
    ["- organisation\n- delivery_streams\n", "just a sentence\n", "42\n", "", "# only a comment\n"],
    ids=["list", "string", "number", "empty", "comment-only"],
)
def test_top_level_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file=FILE)
    assert info.value.details == [FieldProblem("(top level)", "expected a mapping of sections")]
    assert f"{FILE}: (top level): expected a mapping of sections" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as info:
        read_config(path)
    assert info.value.file == str(path)
    assert f"{path}: (file): cannot read: No such file or directory" in info.value.message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_config(tmp_path)
    assert f"{tmp_path}: (file): cannot read: Is a directory" in info.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"))
    path.chmod(0)
    try:
        with pytest.raises(ConfigError) as info:
            read_config(path)
    finally:
        path.chmod(0o600)
    assert f"{path}: (file): cannot read: Permission denied" in info.value.message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("organisation:\n  name: Caf\u00e9 Cr\u00e8me\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        read_config(path)
    (problem,) = info.value.details
    assert problem.field == "(file)"
    assert "utf-8" in problem.problem
    assert info.value.message.startswith("invalid organisation config\n" + f"{path}: (file): ")
