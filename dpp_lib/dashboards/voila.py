"""Voila on loopback behind the API's front door (DESIGN §8, §10).

Voila listens on 127.0.0.1 only, under ``/dashboards/``, with the offline ``lab-offline``
template, preheated kernels and the ``X-Forwarded-User`` header handed to the kernel as
``HTTP_X_FORWARDED_USER``. It also requires a token that only the front door knows: it is
generated per launch, given to Voila in its environment (never on the command line, which
every local user can read) and to the proxy in a file of mode 0600 under the var dir. So a
local process that reaches the loopback port still cannot set a user's identity.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from dpp_lib.errors import DppError
from dpp_lib.settings import Settings

log = logging.getLogger(__name__)

BASE_URL = "/dashboards/"
IDENTITY_HEADER = "X-Forwarded-User"
TEMPLATE = "lab-offline"
# The committed template: <share>/voila/templates/lab-offline (on JUPYTER_PATH).
SHARE_DIR = Path(__file__).resolve().parent / "share"
# Request data Voila puts in the kernel's environment; never inherited from Voila's own.
REQUEST_ENV_PREFIXES = ("HTTP_", "QUERY_STRING", "SCRIPT_NAME", "PATH_INFO", "VOILA_")


class VoilaError(DppError):
    """Voila did not start, or stopped."""

    code = "voila_unavailable"


@dataclass(frozen=True)
class VoilaPaths:
    """Where a launch keeps its state: all under ``<var_dir>/dashboards``."""

    root: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> VoilaPaths:
        return cls((settings.var_dir / "dashboards").resolve())

    @property
    def token_file(self) -> Path:
        return self.root / "voila.token"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "runtime"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def log_file(self) -> Path:
        return self.root / "voila.log"

    @property
    def static_roots_file(self) -> Path:
        return self.root / "static-roots.json"


def upstream_url(settings: Settings) -> str:
    """Where the front door reaches Voila."""
    return f"http://127.0.0.1:{settings.voila_port}"


def read_token(settings: Settings) -> str | None:
    """The current launch's token, or None when Voila was never started here."""
    path = VoilaPaths.for_settings(settings).token_file
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def voila_argv(settings: Settings, *, python: str = sys.executable) -> list[str]:
    """The Voila command line (no secret in it)."""
    pool = settings.voila_pool_size
    return [
        python,
        "-m",
        "voila",
        str(settings.dashboards_dir.resolve()),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={settings.voila_port}",
        "--Voila.port_retries=0",  # a taken port is an error, not a different port
        "--Voila.auto_token=True",  # the token comes from JUPYTER_TOKEN (see voila_env)
        f"--Voila.connection_dir_root={VoilaPaths.for_settings(settings).runtime_dir}",
        f"--Voila.base_url={BASE_URL}",
        f"--VoilaConfiguration.template={TEMPLATE}",
        f"--VoilaConfiguration.http_header_envs={IDENTITY_HEADER}",
        "--VoilaConfiguration.show_tracebacks=False",
        # How long Voila waits for a cell's outputs after it ran: nbclient's 4 s drops the
        # outputs of a busy kernel (a page left half drawn under 50 viewers); 60 s keeps them.
        "--VoilaExecutor.iopub_timeout=60",
        f"--VoilaConfiguration.preheat_kernel={pool > 0}",
        f"--VoilaConfiguration.default_pool_size={pool}",
    ]


def voila_env(
    settings: Settings, token: str, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Voila's environment, which its kernels inherit: the database and secrets settings as
    absolute values (kernels run in the notebooks' folder), Jupyter's dirs under the var dir,
    the committed template on JUPYTER_PATH, and no request data of our own."""
    paths = VoilaPaths.for_settings(settings)
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(REQUEST_ENV_PREFIXES) and k != "JUPYTER_PATH"
    }
    env.update(
        {
            "JUPYTER_TOKEN": token,
            "JUPYTER_RUNTIME_DIR": str(paths.runtime_dir),
            "JUPYTER_DATA_DIR": str(paths.data_dir),
            "JUPYTER_CONFIG_DIR": str(paths.config_dir),
            "JUPYTER_PATH": str(SHARE_DIR),
            "DPP_DATABASE_URL": settings.resolved_database_url(),
            "DPP_VAR_DIR": str(settings.var_dir.resolve()),
            "DPP_SECRETS_DIR": str(settings.secrets_dir.resolve()),
            "DPP_ENVIRONMENT": settings.environment,
        }
    )
    return env


def prepare(settings: Settings, *, python: str = sys.executable) -> str:
    """Create the state dirs, the project's kernel spec and a new token; returns the token."""
    paths = VoilaPaths.for_settings(settings)
    for folder in (paths.root, paths.runtime_dir, paths.data_dir, paths.config_dir):
        folder.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    # The dashboards run in this project's interpreter, whatever other "python3" kernels the
    # machine has (the one in the data dir comes first on Jupyter's path).
    kernel_dir = paths.data_dir / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "DPP (Python 3)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    token = secrets.token_urlsafe(32)
    fd = os.open(paths.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


@dataclass(frozen=True)
class StaticRoots:
    """The folders Voila serves ``/voila/static/``, ``/voila/labextensions/`` and
    ``/voila/templates/<TEMPLATE>/static/`` from, in its order of precedence (existing
    folders only)."""

    static: tuple[Path, ...]
    labextensions: tuple[Path, ...]
    template: tuple[Path, ...] = ()  # /voila/templates/<TEMPLATE>/static/ (CSS, style JS)


# Voila's own code, in Voila's environment, says where its static files are (the lab-offline
# template's folders, its bases', Jupyter server's, and the lab extensions on JUPYTER_PATH).
_STATIC_ROOTS = """
import json, sys
from jupyter_server import DEFAULT_STATIC_FILES_PATH
from voila.paths import collect_static_paths
from voila.utils import get_voila_labextensions_path
template = collect_static_paths(["voila", "nbconvert"], sys.argv[1])
static = template + [DEFAULT_STATIC_FILES_PATH]
labextensions = get_voila_labextensions_path()
print(json.dumps({"static": static, "labextensions": labextensions, "template": template}))
"""


def static_roots(
    settings: Settings, *, python: str = sys.executable, timeout: float = 60.0
) -> StaticRoots:
    """Where Voila finds its static files, asked of Voila's code in a subprocess with Voila's
    environment (the folders depend on ``JUPYTER_PATH`` and the Jupyter data dir, which are
    Voila's, not this process's). ``VoilaError`` when that fails."""
    env = voila_env(settings, token="")
    env.pop("JUPYTER_TOKEN")
    try:
        done = subprocess.run(
            [python, "-c", _STATIC_ROOTS, TEMPLATE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        found = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise VoilaError(f"could not ask Voila where its static files are: {exc}") from exc
    if found is None:
        raise VoilaError(
            f"could not ask Voila where its static files are: {done.stderr.strip()[-500:]}"
        )

    def existing(folders: list[str]) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(Path(f) for f in folders if Path(f).is_dir()))

    return StaticRoots(
        existing(found["static"]), existing(found["labextensions"]), existing(found["template"])
    )


def write_static_roots(settings: Settings, roots: StaticRoots) -> None:
    """Record where this launch's Voila finds its static files, for the front door."""
    path = VoilaPaths.for_settings(settings).static_roots_file
    found = {
        "static": [str(p) for p in roots.static],
        "labextensions": [str(p) for p in roots.labextensions],
        "template": [str(p) for p in roots.template],
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(found, indent=1))
    temporary.replace(path)


def read_static_roots(settings: Settings) -> StaticRoots | None:
    """What the current launch recorded (``write_static_roots``), or None."""
    try:
        found = json.loads(VoilaPaths.for_settings(settings).static_roots_file.read_text())
        return StaticRoots(
            tuple(Path(p) for p in found["static"]),
            tuple(Path(p) for p in found["labextensions"]),
            tuple(Path(p) for p in found.get("template", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def known_static_roots(settings: Settings) -> StaticRoots:
    """The front door's lookup: what this launch recorded, else asked of Voila now."""
    return read_static_roots(settings) or static_roots(settings)


class VoilaServer:
    """One Voila subprocess: ``start`` returns once it answers; ``stop`` ends it and its
    kernels (its own process group)."""

    def __init__(self, settings: Settings, *, log_to: Path | None = None) -> None:
        self.settings = settings
        self.url = upstream_url(settings)
        self.log_to = log_to or VoilaPaths.for_settings(settings).log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self, timeout: float = 90.0) -> None:
        if not self.settings.dashboards_dir.is_dir():
            raise VoilaError(f"no dashboard notebooks at {self.settings.dashboards_dir}")
        self.token = prepare(self.settings)
        self.log_to.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_to, "ab") as out:
            self.process = subprocess.Popen(
                voila_argv(self.settings),
                env=voila_env(self.settings, self.token),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        log.info("Voila starting on %s%s (log %s)", self.url, BASE_URL, self.log_to)
        self._record_static_roots()
        self._wait_ready(timeout)

    def _record_static_roots(self) -> None:
        """Find Voila's static folders while it starts, so the front door serves its files
        from the first page on (``ingest_service.voila_static``); a failure leaves them to
        Voila."""
        VoilaPaths.for_settings(self.settings).static_roots_file.unlink(missing_ok=True)
        try:
            write_static_roots(self.settings, static_roots(self.settings))
        except (VoilaError, OSError) as exc:
            log.warning("Voila's static files will be relayed to it: %s", exc)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"token {self.token}"}
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise VoilaError(f"Voila exited with code {code} while starting; see {self.log_to}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.url}{BASE_URL}", headers=headers, timeout=2.0)
                if answer.status_code < 500:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise VoilaError(f"Voila did not answer within {timeout:.0f} s; see {self.log_to}")
            time.sleep(0.2)

    def wait(self) -> int | None:
        """Block until Voila exits; its exit code (None when it was not running)."""
        return None if self.process is None else self.process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to Voila (it shuts its kernels down), then SIGKILL to whatever is left of
        its process group (a kernel that did not stop)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def __enter__(self) -> VoilaServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_voila(settings: Settings) -> Iterator[VoilaServer | None]:
    """Voila for ``dpp up``: started when dashboards are enabled, stopped on exit."""
    if not settings.dashboards_enabled:
        yield None
        return
    with VoilaServer(settings) as server:
        yield server
