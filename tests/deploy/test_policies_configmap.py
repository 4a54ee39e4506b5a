"""The policies ConfigMap ships exactly the default policies of policies/, never their test
suites or fixtures, and the committed copy under deploy/base/policies/ is current."""

from __future__ import annotations

import subprocess
import sys

import yaml

from webhook.policy.load.loader import load_policies

from .conftest import REPO, one, rendered

POLICIES_DIR = REPO / "policies"
SYNC = REPO / "deploy" / "sync-policies.py"


def shipped_policies() -> dict[str, str]:
    return {
        p.name: p.read_text()
        for p in sorted(POLICIES_DIR.glob("*.y*ml"))
        if p.suffix in (".yaml", ".yml") and not p.name.endswith((".test.yaml", ".test.yml"))
    }


def policies_configmap(overlay: str) -> dict[str, str]:
    objects = rendered(overlay)
    configmaps = [o for o in objects if o["kind"] == "ConfigMap"
                  and o["metadata"]["name"].startswith("edgewarden-policies")]
    assert len(configmaps) == 1
    data: dict[str, str] = configmaps[0].get("data") or {}
    assert data, "the policies ConfigMap holds no policy"
    return data


def test_committed_copy_of_the_policies_is_current() -> None:
    result = subprocess.run([sys.executable, str(SYNC), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_configmap_holds_every_default_policy_and_nothing_else(overlay: str) -> None:
    shipped = shipped_policies()
    assert shipped, "policies/ holds no policy"
    assert policies_configmap(overlay) == shipped


def test_configmap_holds_no_test_suite_or_fixture(overlay: str) -> None:
    for key, text in policies_configmap(overlay).items():
        assert not key.endswith((".test.yaml", ".test.yml")), key
        kinds = {doc.get("kind") for doc in yaml.safe_load_all(text) if doc}
        assert kinds == {"Policy"}, f"{key} holds {kinds}"


def test_configmap_policies_load_as_the_server_would_load_them(overlay: str, tmp_path) -> None:
    for key, text in policies_configmap(overlay).items():
        (tmp_path / key).write_text(text)
    policy_set = load_policies(tmp_path)
    names = {p.name for p in policy_set.policies}
    assert {
        "deny-nodeport-in-production", "limit-loadbalancers-per-namespace",
        "internal-loadbalancer", "deny-external-ips", "require-ingress-tls-in-production",
        "require-ingress-class",
    } <= names


def test_sync_script_skips_test_suites_and_fixtures(tmp_path) -> None:
    """The generator on a scratch tree: suites and fixture folders stay out."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_policies", SYNC)
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    source = tmp_path / "policies"
    (source / "fixtures").mkdir(parents=True)
    (source / "a.yaml").write_text("kind: Policy\n")
    (source / "b.yml").write_text("kind: Policy\n")
    (source / "a.test.yaml").write_text("kind: PolicyTest\n")
    (source / "fixtures" / "cluster.yaml").write_text("kind: Namespace\n")
    (source / "notes.md").write_text("#\n")
    tree = sync.wanted_tree(source)
    assert set(tree) == {"a.yaml", "b.yml", "kustomization.yaml"}
    kustomization = yaml.safe_load(tree["kustomization.yaml"])
    assert kustomization["configMapGenerator"][0]["files"] == ["a.yaml", "b.yml"]
    target = tmp_path / "out"
    (target).mkdir()
    (target / "stale.yaml").write_text("old\n")
    sync.write(tree, target)
    assert sync.differences(tree, sync.current_tree(target)) == []
    assert not (target / "stale.yaml").exists()


def test_policies_configmap_is_mounted_where_serve_reads_it(overlay: str) -> None:
    objects = rendered(overlay)
    pod = one(objects, "Deployment", "edgewarden")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"].startswith("edgewarden-policies-"), "name-hashed"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    args = pod["containers"][0]["args"]
    assert args[args.index("--policies") + 1] == mount["mountPath"]


def test_sync_script_owns_the_chart_copies_too(tmp_path) -> None:
    """The chart's policies/ gets the policies without a kustomization; its monitoring/ gets
    the rules and the dashboard, nothing else of deploy/monitoring; --check covers both."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_policies", SYNC)
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    source = tmp_path / "policies"
    source.mkdir()
    (source / "a.yaml").write_text("kind: Policy\n")
    (source / "a.test.yaml").write_text("kind: PolicyTest\n")
    assert set(sync.chart_policies_tree(source)) == {"a.yaml"}
    monitoring = tmp_path / "monitoring"
    monitoring.mkdir()
    for name in ("prometheus-rules.yaml", "dashboard.json", "kustomization.yaml",
                 "servicemonitor.yaml"):
        (monitoring / name).write_text(name)
    assert set(sync.chart_monitoring_tree(monitoring)) == {"prometheus-rules.yaml",
                                                           "dashboard.json"}
    targets = {copy.target for copy in sync.COPIES}
    assert targets == {sync.TARGET, sync.CHART_POLICIES, sync.CHART_MONITORING,
                       sync.PACKAGED_POLICIES, sync.CHART_CRDS, sync.CHART_REPORT_CRDS}
    crds = tmp_path / "crds"
    crds.mkdir()
    for name in ("a_crd.yaml", "kustomization.yaml"):
        (crds / name).write_text(name)
    assert set(sync.yaml_files_tree(crds)) == {"a_crd.yaml"}, "the chart needs no kustomization"
    # A hand edit of a chart copy is drift.
    target = tmp_path / "chart-policies"
    sync.write(sync.chart_policies_tree(source), target)
    (target / "a.yaml").write_text("kind: Policy # edited\n")
    assert sync.differences(sync.chart_policies_tree(source), sync.current_tree(target)) == [
        "out of date a.yaml"]


def test_sync_script_copies_the_whole_tree_into_the_package(tmp_path) -> None:
    """The wheel's copy (webhook/defaults/policies) holds suites and fixtures too, so that
    `edgewarden policies export` gives a folder `edgewarden test` passes on; a stale nested
    file is removed with its emptied folder, and --check sees a nested edit."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sync_policies", SYNC)
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    source = tmp_path / "policies"
    (source / "fixtures" / "services").mkdir(parents=True)
    (source / "a.yaml").write_text("kind: Policy\n")
    (source / "a.test.yaml").write_text("kind: PolicyTest\n")
    (source / "fixtures" / "services" / "lb.yaml").write_text("kind: Service\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "x.pyc").write_text("")
    tree = sync.packaged_policies_tree(source)
    assert set(tree) == {"a.yaml", "a.test.yaml", "fixtures/services/lb.yaml"}
    target = tmp_path / "package"
    (target / "old" / "deep").mkdir(parents=True)
    (target / "old" / "deep" / "gone.yaml").write_text("old\n")
    sync.write(tree, target, recursive=True)
    assert sync.differences(tree, sync.current_tree(target, recursive=True)) == []
    assert not (target / "old").exists()
    (target / "fixtures" / "services" / "lb.yaml").write_text("kind: Service # edited\n")
    assert sync.differences(tree, sync.current_tree(target, recursive=True)) == [
        "out of date fixtures/services/lb.yaml"]
