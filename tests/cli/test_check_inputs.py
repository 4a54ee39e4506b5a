"""What ``check`` reads: folders of a real repository (skipping what is not an object, with a
note), kustomize folders (``--kustomize``), and what already runs (``--cluster-state``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support import cli
from webhook.errors import ManifestError
from webhook.offline.kustomize import cached_kubectl, find_kubectl

REPO = Path(__file__).resolve().parents[2]
POLICIES = str(REPO / "policies")

NODEPORT_IN_PAYMENTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {environment: production}}
---
apiVersion: v1
kind: Service
metadata: {name: admin, namespace: payments}
spec: {type: NodePort, ports: [{port: 80, nodePort: 30080}]}
"""


def check(*args: str) -> Result:
    return cli.run("check", "--policies", POLICIES, "-o", "json", *args)


def judged(result: Result) -> dict[str, list[tuple[str, str]]]:
    report = json.loads(result.stdout)
    return {
        f"{r['resource']['kind']}/{r['resource']['name']}": [
            (f["policy"], f["result"]) for f in r["findings"] if f["result"] != "pass"]
        for r in report["results"]
    }


@pytest.fixture()
def repository(tmp_path: Path) -> Path:
    """A service's repository: manifests beside a kustomization, a Helm chart, values, a
    compose file, a kind config, CI settings and a README."""
    root = tmp_path / "repo"
    (root / "k8s").mkdir(parents=True)
    (root / "k8s" / "service.yaml").write_text(NODEPORT_IN_PAYMENTS)
    (root / "k8s" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [service.yaml]\n")
    chart = root / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 2\n")
    (chart / "templates" / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n")
    (root / "values.yaml").write_text("image: {tag: latest}\n")
    (root / "docker-compose.yml").write_text("services: {web: {image: nginx}}\n")
    (root / "kind.yaml").write_text("apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\n")
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yaml").write_text("on: push\n")
    (root / "README.md").write_text("# shop\n")
    return root


def test_a_repository_folder_is_checked_and_what_is_no_object_is_skipped_with_a_note(
    repository: Path,
) -> None:
    result = check("-f", str(repository))
    assert result.exit_code == 1, result.output
    assert judged(result) == {"Service/admin": [("deny-nodeport-in-production", "deny")]}
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: skipped")]
    said = "\n".join(notes)
    assert f"{repository / 'k8s' / 'kustomization.yaml'}: a kustomize file" in said
    assert f"--kustomize {repository / 'k8s'}" in said
    assert f"{repository / 'chart'}: a Helm chart" in said and "helm template" in said
    for name in ("values.yaml", "docker-compose.yml", "kind.yaml"):
        assert f"{repository / name}: no Kubernetes object in it" in said, name
    assert "README.md" in said
    assert ".github" not in said, "hidden folders are not read"
    assert len(notes) == 6


def test_a_broken_manifest_in_a_folder_still_fails_the_check(repository: Path) -> None:
    (repository / "k8s" / "broken.yaml").write_text("apiVersion: v1\nkind: Service\n  bad: [\n")
    result = check("-f", str(repository))
    assert result.exit_code == 2
    assert "broken.yaml:" in result.stderr and "Traceback" not in result.stderr


def test_a_file_named_on_the_command_line_is_read_strictly(repository: Path) -> None:
    result = check("-f", str(repository / "values.yaml"))
    assert result.exit_code == 2
    assert "values.yaml" in result.stderr


def _kubectl_or_skip() -> str:
    try:
        return find_kubectl()
    except ManifestError as error:
        pytest.skip(str(error))


def test_kustomize_folder_is_judged_as_it_renders(repository: Path) -> None:
    _kubectl_or_skip()
    (repository / "k8s" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [service.yaml]\nnamePrefix: shop-\n")
    result = check("--kustomize", str(repository / "k8s"))
    assert result.exit_code == 1, result.output
    assert judged(result) == {"Service/shop-admin": [("deny-nodeport-in-production", "deny")]}


def test_kustomize_uses_the_cached_kubectl_when_none_is_on_path(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubectl = _kubectl_or_skip()
    home = tmp_path / "home"
    cached = home / ".cache" / "edgewarden" / "kube" / "current" / "kubectl"
    cached.parent.mkdir(parents=True)
    cached.symlink_to(Path(kubectl).resolve())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert cached_kubectl() == cached
    result = check("--kustomize", str(repository / "k8s"))
    assert result.exit_code == 1, result.output
    assert "Service/admin" in judged(result)


def test_kustomize_without_any_kubectl_says_what_to_do(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = check("--kustomize", str(repository / "k8s"))
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "no kubectl on PATH" in message
    assert ".cache/edgewarden/kube/current/kubectl" in message
    assert "kustomize build DIR | edgewarden check -f -" in message


def test_kustomize_errors_are_the_users_to_fix(repository: Path) -> None:
    _kubectl_or_skip()
    not_kustomize = check("--kustomize", str(repository / "chart"))
    assert not_kustomize.exit_code == 2 and "no kustomization.yaml" in not_kustomize.stderr
    (repository / "k8s" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [missing.yaml]\n")
    failing = check("--kustomize", str(repository / "k8s"))
    assert failing.exit_code == 2
    assert "kubectl kustomize" in failing.stderr and "missing.yaml" in failing.stderr


def test_nothing_to_check_is_a_user_error() -> None:
    result = check()
    assert result.exit_code == 2 and "-f" in result.stderr and "--kustomize" in result.stderr


# -- --cluster-state: what already runs counts ------------------------------------------

STATE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {edgewarden.dev/max-loadbalancers: "3"}
---
"""
LOADBALANCER = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec: {{type: LoadBalancer, ports: [{{port: 443}}]}}
"""


def _loadbalancers(*names: str) -> str:
    return "---\n".join(LOADBALANCER.format(name=name) for name in names)


def test_the_state_counts_toward_the_cap_and_a_fourth_loadbalancer_is_denied(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(STATE + _loadbalancers("api", "grpc", "web"))
    manifest = tmp_path / "new.yaml"
    manifest.write_text(_loadbalancers("admin"))
    without = check("-f", str(manifest), "-n", "shop", "--assume-unlabelled")
    assert without.exit_code == 0, "alone, a first LoadBalancer is fine"
    result = check("-f", str(manifest), "--cluster-state", str(state))
    assert result.exit_code == 1, result.output
    verdict = judged(result)["Service/admin"]
    assert ("limit-loadbalancers-per-namespace", "deny") in verdict
    report = json.loads(result.stdout)
    message = next(f["message"] for r in report["results"] for f in r["findings"]
                   if f["result"] == "deny")
    assert "namespace shop has 3 of 3" in message
    assert [r["resource"]["name"] for r in report["results"]] == ["admin"], (
        "the state's objects are context, not judged")


def test_reapplying_an_object_the_state_holds_is_an_update_not_a_new_loadbalancer(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(STATE + _loadbalancers("api", "grpc", "web"))
    manifest = tmp_path / "again.yaml"
    manifest.write_text(_loadbalancers("web"))
    result = check("-f", str(manifest), "--cluster-state", str(state))
    assert result.exit_code == 0, result.output
    assert ("limit-loadbalancers-per-namespace", "deny") not in judged(result)["Service/web"]


def test_namespaces_in_the_manifests_override_the_states(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}))
    manifest = tmp_path / "m.yaml"
    manifest.write_text(NODEPORT_IN_PAYMENTS)
    result = check("-f", str(manifest), "--cluster-state", str(state))
    assert result.exit_code == 1
    assert judged(result)["Service/admin"] == [("deny-nodeport-in-production", "deny")]


def test_an_unreadable_state_file_is_a_user_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(NODEPORT_IN_PAYMENTS)
    result = check("-f", str(manifest), "--cluster-state", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr

