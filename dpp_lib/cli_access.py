"""``dpp user``, ``dpp role``, ``dpp group`` and ``dpp apikey rotate``: access
administration from the command line (audited as ``cli:<os user>``)."""

from __future__ import annotations

import getpass
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
import typer

from dpp_lib.errors import DppError
from dpp_lib.settings import Settings, ensure_secrets

user_app = typer.Typer(
    help="Users (database sign-in, or OIDC users seen so far)", no_args_is_help=True
)
role_app = typer.Typer(
    help="Role grants with stream scope (manual overrides)", no_args_is_help=True
)
group_app = typer.Typer(help="OIDC group → role mappings", no_args_is_help=True)
T = TypeVar("T")

Delivery = Annotated[str | None, typer.Option(help="Delivery stream (name or UUID); none = all")]
Tech = Annotated[str | None, typer.Option(help="Tech stream (name or UUID); none = all")]
Role = Annotated[str, typer.Option(help="viewer, team_member, stream_lead or platform_admin")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _conn(write: bool = True) -> Iterator[sa.Connection]:
    from dpp_lib.store.db import make_engine

    settings = Settings()
    ensure_secrets(settings)
    engine = make_engine(settings.resolved_database_url())
    with engine.begin() if write else engine.connect() as conn:
        yield conn


def _run(work: Callable[[sa.Connection], T], write: bool = True) -> T:
    """Run ``work`` in a transaction; a DppError becomes ``error: …`` and exit code 1."""
    try:
        with _conn(write) as conn:
            return work(conn)
    except DppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The user's email (sign-in name)")],
    name: Annotated[str, typer.Option(help="Display name")],
    oidc: Annotated[bool, typer.Option(help="Signs in through OIDC (no password)")] = False,
    password_env: Annotated[
        str | None, typer.Option(help="Read the password from this environment variable")
    ] = None,
) -> None:
    """Create a user. A database user's password is read from --password-env or asked for
    (never given on the command line, which other users can see)."""
    from dpp_lib.auth.users import create_user

    password = None
    if not oidc:
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                typer.echo(f"error: environment variable {password_env} is empty", err=True)
                raise typer.Exit(1)
        elif sys.stdin.isatty():
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\n")
    user = _run(
        lambda c: create_user(
            c,
            email=email,
            display_name=name,
            password=password,
            auth_source="oidc" if oidc else "database",
            actor=_actor(),
        )
    )
    typer.echo(f"created user {user.user_id} ({user.email}, {user.auth_source})")


@user_app.command("deactivate")
def user_deactivate(user: Annotated[str, typer.Argument(help="User id or email")]) -> None:
    """Deactivate a user and revoke all its sessions."""
    from dpp_lib.auth.users import deactivate_user, resolve_user

    done = _run(lambda c: deactivate_user(c, resolve_user(c, user).user_id, actor=_actor()))
    typer.echo(f"deactivated {done.email}")


@user_app.command("list")
def user_list() -> None:
    """Every user with its grants, as JSON."""
    from dpp_lib.auth.roles import list_roles
    from dpp_lib.auth.users import list_users

    def load(c: sa.Connection) -> list[dict[str, Any]]:
        grants = list_roles(c)
        return [
            u.as_dict() | {"roles": [g.as_dict() for g in grants if g.user_id == u.user_id]}
            for u in list_users(c)
        ]

    _print(_run(load, write=False))


def _grant(user: str, role: str, delivery: str | None, tech: str | None, revoke: bool) -> Any:
    from dpp_lib.auth.roles import grant_role, revoke_role
    from dpp_lib.auth.streams import stream_id
    from dpp_lib.auth.users import resolve_user

    def work(c: sa.Connection) -> Any:
        action = revoke_role if revoke else grant_role
        return action(
            c,
            user_id=resolve_user(c, user).user_id,
            role=role,
            delivery_stream_id=stream_id(c, "delivery", delivery),
            tech_stream_id=stream_id(c, "tech", tech),
            actor=_actor(),
        )

    return _run(work)


