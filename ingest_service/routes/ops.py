"""GET /health (the process is up). Reveals nothing sensitive."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import ORJSONResponse

from dpp_lib import __version__

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> ORJSONResponse:
    """Liveness: answers when the process can serve requests."""
    return ORJSONResponse({"status": "ok", "version": __version__})
