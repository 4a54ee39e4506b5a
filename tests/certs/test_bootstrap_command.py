"""`edgewarden certs bootstrap` against the Kubernetes API double, through a kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.cli.app import app

from .fake_kube_api import FakeKubeAPI

runner = CliRunner()


@pytest.fixture()
def kubeconfig(kube: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "double",
                "clusters": [{"name": "double", "cluster": {"server": kube.url}}],
                "users": [{"name": "double", "user": {"token": "test"}}],
                "contexts": [
                    {"name": "double", "context": {"cluster": "double", "user": "double"}}
                ],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


def test_bootstrap_creates_the_secret_and_writes_the_files(kube, kubeconfig, tmp_path) -> None:
    out = tmp_path / "tls"
    result = runner.invoke(
        app, ["certs", "bootstrap", "--namespace", "edgewarden", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "updated" in result.stdout
    assert ("edgewarden", "edgewarden-tls") in kube.secrets
    assert (out / "tls.key").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(app, ["certs", "bootstrap", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stdout


def test_bootstrap_without_a_cluster_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = runner.invoke(app, ["certs", "bootstrap", "--out", str(tmp_path / "tls")])
    assert result.exit_code == 2
    assert "Kubernetes" in result.output
    assert "Traceback" not in result.output


def test_the_server_can_build_a_manager_from_the_environment(kube, kubeconfig, tmp_path) -> None:
    """`serve --manage-certs` calls CertificateManager(cert_dir=...) and nothing else."""
    from webhook.certs.bootstrap import CertificateManager

    manager = CertificateManager(cert_dir=tmp_path / "tls")
    assert manager.sync_once() is True
    assert (tmp_path / "tls" / "tls.crt").exists()
    assert manager.not_after is not None


def test_run_keeps_syncing_after_a_failed_round(tmp_path) -> None:
    import asyncio

    from webhook.certs.bootstrap import CertificateManager

    class Flaky(CertificateManager):
        calls = 0

        def sync_once(self) -> bool:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("API server hiccup")
            return False

    async def scenario() -> None:
        task = asyncio.create_task(Flaky(api=object()).run(interval=0.01))  # type: ignore[arg-type]
        for _ in range(500):
            if Flaky.calls >= 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert Flaky.calls >= 3
