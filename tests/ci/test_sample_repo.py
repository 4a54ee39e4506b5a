"""The pre-commit hooks on a repository as a team keeps it (tests/ci/sample-repo: a Helm
chart, a kustomize base and overlay, plain manifests, and YAML that is no Kubernetes
object), run by the real `pre-commit` in a git repository.

The hooks are this checkout's .pre-commit-hooks.yaml as they stand, each declared as a
`repo: local` hook of language `system` (the `edgewarden` of this environment): what
pre-commit does with their `files`, `pass_filenames` and `args` is pre-commit's own; only
the installation from a git URL is left out (it needs the package index)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.offline.helm import cached_helm
from webhook.offline.kustomize import cached_kubectl

from .tools import BIN, REPO, environment

SAMPLE = Path(__file__).parent / "sample-repo"
HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"
# What the sample's team gives the check hook: the chart's release namespace, and the
# Namespaces the cluster has (a commit that changes only the chart holds none).
CHECK_ARGS = ["-n", "shop", "--cluster-state", "cluster/namespaces.yaml"]


def tools_available() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not (BIN / "pre-commit").exists():
        pytest.skip("pre-commit is not installed (the test extras)")
    if not (shutil.which("helm") or cached_helm().is_file()):
        pytest.skip("helm is not installed (scripts/kube-binaries builds it)")
    if not (shutil.which("kubectl") or cached_kubectl().is_file()):
        pytest.skip("kubectl is not installed (scripts/kube-binaries builds it)")


def local_hooks() -> list[dict[str, Any]]:
    hooks = yaml.safe_load(HOOKS_FILE.read_text())
    assert isinstance(hooks, list) and hooks
    for hook in hooks:
        hook["language"] = "system"
        hook["verbose"] = True  # the notes and the findings table, even when it passes
        if hook["id"] == "edgewarden-check":
            hook["args"] = CHECK_ARGS
    return list(hooks)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com",
                    "-c", "commit.gpgsign=false", *args],
                   cwd=repo, check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    tools_available()
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo)
    (repo / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": local_hooks()}]}, sort_keys=False))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    return repo


def pre_commit(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    git(repo, "add", "-A")  # pre-commit judges what git tracks
    env = environment(PRE_COMMIT_HOME=str(repo.parent / "pre-commit-home"), COLUMNS="200")
    env.pop("PRE_COMMIT_COLOR", None)
    return subprocess.run([str(BIN / "pre-commit"), "run", "--color", "never", *args],
                          cwd=repo, capture_output=True, text=True, timeout=300,
                          check=False, env=env)


def hook_output(result: subprocess.CompletedProcess[str], name: str) -> str:
    """The part of pre-commit's output that one hook printed."""
    out = result.stdout + result.stderr
    match = re.search(rf"^{re.escape(name)}\.+.*?(?=^edgewarden \w+\.+|\Z)", out,
                      re.MULTILINE | re.DOTALL)
    assert match, out
    return match.group(0)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}"
    path.write_text(text.replace(old, new))


def test_pre_commit_run_all_files_passes_on_the_sample_repository(sample: Path) -> None:
    result = pre_commit(sample, "--all-files")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in check.splitlines()[0]
    # Each kind of source judged as what it deploys: the chart's templates rendered (and
    # named), the overlay rendered (not its base alone, nor its patch as an object), the
    # plain manifest as it stands.
    for judged in ("Service/shop-storefront", "Ingress/shop-storefront",
                   "<helm template charts/shop/templates/service.yaml>",
                   "Service/payments-api", "<kustomize kustomize/overlays/production>",
                   "Service/grafana", "k8s/grafana.yaml"):
        assert judged in check, judged
    assert "<kustomize kustomize/base>" not in check
    assert "4 objects judged; 0 denied" in check
    # YAML that is no manifest is skipped with a note, and never an error.
    assert "skipped docker-compose.yaml: no Kubernetes object" in check
    assert "skipped .github/workflows/ci.yaml: hidden" in check
    for error in ("mapping key must be a scalar", "object has no kind", "error:"):
        assert error not in check


def test_a_chart_whose_values_make_a_nodeport_fails_the_commit(sample: Path) -> None:
    replace(sample / "charts" / "shop" / "values.yaml", "type: ClusterIP", "type: NodePort")
    result = pre_commit(sample, "--files", "charts/shop/values.yaml")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 1, check
    assert "deny-nodeport-in-production" in check
    assert "charts/shop/templates/service.yaml>" in check, "named by the template"
    assert "1 denied" in check


