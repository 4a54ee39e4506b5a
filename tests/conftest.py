"""What every test folder shares: a clean environment, the Kubernetes API double, and a
kubeconfig for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubeapi import KubeApi
from tests.support.kubeconfig import use_kubeconfig, write_kubeconfig

# The fixtures of tests/support that every folder may use.
pytest_plugins = ["tests.support.certificates",
                  # with -n (pytest-xdist): which tests share a worker, in which order
                  "tests.support.scheduling"]

SETTINGS_PREFIX = "EDGEWARDEN_"
# Inputs of the test harness itself, not edgewarden settings: scripts/e2e-kind.sh hands
# tests/e2e its cluster, scripts/kube-binaries names the cache of the Go-built binaries.
HARNESS_PREFIXES = ("EDGEWARDEN_E2E_", "EDGEWARDEN_KUBE_")


def _settings_in_the_environment() -> list[str]:
    return [
        name
        for name in os.environ
        if name.startswith(SETTINGS_PREFIX) and not name.startswith(HARNESS_PREFIXES)
    ]


@pytest.fixture(autouse=True, scope="session")
def _no_edgewarden_settings_from_the_shell() -> Iterator[None]:
    """The suite runs without the ``EDGEWARDEN_*`` variables the shell exported: cleared for
    the whole session, so module- and session-scoped servers start without them too, and
    put back when the session ends."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _settings_in_the_environment():
            patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _no_edgewarden_settings_between_tests() -> Iterator[None]:
    """Each test starts without ``EDGEWARDEN_*`` variables and leaves none behind, whoever
    wrote them: a test's own monkeypatch, or code under test that writes ``os.environ``.
    (Plain pops, not monkeypatch: monkeypatch would put a leaked value back afterwards.)"""
    for name in _settings_in_the_environment():
        del os.environ[name]
    yield
    for name in _settings_in_the_environment():
        del os.environ[name]


@pytest.fixture
def kube_api() -> Iterator[KubeApi]:
    """The Kubernetes API double, empty, on https://127.0.0.1:<free port>."""
    with KubeApi() as api:
        yield api


@pytest.fixture
def kubeconfig(kube_api: KubeApi, tmp_path: Path) -> Path:
    """A kubeconfig for ``kube_api`` (the environment does not point at it)."""
    return write_kubeconfig(tmp_path / "kubeconfig", server=kube_api.url, ca_pem=kube_api.ca_pem)


@pytest.fixture
def kubeconfig_env(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Outside a cluster, ``$KUBECONFIG`` names the kubeconfig of ``kube_api``."""
    use_kubeconfig(monkeypatch, kubeconfig)
    return kubeconfig


@pytest.fixture
def no_cluster_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a cluster, and ``$KUBECONFIG`` names a file that does not exist."""
    use_kubeconfig(monkeypatch, tmp_path / "missing-kubeconfig")
