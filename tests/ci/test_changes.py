"""What a list of changed files means to judge (webhook/offline/changes.py), and
`check --chart`: the pieces of the pre-commit hook, on small repositories made here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from webhook.offline.changes import plan
from webhook.offline.helm import cached_helm

from .tools import BIN, environment

CHART = "apiVersion: v2\nname: {name}\nversion: 0.1.0\n"
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_file_of_a_subchart_stands_for_the_chart_that_deploys_it(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/shop/Chart.yaml": CHART.format(name="shop"),
        "charts/shop/values.yaml": "replicas: 2\n",
        "charts/shop/charts/cache/Chart.yaml": CHART.format(name="cache"),
        "charts/shop/charts/cache/templates/svc.yaml": "{{- if .Values.on }}\nx: 1\n{{- end }}\n",
        "charts/common/Chart.yaml": CHART.format(name="common") + "type: library\n",
        "charts/common/templates/_names.tpl": "{{- define \"n\" }}x{{ end }}\n",
    })
    found = plan(["charts/shop/charts/cache/templates/svc.yaml", "charts/shop/values.yaml",
                  "charts/common/templates/_names.tpl"], root=tmp_path)
    assert found.charts == [Path("charts/shop")]
    assert [str(s) for s in found.skipped] == [
        "charts/common: a library chart: it renders nothing on its own"]
    assert not found.manifests and not found.kustomizations


def test_files_a_kustomization_uses_stand_for_the_overlays_built_from_them(
    tmp_path: Path,
) -> None:
    write(tmp_path, {
        "base/kustomization.yaml": "resources: [web.yaml]\n",
        "base/web.yaml": SERVICE,
        "base/unused.yaml": SERVICE,
        "components/tls/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "patches: [{path: tls.yaml}]\n"),
        "components/tls/tls.yaml": "metadata: {name: web}\n",
        "overlays/prod/kustomization.yaml": (
            "resources: [../../base, https://example.com/remote//base]\n"
            "components: [../../components/tls]\n"
            "configMapGenerator: [{name: conf, files: [app.conf=settings/app.conf]}]\n"),
        "overlays/prod/settings/app.conf": "level=info\n",
        "overlays/dev/kustomization.yaml": "resources: [../../base]\n",
    })
    assert plan(["base/web.yaml"], root=tmp_path).kustomizations == [
        Path("overlays/dev"), Path("overlays/prod")]
    assert plan(["components/tls/tls.yaml"], root=tmp_path).kustomizations == [
        Path("overlays/prod")], "a component is built only into the overlays using it"
    assert plan(["overlays/prod/settings/app.conf"], root=tmp_path).kustomizations == [
        Path("overlays/prod")]
    # A file beside a kustomization that it does not use is a manifest of its own.
    unused = plan(["base/unused.yaml"], root=tmp_path)
    assert unused.manifests == [Path("base/unused.yaml")] and not unused.kustomizations


def test_a_broken_kustomization_is_rendered_when_it_changes_and_blocks_nothing_else(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"broken/kustomization.yaml": "resources: [\n", "web.yaml": SERVICE,
                     "node_modules/x/kustomization.yaml": "resources: [../../web.yaml]\n"})
    assert plan(["web.yaml"], root=tmp_path).manifests == [Path("web.yaml")], (
        "node_modules is no deployment: web.yaml stays a manifest of its own")
    assert plan(["broken/kustomization.yaml"], root=tmp_path).kustomizations == [
        Path("broken")]


def test_policies_hidden_files_and_other_yaml_are_skipped_with_a_note(tmp_path: Path) -> None:
    write(tmp_path, {
        "rules/deny.yaml": "apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\nmetadata: {}\n",
        ".gitlab-ci.yml": "stages: [test]\n",
        "kind.yaml": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n",
        "web.yaml": SERVICE,
        "broken.yaml": "apiVersion: v1\nkind: [\n",
        "notes.txt": "hello\n",
    })
    found = plan(["rules/deny.yaml", ".gitlab-ci.yml", "kind.yaml", "web.yaml", "broken.yaml",
                  "notes.txt", "deleted.yaml"], policy_roots=["rules"], root=tmp_path)
    # A file that does not parse is judged, so that check reports it with its line.
    assert found.manifests == [Path("web.yaml"), Path("broken.yaml")]
    assert [s.path for s in found.skipped] == ["rules/deny.yaml", ".gitlab-ci.yml", "kind.yaml"]
    assert "validate and test" in found.skipped[0].reason
    assert "no Kubernetes object" in found.skipped[2].reason


def run_check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "edgewarden"), "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False,
                          env=environment(COLUMNS="200"))


def test_check_chart_judges_the_render_and_refuses_a_broken_one(tmp_path: Path) -> None:
    if not (shutil.which("helm") or cached_helm().is_file()):
        pytest.skip("helm is not installed (scripts/kube-binaries builds it)")
    write(tmp_path, {
        "web/Chart.yaml": CHART.format(name="web"),
        "web/values.yaml": "type: NodePort\n",
        "web/templates/service.yaml": (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n"
            "  namespace: {{ .Release.Namespace }}\nspec:\n  type: {{ .Values.type }}\n"
            "  ports: [{port: 80}]\n"),
    })
    denied = run_check(tmp_path, "--chart", "web", "-n", "shop",
                       "--namespace-labels", "shop=environment=production")
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "deny-nodeport-in-production" in denied.stdout
    assert "<helm template web/templates/service.yaml>" in denied.stdout
    (tmp_path / "web" / "templates" / "service.yaml").write_text("{{ .Values.type \n")
    broken = run_check(tmp_path, "--chart", "web", "--assume-unlabelled")
    assert broken.returncode == 2
    [line] = [line for line in broken.stderr.splitlines() if not line.startswith("note:")]
    assert line.startswith("error: helm template web failed: Error: parse error"), line


def test_the_hook_tells_checks_options_from_the_file_names() -> None:
    from webhook.cli.pre_commit_command import split_arguments
    from webhook.errors import ManifestError

    options, files = split_arguments(
        ["-n", "shop", "--cluster-state", "state.yaml", "--out=report.json", "--assume-unlabelled",
         "-o", "json", "k8s/a.yaml", "--", "-odd-name.yaml"])
    assert options == ["-n", "shop", "--cluster-state", "state.yaml", "--out=report.json",
                       "--assume-unlabelled", "-o", "json"]
    assert files == ["k8s/a.yaml", "-odd-name.yaml"]
    for wrong, message in ((["-f", "x.yaml"], "-f is not an option here"),
                           (["--chart", "c"], "--chart is not an option here"),
                           (["--no-such", "x"], "--no-such is not an option of edgewarden check"),
                           (["k8s/a.yaml", "-n"], "-n needs a value")):
        with pytest.raises(ManifestError, match=message):
            split_arguments(wrong)
