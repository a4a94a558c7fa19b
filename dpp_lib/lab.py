"""``dpp lab`` / ``make lab``: JupyterLab for analysts, with the project's kernel, this
installation's database, and nothing fetched from the internet.

JupyterLab's own state (settings, workspaces, runtime files) lives under
``<var_dir>/jupyter``; its kernel spec ``python3`` runs this project's interpreter; the
database and secrets settings are passed as absolute values, because kernels run in the
notebook's folder. The announcements feed, the update check and the extension manager's
package index are switched off: they would call out to the internet.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dpp_lib.settings import Settings

GETTING_STARTED = Path("explore/getting_started.ipynb")  # relative to the notebooks dir

SERVER_CONFIG = {
    "ServerApp": {"ip": "127.0.0.1", "port_retries": 0},
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
}


@dataclass(frozen=True)
class LabPaths:
    root: Path
    config_dir: Path
    data_dir: Path
    runtime_dir: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> LabPaths:
        root = (settings.var_dir / "jupyter").resolve()
        return cls(root, root / "config", root / "data", root / "runtime")


def prepare(settings: Settings, *, python: str = sys.executable) -> LabPaths:
    """Create JupyterLab's state dirs, its offline configuration and the project's kernel."""
    paths = LabPaths.for_settings(settings)
    for folder in (paths.config_dir, paths.data_dir, paths.runtime_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (paths.config_dir / "jupyter_server_config.json").write_text(
        json.dumps(SERVER_CONFIG, indent=1)
    )
    kernel_dir = paths.data_dir / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (DPP)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return paths


def lab_argv(
    settings: Settings,
    *,
    port: int = 8888,
    open_browser: bool = True,
    python: str = sys.executable,
) -> list[str]:
    """The JupyterLab command line, opening the getting-started notebook."""
    notebooks = settings.notebooks_dir.resolve()
    # Containers and CI machines often run as root, which Jupyter refuses without the flag.
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [
        python,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={notebooks}",
        f"--ServerApp.port={port}",
        f"--ServerApp.open_browser={open_browser}",
        f"--LabApp.default_url=/lab/tree/{GETTING_STARTED.as_posix()}",
        *as_root,
    ]


def lab_env(settings: Settings, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """JupyterLab's environment, which its kernels inherit."""
    paths = LabPaths.for_settings(settings)
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(paths.config_dir),
            "JUPYTER_DATA_DIR": str(paths.data_dir),
            "JUPYTER_RUNTIME_DIR": str(paths.runtime_dir),
            # In a virtual environment Jupyter prefers the environment's own "python3" spec
            # (a bare "python") to the one written here with this interpreter's full path.
            "JUPYTER_PREFER_ENV_PATH": "0",
            "DPP_DATABASE_URL": settings.resolved_database_url(),
            "DPP_VAR_DIR": str(settings.var_dir.resolve()),
            "DPP_SECRETS_DIR": str(settings.secrets_dir.resolve()),
            "DPP_ENVIRONMENT": settings.environment,
        }
    )
    return env
