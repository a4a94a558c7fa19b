"""Who is looking at a dashboard, from inside its kernel.

The front door signs the user in and sends Voila their user id in ``X-Forwarded-User``;
Voila (``http_header_envs``) puts it in the kernel's environment as ``HTTP_X_FORWARDED_USER``
together with the URL's query in ``QUERY_STRING``. With preheated kernels both arrive only
after ``voila.utils.wait_for_request()``, which a notebook calls after its heavy imports and
before anything here. Voila listens on loopback only and requires the front door's token, so
nobody else can set that header.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qs

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.roles import principal_for_user
from dpp_lib.errors import DppError

USER_ENV = "HTTP_X_FORWARDED_USER"
QUERY_ENV = "QUERY_STRING"


class NotSignedIn(DppError):
    """The page was not opened through the front door with a valid session, or the user no
    longer exists or is inactive."""

    code = "not_signed_in"
    http_status = 401


def signed_in_user_id(environ: Mapping[str, str] | None = None) -> uuid.UUID:
    """The user id the front door passed, or ``NotSignedIn``."""
    env = os.environ if environ is None else environ
    value = env.get(USER_ENV, "").strip()
    if not value:
        raise NotSignedIn("no signed-in user: open the dashboards through the platform's sign-in")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotSignedIn(f"the front door passed an unknown kind of user id {value!r}") from None


def current_principal(conn: sa.Connection, environ: Mapping[str, str] | None = None) -> Principal:
    """The signed-in user's permissions and visible streams, read now from the database
    (a role revoked since sign-in is gone on the next page load)."""
    user_id = signed_in_user_id(environ)
    principal = principal_for_user(conn, user_id)
    if principal is None:
        raise NotSignedIn(f"user {user_id} is unknown or deactivated")
    return principal


def query_params(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The page URL's query parameters (the last value of a repeated one), e.g.
    ``{"stream": "payments"}`` for ``?stream=payments``."""
    env = os.environ if environ is None else environ
    parsed = parse_qs(env.get(QUERY_ENV, ""), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}