@role_app.command("grant")
def role_grant(
    user: Annotated[str, typer.Argument(help="User id or email")],
    role: Role,
    delivery_stream: Delivery = None,
    tech_stream: Tech = None,
) -> None:
    """Grant a role, for every stream or one delivery and/or tech stream."""
    grant = _grant(user, role, delivery_stream, tech_stream, revoke=False)
    typer.echo(f"granted {grant.role} to {user}")


@role_app.command("revoke")
def role_revoke(
    user: Annotated[str, typer.Argument(help="User id or email")],
    role: Role,
    delivery_stream: Delivery = None,
    tech_stream: Tech = None,
) -> None:
    """Revoke the grant with exactly this role and stream scope."""
    _grant(user, role, delivery_stream, tech_stream, revoke=True)
    typer.echo(f"revoked {role} from {user}")


@role_app.command("list")
def role_list(
    user: Annotated[str | None, typer.Argument(help="User id or email; none = everyone")] = None,
) -> None:
    """Role grants as JSON."""
    from dpp_lib.auth.roles import list_roles
    from dpp_lib.auth.users import resolve_user

    _print(
        _run(
            lambda c: [
                g.as_dict() for g in list_roles(c, resolve_user(c, user).user_id if user else None)
            ],
            write=False,
        )
    )


@group_app.command("map")
def group_map(
    group: Annotated[str, typer.Argument(help="Group name, or a regular expression with --regex")],
    role: Role,
    regex: Annotated[
        bool, typer.Option(help="The group is a regular expression (full match)")
    ] = False,
    delivery_stream: Delivery = None,
    tech_stream: Tech = None,
) -> None:
    """Give members of an OIDC group a role at their next sign-in."""
    from dpp_lib.auth.roles import map_group
    from dpp_lib.auth.streams import stream_id

    made = _run(
        lambda c: map_group(
            c,
            group_pattern=group,
            is_regex=regex,
            role=role,
            delivery_stream_id=stream_id(c, "delivery", delivery_stream),
            tech_stream_id=stream_id(c, "tech", tech_stream),
            actor=_actor(),
        )
    )
    typer.echo(f"mapped {made.group_pattern!r} to {made.role} ({made.mapping_id})")


@group_app.command("unmap")
def group_unmap(mapping_id: Annotated[str, typer.Argument(help="The mapping's id")]) -> None:
    """Remove a group mapping (members lose its role at their next sign-in)."""
    from dpp_lib.auth.errors import AccessError
    from dpp_lib.auth.roles import unmap_group

    def work(c: sa.Connection) -> Any:
        try:
            ident = uuid.UUID(mapping_id)
        except ValueError:
            raise AccessError(f"{mapping_id!r} is not a mapping id (a UUID)") from None
        return unmap_group(c, ident, actor=_actor())

    gone = _run(work)
    typer.echo(f"unmapped {gone.group_pattern!r} → {gone.role}")


@group_app.command("list")
def group_list() -> None:
    """Group mappings as JSON."""
    from dpp_lib.auth.roles import list_mappings

    _print(_run(lambda c: [m.as_dict() for m in list_mappings(c)], write=False))


def apikey_rotate(key: Annotated[str, typer.Argument(help="Key id or displayed prefix")]) -> None:
    """Replace a key's secret: a new key (same name, permissions, scope, expiry) is printed
    once, as the last line of stdout; the old one stops working now."""
    from dpp_lib.auth.audit import record
    from dpp_lib.store.api_keys import rotate_key

    def work(c: sa.Connection) -> Any:
        new, secret, old = rotate_key(c, key)
        record(
            c,
            actor=_actor(),
            action="api_key.rotate",
            target_type="api_key",
            target_id=str(old.key_id),
            details={"new_key_id": str(new.key_id)},
            bump=False,
        )
        return new, secret, old

    new, secret, old = _run(work)
    typer.echo(
        f"rotated {old.key_id}: new key {new.key_id} ({new.key_prefix}…); "
        "store it now, it is not shown again:"
    )
    typer.echo(secret)
