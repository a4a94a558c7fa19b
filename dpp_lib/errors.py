"""One exception tree for the platform; every error carries the context that explains it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of an input: ``field`` is a dotted/indexed path."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class DppError(Exception):
    """Base class for every error the platform raises on purpose."""

    code = "dpp_error"
    http_status = 422  # what the API answers when the error reaches it

    def __init__(self, message: str, *, details: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ConfigError(DppError):
    """The org config file is invalid; names the file, the path inside it and the problem."""

    code = "invalid_config"

    def __init__(self, file: str, problems: list[FieldProblem]) -> None:
        lines = [f"{file}: {p.field}: {p.problem}" for p in problems]
        super().__init__("invalid organisation config\n" + "\n".join(lines), details=problems)
        self.file = file


class SettingsError(DppError):
    """A process setting or secret is missing or unsafe."""

    code = "invalid_settings"


class ValidationFailed(DppError):
    """An input body failed validation (HTTP 400/422)."""

    code = "validation_failed"


class UnknownReference(DppError):
    """An input names a repository, service or stream that is not registered (HTTP 422)."""

    code = "unknown_reference"


@dataclass
class NormaliseError(DppError):
    """A stored delivery could not be normalised; the worker retries and dead-letters it."""

    source: str
    delivery_id: str
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        DppError.__init__(self, f"{self.source} delivery {self.delivery_id}: {self.reason}")


class BadParameter(DppError):
    """A query parameter is not acceptable (HTTP 400); ``details`` names the parameter, the
    value and, where there is a fixed set, the allowed values."""

    code = "bad_request"
    http_status = 400

    def __init__(self, parameter: str, message: str, *, allowed: list[str] | None = None) -> None:
        problem = message if not allowed else f"{message}; allowed: {', '.join(allowed)}"
        super().__init__(f"{parameter}: {problem}", details=[FieldProblem(parameter, problem)])
        self.parameter = parameter
        self.allowed = allowed


class NotFound(DppError):
    """What the request names (a stream, a sprint, a PR event) does not exist (HTTP 404)."""

    code = "not_found"
    http_status = 404
