"""Every kustomize overlay we ship, applied with `kubectl apply --dry-run=server -k`: the
API server checks each object against its own schemas (strict field validation) and
runs admission on it, stores nothing. The cert-manager overlay needs cert-manager's CRDs
(the ``cert_manager_crds_installed`` fixture of conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .installation import REPO, Installation

OVERLAYS = sorted(path.name for path in (REPO / "deploy" / "overlays").iterdir()
                  if (path / "kustomization.yaml").is_file())


def test_every_overlay_is_found() -> None:
    assert {"audit-only", "cert-manager", "kind", "production"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_server_accepts_every_object_of_the_overlay(
    installation: Installation, request: pytest.FixtureRequest, overlay: str
) -> None:
    if overlay == "cert-manager":
        request.getfixturevalue("cert_manager_crds_installed")
    path = Path("deploy") / "overlays" / overlay
    built = [d for d in yaml.safe_load_all(installation.kubectl("kustomize", str(REPO / path))
                                           .stdout) if d]
    result = installation.kubectl("apply", "--dry-run=server", "--validate=strict",
                                  "-k", str(REPO / path), check=False)
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(built), result.stdout
    assert "Warning" not in result.stderr, result.stderr
