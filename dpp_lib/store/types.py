"""Column types that behave the same on Postgres and SQLite.

Postgres gets its native types (TIMESTAMPTZ, UUID, JSONB, ARRAY); SQLite stores the
same values as text/JSON, and reads give back the same Python objects.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """TIMESTAMPTZ: stores UTC, always returns aware UTC datetimes, refuses naive input."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a TIMESTAMPTZ column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class StrArray(sa.types.TypeDecorator[list[str]]):
    """VARCHAR[] on Postgres, a JSON list on SQLite."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(sa.String()))
        return dialect.type_descriptor(sa.JSON())


class UuidArray(sa.types.TypeDecorator[list[uuid.UUID]]):
    """UUID[] on Postgres, a JSON list of strings on SQLite; always returns UUIDs."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(sa.Uuid()))
        return dialect.type_descriptor(sa.JSON())

    def process_bind_param(self, value: list[uuid.UUID] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return [str(v) for v in value]

    def process_result_value(self, value: Any, dialect: Dialect) -> list[uuid.UUID] | None:
        if value is None:
            return None
        return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in value]


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def now_utc() -> datetime:
    return datetime.now(UTC)
