"""`edgewarden certs bootstrap` against the Kubernetes API double, through a kubeconfig."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.kubeapi import KubeApi
from tests.support import eventually_async
from webhook.certs.bootstrap import CertificateManager
from webhook.cli.app import app

runner = CliRunner()


@pytest.mark.usefixtures("kubeconfig_env")
def test_bootstrap_creates_the_secret_and_writes_the_files(kube_api: KubeApi, tmp_path) -> None:
    out = tmp_path / "tls"
    result = runner.invoke(
        app, ["certs", "bootstrap", "--namespace", "edgewarden", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "updated" in result.stdout
    assert kube_api.exists("secrets", "edgewarden-tls", namespace="edgewarden")
    assert (out / "tls.key").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(app, ["certs", "bootstrap", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stdout


@pytest.mark.usefixtures("no_cluster_env")
def test_bootstrap_without_a_cluster_is_a_clear_error(tmp_path) -> None:
    result = runner.invoke(app, ["certs", "bootstrap", "--out", str(tmp_path / "tls")])
    assert result.exit_code == 2
    assert "Kubernetes" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("kube_api", "kubeconfig_env")
def test_the_server_can_build_a_manager_from_the_environment(tmp_path) -> None:
    """`serve --manage-certs` calls CertificateManager(cert_dir=...) and nothing else."""
    manager = CertificateManager(cert_dir=tmp_path / "tls")
    assert manager.sync_once() is True
    assert (tmp_path / "tls" / "tls.crt").exists()
    assert manager.not_after is not None


def test_run_keeps_syncing_after_a_failed_round() -> None:
    class Flaky(CertificateManager):
        calls = 0

        def sync_once(self) -> bool:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("API server hiccup")
            return False

    async def scenario() -> None:
        task = asyncio.create_task(Flaky(api=object()).run(interval=0.01))  # type: ignore[arg-type]
        await eventually_async(lambda: Flaky.calls >= 3, what="a third round")
        task.cancel()

    asyncio.run(scenario())
    assert Flaky.calls >= 3