def test_a_chart_template_losing_its_tls_fails_the_commit(sample: Path) -> None:
    replace(sample / "charts" / "shop" / "templates" / "ingress.yaml",
            "{{- with .Values.ingress.tlsSecret }}", "{{- with .Values.ingress.noSuchKey }}")
    result = pre_commit(sample, "--files", "charts/shop/templates/ingress.yaml")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 1, check
    assert "require-ingress-tls-in-production" in check
    assert "Ingress/shop-storefront" in check


def test_a_patch_of_an_overlay_is_judged_through_the_overlay(sample: Path) -> None:
    patch = sample / "kustomize" / "overlays" / "production" / "service-port.yaml"
    replace(patch, "spec:\n", "spec:\n  externalIPs: [203.0.113.10]\n")
    result = pre_commit(sample, "--files", "kustomize/overlays/production/service-port.yaml")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 1, check
    assert "deny-external-ips" in check
    assert "<kustomize kustomize/overlays/production>" in check


def test_a_change_to_a_base_is_judged_in_the_overlays_built_from_it(sample: Path) -> None:
    """Through the overlay: the base alone names no namespace, the overlay puts it in the
    production namespace payments, where a NodePort is denied."""
    replace(sample / "kustomize" / "base" / "service.yaml", "spec:\n", "spec:\n  type: NodePort\n")
    result = pre_commit(sample, "--files", "kustomize/base/service.yaml")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 1, check
    assert "deny-nodeport-in-production" in check and "payments" in check
    assert "<kustomize kustomize/overlays/production>" in check
    assert "<kustomize kustomize/base>" not in check


def test_a_plain_manifest_that_violates_a_policy_fails_the_commit(sample: Path) -> None:
    replace(sample / "k8s" / "grafana.yaml", "spec:\n", "spec:\n  externalIPs: [203.0.113.7]\n")
    result = pre_commit(sample, "--all-files")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 1, check
    assert "deny-external-ips" in check and "k8s/grafana.yaml" in check


def test_a_commit_without_manifests_passes_and_says_so(sample: Path) -> None:
    (sample / "docs.yaml").write_text("title: notes\n")
    result = pre_commit(sample, "--files", "docs.yaml", "README.md")
    check = hook_output(result, "edgewarden check")
    assert result.returncode == 0, check
    assert "nothing to judge among 1 changed file(s)" in check, "README.md is no YAML"


def test_without_helm_the_hook_says_how_to_get_it(sample: Path, tmp_path: Path) -> None:
    """A user's machine: helm is taken from PATH only (no cache of ours in this HOME)."""
    path = os.pathsep.join([str(BIN), "/usr/bin", "/bin"])
    if any((Path(folder) / "helm").exists() for folder in path.split(os.pathsep)):
        pytest.skip("helm is installed system-wide")
    result = subprocess.run(
        [str(BIN / "edgewarden"), "pre-commit", *CHECK_ARGS, "charts/shop/values.yaml"],
        cwd=sample, capture_output=True, text=True, timeout=120, check=False,
        env=environment(PATH=path, HOME=str(tmp_path / "home")))
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: judging a Helm chart runs `helm template`, and there is no "
                           "helm on PATH: install Helm 3"), line
    assert "Traceback" not in result.stderr


# -- the GitHub Action's check on the same repository -------------------------------------


ACTION_INPUTS = {"manifests": "charts/shop\nkustomize/overlays/production\nk8s/",
                 "namespace": "shop", "cluster-state": "cluster/namespaces.yaml",
                 "policies": "", "tests": ""}


def test_the_action_judges_the_chart_the_overlay_and_the_plain_yaml(sample: Path) -> None:
    from .test_action import run_action

    outcome = run_action(ACTION_INPUTS, sample)
    assert outcome["failed"] is None, outcome
    assert outcome["ran"] == ["edgewarden check"]
    log = outcome["edgewarden check"].stdout
    for judged in ("Service/shop-storefront", "Ingress/shop-storefront", "Service/payments-api",
                   "Service/grafana"):
        assert judged in log, judged
    summary = (sample / ".runner-temp" / "step-summary.md").read_text()
    assert ":white_check_mark: **4 objects judged, nothing Enforce would deny**" in summary


def test_the_action_fails_on_a_chart_that_renders_a_nodeport(sample: Path) -> None:
    from .test_action import run_action

    replace(sample / "charts" / "shop" / "values.yaml", "type: ClusterIP", "type: NodePort")
    outcome = run_action(ACTION_INPUTS, sample)
    assert outcome["failed"] == "Fail on denied manifests", outcome
    summary = (sample / ".runner-temp" / "step-summary.md").read_text()
    [row] = [line for line in summary.splitlines() if line.startswith("| :x: deny |")]
    assert "| Service/shop-storefront | shop | deny-nodeport-in-production |" in row
    # A render is no file to link to: named, not linked.
    assert row.endswith("| &lt;helm template charts/shop/templates/service.yaml&gt; |"), row
