"""A fresh clone, as the README's first command leaves it: the repository's files in a
temporary folder, the project's virtualenv active (its bin first on PATH, and ``.venv``
where the README creates it), and no cluster.

Shared by the docs test and the ``--help`` examples test: both promise commands that run
as printed from a checkout.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Build and tool output a clone does not have; .git because a copy needs no history.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".edgewarden-dev",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".import_linter_cache",
)


def copy_repository(destination: Path) -> Path:
    """The repository's files under ``destination``, with ``.venv`` linked to ours."""
    shutil.copytree(REPO, destination, ignore=NOT_IN_A_CLONE, symlinks=True)
    venv = VENV_BIN.parent
    if venv.is_dir():
        (destination / ".venv").symlink_to(venv, target_is_directory=True)
    return destination


def activated_environment() -> dict[str, str]:
    """The environment of a shell after ``. .venv/bin/activate``: the venv's bin first on
    PATH, no edgewarden settings, no kubeconfig named (nothing here may reach a cluster).
    HOME stays: ``--kustomize`` finds a kubectl cached there, as it would for the user."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("EDGEWARDEN_", "KUBECONFIG", "FORCE_COLOR", "NO_COLOR"))
    }
    environment["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    environment["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    environment["COLUMNS"] = "200"
    return environment
