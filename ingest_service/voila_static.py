"""Voila's static files (its Javascript bundles and chunks, CSS, fonts and the lab
extensions' bundles) served by the front door from disk rather than relayed to Voila.

Voila is one process: while it streams many pages and relays their kernels' messages, its
event loop serves a script chunk late. With 50 viewers at once, 49 pages failed because a
chunk (``voila/static/9151.voila.js``) arrived after Chromium's 120 s limit for it. These
files are the same for every viewer and never change while Voila runs, so the front door
answers them itself, with an ETag (a browser's revalidation costs a 304).

Only ``/voila/static/<file>``, ``/voila/labextensions/<file>`` and the lab-offline
template's ``/voila/templates/lab-offline/static/<file>`` are served, from the
folders Voila itself would look in, in its order of precedence: recorded by Voila's launch
(``dpp_lib.dashboards.voila.write_static_roots``), else asked of Voila's code
(``static_roots``, a subprocess). Anything not found there, or outside those folders after
resolving symbolic links, and every request while the folders are not known yet, is
relayed to Voila as before: Voila's answer, a 404 included, stays the reference.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Receive, Scope, Send

from dpp_lib.dashboards.voila import TEMPLATE, StaticRoots

log = logging.getLogger(__name__)

KINDS = {
    "/voila/static/": "static",
    "/voila/labextensions/": "labextensions",
    f"/voila/templates/{TEMPLATE}/static/": "template",  # the page's CSS and style script
}
RETRY_SECONDS = 60.0  # after failing to find the folders, relay until asking again


class VoilaStaticFiles:
    """``serve`` answers a request for one of Voila's static files from disk and returns True,
    or returns False (the caller relays it to Voila). ``roots`` (a short subprocess) is
    called in a background thread on the first request to the dashboards (a page, whose
    scripts come after it), and again ``RETRY_SECONDS`` after a failure; until it has
    answered, requests are relayed: none waits for it."""

    def __init__(self, roots: Callable[[], StaticRoots]) -> None:
        self._find_roots = roots
        self._folders: dict[str, StaticFiles] | None = None
        self._failed_at = -float("inf")
        self._lock = threading.Lock()
        self._finding: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the folders are known (or finding them failed); True when known."""
        finding = self._finding
        if finding is not None:
            finding.join(timeout)
        return self._folders is not None

    async def serve(self, scope: Scope, receive: Receive, send: Send, path: str) -> bool:
        """``path``: the checked path below ``/dashboards`` (``..`` already resolved)."""
        folders = self._folders
        if folders is None:
            self.prepare()
            return False
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return False
        kind, relative = _split(path)
        if kind is None or not relative:
            return False
        files = folders[kind]
        try:
            full_path, found = await anyio.to_thread.run_sync(files.lookup_path, relative)
        except (OSError, ValueError):
            return False
        if found is None or not stat.S_ISREG(found.st_mode):
            return False
        response: Response = FileResponse(full_path, stat_result=found)
        if files.is_not_modified(response.headers, Headers(scope=scope)):
            response = NotModifiedResponse(response.headers)
        # Revalidate on every visit: the files change when Voila is upgraded.
        response.headers["cache-control"] = "no-cache"
        response.headers["x-content-type-options"] = "nosniff"
        await response(scope, receive, send)
        return True

    def prepare(self) -> None:
        """Start finding the folders, unless that is under way, done, or failed recently."""
        with self._lock:
            busy = self._finding is not None and self._finding.is_alive()
            recent = time.monotonic() - self._failed_at < RETRY_SECONDS
            if self._folders is not None or busy or recent:
                return
            self._finding = threading.Thread(
                target=self._load, name="voila-static-roots", daemon=True
            )
            self._finding.start()

    def _load(self) -> None:
        try:
            roots = self._find_roots()
        except Exception as exc:  # any failure: relay to Voila, ask again later
            log.warning("dashboards: Voila's static files are relayed: %s", exc)
            self._failed_at = time.monotonic()
            return
        self._folders = {
            "static": _files(roots.static),
            "labextensions": _files(roots.labextensions),
            "template": _files(roots.template),
        }


def _files(folders: tuple[os.PathLike[str], ...]) -> StaticFiles:
    """Starlette's lookup over several folders: the first that has the file wins, and a path
    that resolves (symbolic links included) outside its folder is not found."""
    files = StaticFiles(directory=None, check_dir=False)
    files.all_directories = list(folders)
    return files


def _split(path: str) -> tuple[str | None, str]:
    for prefix, kind in KINDS.items():
        if path.startswith(prefix):
            return kind, path[len(prefix) :]
    return None, ""
