"""The Action's install steps (scripts/action/install.sh), run for real: the version comes
from webhook/__init__.py unless the `version` input names one, the cache key follows the version
and the pinned dependencies, and the wheel of that version (here built from this checkout
and offered by PIP_FIND_LINKS, as a release on the package index would be) is what gets
installed, with its dependencies from the constraints."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webhook import __version__ as VERSION  # the one place the version is written

from .tools import REPO, environment

INSTALL = REPO / "scripts" / "action" / "install.sh"


def run_install(mode: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str],
                                                                   dict[str, str]]:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    output = runner_temp / "output"
    output.write_text("")
    result = subprocess.run(
        ["bash", str(INSTALL), mode], capture_output=True, text=True, timeout=900, check=False,
        env=environment(ACTION_PATH=str(REPO), RUNNER_TEMP=str(runner_temp),
                        GITHUB_OUTPUT=str(output), GITHUB_PATH=str(runner_temp / "path"),
                        RUNNER_OS="Linux", **env))
    outputs = dict(line.partition("=")[::2] for line in output.read_text().splitlines())
    return result, outputs


def test_plan_takes_the_actions_own_version_and_keys_the_cache_by_it(tmp_path: Path) -> None:
    result, outputs = run_install("plan", tmp_path, EDGEWARDEN_VERSION="")
    assert result.returncode == 0, result.stderr
    assert outputs["version"] == VERSION
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.fullmatch(rf"edgewarden-pip-Linux-py{re.escape(python)}-{re.escape(VERSION)}"
                        r"-[0-9a-f]{16}", outputs["cache-key"]), outputs["cache-key"]
    assert outputs["pip-cache-dir"]
    pinned, pinned_outputs = run_install("plan", tmp_path, EDGEWARDEN_VERSION="0.2.0")
    assert pinned.returncode == 0, pinned.stderr
    assert pinned_outputs["version"] == "0.2.0" and "-0.2.0-" in pinned_outputs["cache-key"]


def test_a_version_that_is_no_release_is_refused_before_pip_runs(tmp_path: Path) -> None:
    result, outputs = run_install("plan", tmp_path, EDGEWARDEN_VERSION="1.0; rm -rf /")
    assert result.returncode == 2
    assert "::error title=edgewarden::version input" in result.stderr
    assert "version" not in outputs


def test_install_puts_the_pinned_wheel_on_the_path(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    [wheel] = dist.glob("edgewarden-*.whl")
    assert wheel.name.startswith(f"edgewarden-{VERSION}-")
    result, _ = run_install("install", tmp_path, EDGEWARDEN_VERSION=VERSION,
                            PIP_FIND_LINKS=str(dist))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"edgewarden {VERSION}"
    venv_bin = tmp_path / "runner-temp" / "edgewarden-venv" / "bin"
    assert (tmp_path / "runner-temp" / "path").read_text().splitlines() == [str(venv_bin)]
    # Installed from the wheel, not linked to this checkout.
    shown = subprocess.run([str(venv_bin / "python"), "-m", "pip", "show", "-f", "edgewarden"],
                           capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Editable project location" not in shown
    assert "webhook/defaults/policies/deny-external-ips.yaml" in shown
