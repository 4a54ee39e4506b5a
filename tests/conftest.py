"""What every test folder shares: a clean environment, the Kubernetes API double, and a
kubeconfig for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubeapi import KubeApi
from tests.support.kubeconfig import use_kubeconfig, write_kubeconfig

SETTINGS_PREFIX = "EDGEWARDEN_"


@pytest.fixture(autouse=True)
def _no_edgewarden_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without ``EDGEWARDEN_*`` variables, whatever the shell exported, and
    whatever an earlier test wrote. A test that needs one sets it with monkeypatch."""
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIX)]:
        monkeypatch.delenv(name)


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
