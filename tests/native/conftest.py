"""The real API server for the CEL reference tests (tests/native/test_*_reference.py); the
other tests here need none. Each pytest process starts its own control plane."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube.fixtures import kube_control_plane  # noqa: F401  (the session fixture)
from tests.kube.processes import ManagedProcess

from .reference import Reference


@pytest.fixture(scope="session")
def reference(kube_control_plane: Any) -> Iterator[Reference]:  # noqa: F811
    """The control plane, plus the controller that type-checks admission policies and
    writes ``status.typeChecking`` (the shared control plane runs without it), as a second
    kube-controller-manager with only that controller."""
    plane = kube_control_plane
    kubeconfig = plane.kubeconfig_for("system:kube-controller-manager", ("system:masters",),
                                      name="kcm-policy-status")
    checker = ManagedProcess("kube-controller-manager (policy status)", [
        str(plane.binaries.kube_controller_manager), f"--kubeconfig={kubeconfig}",
        "--controllers=validatingadmissionpolicy-status-controller",
        "--leader-elect=false", "--use-service-account-credentials=false", "--secure-port=0",
    ], plane.workdir / "kube-controller-manager-policy-status.log")
    checker.start()
    try:
        yield Reference(plane)
    finally:
        checker.stop()
