"""Issue 19: several ``edgewarden serve`` replicas behind one webhook URL (HAProxy, round
robin), against the real API server of tests/kube. See fixtures.py for the harness.

Without the Kubernetes binaries or HAProxy these tests skip, saying why; under ``CI=true``
they fail instead."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.kube.controlplane import ControlPlane
from tests.kube.fixtures import kube_control_plane  # noqa: F401  (registers the fixture)

from .fixtures import ReplicaSet, WebhookCertificates, haproxy_binary, install_rbac


@pytest.fixture(scope="session")
def haproxy() -> str:
    return haproxy_binary()


@pytest.fixture(scope="session")
def plane(kube_control_plane: ControlPlane) -> ControlPlane:  # noqa: F811
    return kube_control_plane


@pytest.fixture(scope="session")
def service_account_kubeconfig(plane: ControlPlane) -> Path:
    """Credentials of edgewarden's ServiceAccount, with the RBAC deploy/base ships."""
    return install_rbac(plane)


@pytest.fixture(scope="session")
def webhook_certificates(tmp_path_factory: pytest.TempPathFactory) -> WebhookCertificates:
    return WebhookCertificates.generate(tmp_path_factory.mktemp("replicas-tls") / "tls")


@pytest.fixture
def replica_set(plane: ControlPlane, service_account_kubeconfig: Path,
                webhook_certificates: WebhookCertificates, haproxy: str,
                tmp_path: Path) -> Iterator[Callable[..., ReplicaSet]]:
    """``replica_set(count=3, serve_args=(...))``: replicas behind HAProxy, registered and
    called by the API server; stopped and unregistered after the test. With
    ``started_now=False`` the set's ports are chosen but nothing runs until its
    ``start()`` (to configure the API server for the proxy's address first)."""
    started: list[ReplicaSet] = []

    def start(count: int = 3, serve_args: Sequence[str] = (), policies: Sequence[Path] = (),
              *, started_now: bool = True, **options: Any) -> ReplicaSet:
        replicas = ReplicaSet(plane, tmp_path / f"set-{len(started)}", webhook_certificates,
                              service_account_kubeconfig, count=count, serve_args=serve_args,
                              policies=policies, haproxy=haproxy, **options)
        started.append(replicas)
        return replicas.start() if started_now else replicas

    yield start
    for replicas in started:
        replicas.stop()
