"""Named registry of normalisers, keyed by (source, event kind) (STYLE habit 4).

Event kinds: GitHub — the ``X-GitHub-Event`` header (``pull_request``, ...); Jira — the
body's ``webhookEvent`` (``jira:issue_created``, ...); pushed events — ``deployment``,
``incident``, ``pulse``. An unknown kind is recorded as ignored with a reason, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dpp_lib.ingest.types import NormaliseContext, Normalised, Normaliser

NORMALISERS: dict[tuple[str, str], Normaliser] = {}
_loaded = False


def register(source: str, kind: str) -> Callable[[Normaliser], Normaliser]:
    def decorate(fn: Normaliser) -> Normaliser:
        key = (source, kind)
        if key in NORMALISERS:
            raise RuntimeError(f"two normalisers registered for {key}")
        NORMALISERS[key] = fn
        return fn

    return decorate


def load_all() -> None:
    """Import every normaliser module (importing registers them); idempotent."""
    global _loaded
    if not _loaded:
        from dpp_lib.ingest import events, github, jira  # noqa: F401

        _loaded = True


def normalise(
    source: str, kind: str | None, payload: Mapping[str, Any], ctx: NormaliseContext
) -> Normalised:
    """Run the registered normaliser for (source, kind), or say why the delivery is unused."""
    load_all()
    if kind is None:
        return Normalised.ignored(f"{source} delivery has no event type")
    fn = NORMALISERS.get((source, kind))
    if fn is None:
        return Normalised.ignored(f"{source} event {kind!r} is not used by the platform")
    return fn(payload, ctx)
