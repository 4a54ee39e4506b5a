"""Kubeconfig files for the tests, and the client or environment that reads them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

IN_CLUSTER_VARIABLES = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def write_kubeconfig(
    path: Path, *, server: str, ca_pem: bytes | None = None, token: str = "test-token"
) -> Path:
    """A kubeconfig with one cluster, one token user and one context, all named ``test``."""
    cluster: dict[str, str] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": "test", "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    return path


def api_client(kubeconfig: Path) -> client.ApiClient:
    """A ``kubernetes`` client configured from ``kubeconfig``, as a user's would be."""
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return client.ApiClient(configuration)


def use_kubeconfig(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> None:
    """The process runs outside a cluster, with ``$KUBECONFIG`` naming ``kubeconfig`` (which
    need not exist: a missing file is how a test says "no cluster configured at all")."""
    for name in IN_CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
