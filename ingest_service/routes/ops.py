"""GET /health (the process is up). Reveals nothing sensitive."""

from __future__ import annotations

from fastapi import APIRouter

from dpp_lib import __version__
from ingest_service.responses import JsonResponse

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> JsonResponse:
    """Liveness: answers when the process can serve requests."""
    return JsonResponse({"status": "ok", "version": __version__})
