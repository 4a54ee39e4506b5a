"""Without the built tools, the API-server tests skip on a laptop and fail in CI, and both
say which tool is missing and how to build it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .binaries import REPO

E2E_SAMPLE = "tests/e2e/test_enforcing.py"


def run_e2e(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CI", "EDGEWARDEN_E2E_BACKEND", "EDGEWARDEN_KUBE_CACHE")}
    clean["EDGEWARDEN_KUBE_CACHE"] = str(tmp_path / "empty-cache")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", E2E_SAMPLE],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**clean, **env},
        check=False)


def test_on_a_laptop_without_the_binaries_the_suite_skips_and_says_how_to_build_them(
    tmp_path: Path,
) -> None:
    result = run_e2e(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" not in result.stdout and "skipped" in result.stdout, result.stdout
    assert "kube-apiserver" in result.stdout
    assert "scripts/kube-binaries" in result.stdout


def test_in_ci_missing_binaries_fail_the_run(tmp_path: Path) -> None:
    result = run_e2e(tmp_path, CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CI=true and the Kubernetes binaries are missing" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1], result.stdout


def test_the_build_script_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    result = subprocess.run(["shellcheck", str(REPO / "scripts" / "kube-binaries"),
                             str(REPO / "scripts" / "test")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout
