"""The kind harness, checked where it cannot run: the script parses (and is shellcheck
clean where shellcheck exists), it agrees with the kind overlay, and without a cluster the
end-to-end suite's kind backend skips cleanly instead of failing or pretending."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from .conftest import REPO, one, rendered

SCRIPT = REPO / "scripts" / "e2e-kind.sh"
CLUSTER = REPO / "deploy" / "kind" / "cluster.yaml"


def test_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert os.access(SCRIPT, os.X_OK), "scripts/e2e-kind.sh must be executable"


def test_script_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout


def test_kind_cluster_config_is_a_kind_cluster() -> None:
    config = yaml.safe_load(CLUSTER.read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config["nodes"]].count("control-plane") == 1


def test_script_builds_and_loads_the_image_the_kind_overlay_runs() -> None:
    text = SCRIPT.read_text()
    image = re.search(r"IMAGE=\$\{EDGEWARDEN_E2E_IMAGE:-([^}]+)\}", text)
    assert image is not None
    container = one(rendered("kind"), "Deployment", "edgewarden")["spec"]["template"]["spec"][
        "containers"][0]
    assert container["image"] == image.group(1)
    for needed in ("deploy/kind/cluster.yaml", "deploy/overlays/kind",
                   "deploy/overlays/audit-only", 'docker build -t "$IMAGE"',
                   'kind load docker-image "$IMAGE"', "trap cleanup EXIT",
                   "EDGEWARDEN_E2E_KUBECONFIG", "EDGEWARDEN_E2E_BACKEND=kind", "tests/e2e"):
        assert needed in text, needed


def test_e2e_suite_on_the_kind_backend_skips_cleanly_without_a_cluster() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWARDEN_E2E_")}
    env["EDGEWARDEN_E2E_BACKEND"] = "kind"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/e2e"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" in result.stdout and "passed" not in result.stdout, result.stdout
    assert "scripts/e2e-kind.sh" in result.stdout, "the skip reason says how to run them"
