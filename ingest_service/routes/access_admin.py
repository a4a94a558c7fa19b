"""Access administration (platform admins: the ``admin`` permission, unscoped): users,
roles, group mappings, API keys and the audit log. Every change is audited with the caller
and its address. Streams are named by name or UUID."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from dpp_lib.access import Principal
from dpp_lib.auth import roles, users
from dpp_lib.auth.audit import actor_uuid, record
from dpp_lib.auth.errors import require_printable
from dpp_lib.auth.streams import stream_id, stream_ids
from dpp_lib.errors import BadParameter
from dpp_lib.store import api_keys, audit, key_usage
from dpp_lib.store.types import now_utc
from ingest_service.deps import parse_json_object, read_body, service, validate_body
from ingest_service.responses import JsonResponse
from ingest_service.serving import authorise, require_unrestricted
from ingest_service.sessions import client_ip

router = APIRouter(prefix="/api/v1/admin", tags=["access administration"])
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


async def _admin(request: Request) -> Principal:
    principal = await authorise(request, "admin", "summary")
    require_unrestricted(principal, "access administration")
    return principal


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.subject}"


async def _body(request: Request, model: type[M]) -> M:
    return validate_body(model, parse_json_object(await read_body(request, 64 * 1024)))


async def _write(request: Request, work: Callable[[Any], T]) -> T:
    state = service(request)

    def run() -> T:
        with state.engine.begin() as conn:
            return work(conn)

    result = await run_in_threadpool(run)
    state.versions.expire()  # this process sees the change at once
    return result


async def _read(request: Request, work: Callable[[Any], T]) -> T:
    state = service(request)

    def run() -> T:
        with state.engine.connect() as conn:
            return work(conn)

    return await run_in_threadpool(run)


def _ok(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse({"status": "ok", "data": data}, status_code=status)


# --- users ---------------------------------------------------------------------------------
class NewUser(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    display_name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(None, max_length=1024, description="database users only")
    auth_source: Literal["database", "oidc"] = "database"


@router.get("/users")
async def list_users(request: Request) -> JsonResponse:
    """Every user (active or not) with its role grants."""
    await _admin(request)

    def load(conn: Any) -> list[dict[str, Any]]:
        grants = roles.list_roles(conn)
        return [
            u.as_dict() | {"roles": [g.as_dict() for g in grants if g.user_id == u.user_id]}
            for u in users.list_users(conn)
        ]

    return _ok(await _read(request, load))


@router.post("/users", status_code=201)
async def create_user(request: Request) -> JsonResponse:
    """Create a user (a database user needs a password of 12 characters or more)."""
    principal = await _admin(request)
    body = await _body(request, NewUser)
    made = await _write(
        request,
        lambda conn: users.create_user(
            conn,
            email=body.email,
            display_name=body.display_name,
            password=body.password,
            auth_source=body.auth_source,
            actor=_actor(principal),
            source_ip=client_ip(request),
        ),
    )
    return _ok(made.as_dict(), 201)


@router.post("/users/{user}/deactivate")
async def deactivate_user(request: Request, user: str) -> JsonResponse:
    """Deactivate a user (by id or email) and revoke all its sessions."""
    principal = await _admin(request)

    def work(conn: Any) -> dict[str, Any]:
        found = users.resolve_user(conn, user)
        done = users.deactivate_user(
            conn, found.user_id, actor=_actor(principal), source_ip=client_ip(request)
        )
        return done.as_dict()

    return _ok(await _write(request, work))


# --- roles ---------------------------------------------------------------------------------
class Grant(BaseModel):
    role: Literal["viewer", "team_member", "stream_lead", "platform_admin"]
    delivery_stream: str | None = Field(None, description="name or UUID; none = every stream")
    tech_stream: str | None = Field(None, description="name or UUID; none = every stream")


@router.get("/roles")
async def list_role_grants(
    request: Request,
    user: Annotated[str | None, Query(max_length=320, description="User id or email")] = None,
) -> JsonResponse:
    """Role grants: every user's, or one user's."""
    await _admin(request)

    def load(conn: Any) -> list[dict[str, Any]]:
        who = users.resolve_user(conn, user).user_id if user else None
        return [g.as_dict() for g in roles.list_roles(conn, who)]

    return _ok(await _read(request, load))


async def _grant(request: Request, user: str, revoke: bool) -> JsonResponse:
    principal = await _admin(request)
    body = await _body(request, Grant)

    def work(conn: Any) -> Any:
        found = users.resolve_user(conn, user)
        action = roles.revoke_role if revoke else roles.grant_role
        result = action(
            conn,
            user_id=found.user_id,
            role=body.role,
            delivery_stream_id=stream_id(conn, "delivery", body.delivery_stream),
            tech_stream_id=stream_id(conn, "tech", body.tech_stream),
            actor=_actor(principal),
            source_ip=client_ip(request),
        )
        return {"revoked": result} if isinstance(result, int) else result.as_dict()

    return _ok(await _write(request, work))


@router.post("/users/{user}/roles")
async def grant_role(request: Request, user: str) -> JsonResponse:
    """Grant a role (manual: it stays whatever the user's OIDC groups say)."""
    return await _grant(request, user, revoke=False)


@router.post("/users/{user}/roles/revoke")
async def revoke_role(request: Request, user: str) -> JsonResponse:
    """Revoke a role grant with exactly that stream scope."""
    return await _grant(request, user, revoke=True)


# --- group mappings ------------------------------------------------------------------------
class Mapping(Grant):
    group_pattern: str = Field(min_length=1, max_length=300)
    is_regex: bool = False


@router.get("/group-mappings")
async def list_group_mappings(request: Request) -> JsonResponse:
    await _admin(request)
    return _ok(await _read(request, lambda c: [m.as_dict() for m in roles.list_mappings(c)]))


@router.post("/group-mappings", status_code=201)
async def map_group(request: Request) -> JsonResponse:
    """Map an OIDC group (exact name, or a regular expression over the whole name) to a role."""
    principal = await _admin(request)
    body = await _body(request, Mapping)

    def work(conn: Any) -> dict[str, Any]:
        return roles.map_group(
            conn,
            group_pattern=body.group_pattern,
            is_regex=body.is_regex,
            role=body.role,
            delivery_stream_id=stream_id(conn, "delivery", body.delivery_stream),
            tech_stream_id=stream_id(conn, "tech", body.tech_stream),
            actor=_actor(principal),
            source_ip=client_ip(request),
        ).as_dict()

    return _ok(await _write(request, work), 201)


@router.delete("/group-mappings/{mapping_id}")
async def unmap_group(request: Request, mapping_id: uuid.UUID) -> JsonResponse:
    principal = await _admin(request)
    gone = await _write(
        request,
        lambda c: roles.unmap_group(
            c, mapping_id, actor=_actor(principal), source_ip=client_ip(request)
        ),
    )
    return _ok(gone.as_dict())


# --- API keys ------------------------------------------------------------------------------
class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    permissions: list[Literal["events:write", "metrics:read", "admin"]] = Field(min_length=1)
    delivery_streams: list[str] = Field(default_factory=list)
    tech_streams: list[str] = Field(default_factory=list)
    expires_days: int | None = Field(None, ge=1, le=3650)


def key_dict(key: api_keys.ApiKey) -> dict[str, Any]:
    return {
        "key_id": str(key.key_id),
        "prefix": key.key_prefix,
        "name": key.display_name,
        "permissions": list(key.permissions),
        "active": key.is_active,
        "delivery_streams": sorted(map(str, key.delivery_streams or [])) or None,
        "tech_streams": sorted(map(str, key.tech_streams or [])) or None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@router.get("/api-keys")
async def list_keys(request: Request) -> JsonResponse:
    """Every API key (never the secret)."""
    await _admin(request)
    return _ok(await _read(request, lambda c: [key_dict(k) for k in api_keys.list_keys(c)]))


@router.post("/api-keys", status_code=201)
async def create_key(request: Request) -> JsonResponse:
    """Create a key; the answer holds the secret, shown this once."""
    principal = await _admin(request)
    body = await _body(request, NewKey)

    require_printable(body.name, "the key name")

    def work(conn: Any) -> dict[str, Any]:
        key, secret = api_keys.create_key(
            conn,
            name=body.name,
            permissions=list(body.permissions),
            delivery_streams=stream_ids(conn, "delivery", body.delivery_streams) or None,
            tech_streams=stream_ids(conn, "tech", body.tech_streams) or None,
            expires_days=body.expires_days,
            created_by=actor_uuid(_actor(principal)),
        )
        record(
            conn,
            actor=_actor(principal),
            action="api_key.create",
            target_type="api_key",
            target_id=str(key.key_id),
            source_ip=client_ip(request),
            details={"name": key.display_name, "permissions": list(key.permissions)},
            bump=False,
        )
        return key_dict(key) | {"secret": secret}

    return _ok(await _write(request, work), 201)


@router.post("/api-keys/{key}/rotate")
async def rotate_key(request: Request, key: str) -> JsonResponse:
    """A new secret (shown once) for the key's name, permissions, scope and expiry; the old
    secret stops working now."""
    principal = await _admin(request)
    require_printable(key, "the key id or prefix")

    def work(conn: Any) -> dict[str, Any]:
        new, secret, old = api_keys.rotate_key(conn, key, created_by=actor_uuid(_actor(principal)))
        record(
            conn,
            actor=_actor(principal),
            action="api_key.rotate",
            target_type="api_key",
            target_id=str(old.key_id),
            source_ip=client_ip(request),
            details={"new_key_id": str(new.key_id)},
            bump=False,
        )
        return key_dict(new) | {"secret": secret, "replaces": str(old.key_id)}

    return _ok(await _write(request, work))


@router.post("/api-keys/{key}/revoke")
async def revoke_key(request: Request, key: str) -> JsonResponse:
    principal = await _admin(request)
    require_printable(key, "the key id or prefix")

    def work(conn: Any) -> dict[str, Any]:
        gone = api_keys.revoke_key(conn, key)
        record(
            conn,
            actor=_actor(principal),
            action="api_key.revoke",
            target_type="api_key",
            target_id=str(gone.key_id),
            source_ip=client_ip(request),
            bump=False,
        )
        return key_dict(gone)

    return _ok(await _write(request, work))


@router.get("/api-keys/usage")
async def keys_usage(
    request: Request,
    hours: Annotated[int, Query(ge=1, le=24 * 90, description="How far back")] = 24,
) -> JsonResponse:
    """Requests per key per hour (written by each API process about once a minute)."""
    await _admin(request)
    since = now_utc() - timedelta(hours=hours)
    return _ok(await _read(request, lambda c: key_usage.usage(c, since=since)))


# --- audit ---------------------------------------------------------------------------------
def _moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(name, f"{value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise BadParameter(name, f"{value!r} needs a time zone offset (e.g. Z)")
    return moment


@router.get("/audit")
async def audit_log(
    request: Request,
    action: Annotated[str | None, Query(max_length=100, description="exact, or prefix*")] = None,
    actor: Annotated[str | None, Query(max_length=250, description="id or type:id")] = None,
    since: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JsonResponse:
    """The audit log, newest first, filtered and paginated."""
    await _admin(request)
    for name, value in (("action", action), ("actor", actor)):
        if value and any(ord(c) < 32 for c in value):
            raise BadParameter(name, f"{name} contains control characters")
    start, end = _moment("since", since), _moment("until", until)
    rows, total = await _read(
        request,
        lambda c: audit.search(
            c, action=action, actor=actor, since=start, until=end, limit=limit, offset=offset
        ),
    )
    return JsonResponse(
        {
            "status": "ok",
            "data": rows,
            "meta": {
                "total": total,
                "limit": limit,
                "offset": offset,
                "next_offset": offset + limit if offset + limit < total else None,
            },
        }
    )
