"""Every registered metric has a page in docs/metrics/ with the sections readers expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpp_lib.metrics.registry import load_all

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics"
SECTIONS = (
    "## What it answers",
    "## Definition",
    "## Inputs",
    "## Units",
    "## Edge cases",
    "## Spec",
)
REGISTRY = load_all()


def test_metrics_are_registered() -> None:
    assert REGISTRY, "no metric is registered"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_metric_has_a_page(name: str) -> None:
    page = DOCS / f"{name}.md"
    assert page.exists(), f"docs/metrics/{name}.md is missing for registered metric {name!r}"
    text = page.read_text()
    missing = [s for s in SECTIONS if s not in text]
    assert missing == [], f"docs/metrics/{name}.md lacks {missing}"
    spec = REGISTRY[name].spec
    assert spec in text, f"docs/metrics/{name}.md does not name its spec section {spec}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_metric_takes_as_of_and_is_documented(name: str) -> None:
    import inspect

    info = REGISTRY[name]
    params = inspect.signature(info.func).parameters
    assert "as_of" in params or "window" in params, f"{name} takes neither as_of nor window"
    assert params.get("as_of", params.get("window")).kind is inspect.Parameter.KEYWORD_ONLY  # type: ignore[union-attr]
    assert info.func.__doc__, f"{name} has no docstring"


def test_no_orphan_pages() -> None:
    pages = {p.stem for p in DOCS.glob("*.md")} - {"README"}
    assert pages <= set(REGISTRY), f"pages without a registered metric: {pages - set(REGISTRY)}"
