"""How the conformance cases reach the test: scripts/cel-spec and the skip or failure
without them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cel_conformance.cases import data_dir, pinned_version
from tests.kube.binaries import REPO

SCRIPT = REPO / "scripts" / "cel-spec"


def test_the_pin_names_a_release() -> None:
    assert pinned_version().startswith("v0."), "cel.dev/expr is pinned to a tagged release"
    go_sum = (REPO / "tests" / "kube" / "cel-spec" / "go.sum").read_text()
    assert f"cel.dev/expr {pinned_version()} h1:" in go_sum, "go.sum holds the pin's checksum"


def test_without_the_cases_the_test_skips_and_says_how_to_fetch_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEWARDEN_KUBE_CACHE", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="run scripts/cel-spec"):
        data_dir()


def test_in_ci_missing_cases_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEWARDEN_KUBE_CACHE", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not fetched"):
        data_dir()


def test_the_script_is_shellcheck_clean() -> None:
    assert os.access(SCRIPT, os.X_OK), "scripts/cel-spec must be executable"
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout


def test_check_mode_reports_missing_cases_and_fetches_nothing(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain: scripts/cel-spec reads the pin with go list")
    env = {**os.environ, "EDGEWARDEN_KUBE_CACHE": str(tmp_path)}
    result = subprocess.run([str(SCRIPT), "--check"], capture_output=True, text=True,
                            env=env, check=False, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"cel-spec-{pinned_version()}" in result.stderr
    assert not any(tmp_path.iterdir()), "--check fetched or wrote something"
