"""Metrics by name: what the API, notebooks, reports and ``dpp metrics`` look up.

``@metric("cycle_time", spec="§6.2.3", summary=...)`` registers a function. A test fails
when a registered metric has no page ``docs/metrics/<name>.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

MODULES = (
    "dpp_lib.metrics.flow",
    "dpp_lib.metrics.quality",
    "dpp_lib.metrics.review",
    "dpp_lib.metrics.dora",
    "dpp_lib.metrics.dora_trend",
    "dpp_lib.metrics.forecast",
    "dpp_lib.metrics.pulse",
    "dpp_lib.metrics.cross_stream",
    "dpp_lib.metrics.data_quality",
)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    func: Callable[..., Any]
    spec: str  # the specification section it implements
    summary: str  # the question it answers, one line

    @property
    def module(self) -> str:
        return self.func.__module__


_REGISTRY: dict[str, MetricInfo] = {}


def metric(name: str, *, spec: str, summary: str) -> Callable[[F], F]:
    def register(func: F) -> F:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = MetricInfo(name, func, spec, summary)
        return func

    return register


def load_all() -> dict[str, MetricInfo]:
    """Import every metric module (those that exist) and return the registry."""
    for module in MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> MetricInfo:
    registry = load_all()
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(registry)}") from None
