"""The pytest face of the control plane: one per test session, shared by every test that
asks for ``kube_control_plane`` (so each test uses its own namespaces).

Register it where it is needed by importing the fixture into a conftest::

    from kube.fixtures import kube_control_plane  # noqa: F401

On a machine without the binaries the tests that use it skip (CI fails instead); see
:mod:`kube.binaries`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .binaries import require
from .controlplane import ControlPlane


@pytest.fixture(scope="session")
def kube_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, for the session.

    Logs, certificates, kubeconfigs and the audit log stay in pytest's temporary folder
    (the last three runs are kept) for a look after a failure."""
    binaries = require()
    plane = ControlPlane(binaries, tmp_path_factory.mktemp("kube-control-plane"))
    plane.start()  # stops what it started if it fails
    try:
        yield plane
    finally:
        plane.stop()
