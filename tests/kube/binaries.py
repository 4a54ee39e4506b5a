"""Where the Go tools are, and what to do when they are not.

``scripts/kube-binaries`` builds them into ``$EDGEWARDEN_KUBE_CACHE/<tool>-<version>/`` and
links each from ``$EDGEWARDEN_KUBE_CACHE/current/``. The tests never build (a first build
takes many minutes): ``scripts/test`` runs the script before pytest. When a tool is missing,
CI (``CI=true``) fails the run and anywhere else the tests that need it skip, with the
reason and the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "kube-binaries"
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def cache_dir() -> Path:
    configured = os.environ.get("EDGEWARDEN_KUBE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "edgewarden" / "kube"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class KubeBinaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    versions: str  # the build's `versions` file, for reports


class BinariesMissing(Exception):
    """A tool is not built; the message says which and how to build it."""


def locate() -> KubeBinaries:
    current = cache_dir() / "current"
    missing = [tool for tool in TOOLS if not os.access(current / tool, os.X_OK)]
    if missing:
        how = f"run {BUILD_SCRIPT.relative_to(REPO)} (scripts/test does)"
        if shutil.which("go") is None:
            how = (f"install a Go toolchain, then {how}; the first build takes up to an "
                   "hour on 2 cores and 9 GB of disk (see README)")
        raise BinariesMissing(f"{', '.join(missing)} not built in {current}: {how}")
    versions = current / "versions"
    return KubeBinaries(
        etcd=(current / "etcd").resolve(),
        kube_apiserver=(current / "kube-apiserver").resolve(),
        kube_controller_manager=(current / "kube-controller-manager").resolve(),
        kubectl=(current / "kubectl").resolve(),
        versions=versions.read_text() if versions.is_file() else "",
    )


def cert_manager_crds() -> Path | None:
    """The folder of cert-manager's CRDs copied by scripts/kube-binaries, if it is there."""
    folder = cache_dir() / "current" / "cert-manager-crds"
    return folder if folder.is_dir() else None


def gateway_api_crds(channel: str = "standard") -> list[Path]:
    """The Gateway API CRD files of ``channel`` copied by scripts/kube-binaries from the
    pinned module (tests/kube/gateway-api), CRDs only; empty when they are not there."""
    folder = cache_dir() / "current" / "gateway-api-crds" / channel
    if not folder.is_dir():
        return []
    # The bundle also ships a ValidatingAdmissionPolicy guarding CRD upgrades: not a CRD.
    return sorted(p for p in folder.glob("*.yaml")
                  if p.name != "kustomization.yaml" and "_vap_" not in p.name)


def require() -> KubeBinaries:
    """The tools, else a skip (on a laptop) or a failure (in CI) that says why."""
    try:
        return locate()
    except BinariesMissing as missing:
        if in_ci():
            pytest.fail(f"CI=true and the Kubernetes binaries are missing: {missing}",
                        pytrace=False)
        pytest.skip(f"no local control plane: {missing}")
