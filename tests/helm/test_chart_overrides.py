"""What issue 23 found missing against Kyverno's chart: an overridable securityContext that
stays restricted by default and can leave out the user for OpenShift, namespaces excluded
by label, the alerts' runbook links at one's own copy of the docs, and every shipped policy
listed in values.yaml (written by deploy/sync-policies.py, so the list cannot drift)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .chart import CHART, render, render_error
from .test_chart import all_containers, approval, one, pod_spec, webhooks

REPO = Path(__file__).resolve().parents[2]
# OpenShift's restricted SCC assigns user and group from the namespace's range.
OPENSHIFT = {
    "podSecurityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None},
    "securityContext": {"runAsUser": None, "runAsGroup": None},
}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def restricted_problems(spec: dict[str, Any]) -> list[str]:
    """What the Pod Security Standard "restricted" (Kubernetes 1.29+) refuses in a pod spec."""
    problems = []
    pod = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(host)
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    if pod.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    containers = [*(spec.get("initContainers") or []), *spec["containers"]]
    for container in containers:
        context = container.get("securityContext") or {}
        name = container["name"]
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot not true")
        if context.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp}")
    return problems


def test_the_default_security_context_is_restricted_and_the_same_as_before() -> None:
    objects = render()
    spec = pod_spec(objects)
    assert restricted_problems(spec) == []
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532,
                                       "runAsGroup": 65532, "fsGroup": 65532,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    containers = all_containers(objects)
    assert containers
    for container in containers:
        assert container["securityContext"]["runAsUser"] == 65532, container["name"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_restricted_checker_that_refuses_what_restricted_refuses() -> None:
    spec = pod_spec(render())
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    spec["securityContext"].pop("seccompProfile")
    spec["containers"][0]["securityContext"].pop("seccompProfile")
    name = spec["containers"][0]["name"]
    assert restricted_problems(spec) == [f"{name}: allowPrivilegeEscalation not false",
                                         f"{name}: seccompProfile None"]


def test_openshift_leaves_the_user_and_group_to_the_scc_and_stays_restricted() -> None:
    objects = render(OPENSHIFT)
    spec = pod_spec(objects)
    assert restricted_problems(spec) == []
    assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(spec["securityContext"])
    for container in all_containers(objects):
        assert not {"runAsUser", "runAsGroup"} & set(container["securityContext"])
        assert container["securityContext"]["runAsNonRoot"] is True


def test_the_security_context_values_reach_every_container() -> None:
    objects = render({"securityContext": {"runAsUser": 1000700000,
                                          "capabilities": {"drop": ["ALL"]}},
                      "podSecurityContext": {"supplementalGroups": [5555]}})
    assert pod_spec(objects)["securityContext"]["supplementalGroups"] == [5555]
    for container in all_containers(objects):
        assert container["securityContext"]["runAsUser"] == 1000700000


def test_namespaces_are_excluded_by_label_from_the_policy_webhooks_only() -> None:
    selector = {"matchExpressions": [{"key": "edgewarden.dev/ignore", "operator": "NotIn",
                                      "values": ["true"]}],
                "matchLabels": {"team": "platform"}}
    objects = render({"webhooks": {"registration": "static", "namespaceSelector": selector}})
    found = webhooks(objects)
    for kind, hook in found:
        expressions = hook["namespaceSelector"]["matchExpressions"]
        assert expressions[0]["key"] == "kubernetes.io/metadata.name", kind
        assert expressions[0]["operator"] == "NotIn", "the name exclusions stay"
        assert expressions[1:] == selector["matchExpressions"], kind
        assert hook["namespaceSelector"]["matchLabels"] == {"team": "platform"}, kind
    assert "namespaceSelector" not in approval(objects), "exceptions are approved everywhere"
    # The default adds nothing.
    for kind, hook in webhooks(render({"webhooks": {"registration": "static"}})):
        assert len(hook["namespaceSelector"]["matchExpressions"]) == 1, kind
        assert "matchLabels" not in hook["namespaceSelector"], kind


def test_a_selector_operator_the_api_server_does_not_know_is_refused() -> None:
    error = render_error({"webhooks": {"registration": "static", "namespaceSelector": {
        "matchExpressions": [{"key": "team", "operator": "IsNot", "values": ["a"]}]}}})
    assert "namespaceSelector/matchExpressions/0/operator" in error


def test_runbook_links_follow_the_base_url_value() -> None:
    def runbooks(values: dict[str, Any]) -> dict[str, str]:
        rule = one(render({"prometheusRule": {"enabled": True, **values}}), "PrometheusRule")
        found = {r["alert"]: r["annotations"]["runbook_url"]
                 for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}
        assert found
        return found

    default = runbooks({})
    assert all(url.endswith(f"/docs/monitoring.md#{alert.lower()}")
               for alert, url in default.items())
    moved = runbooks({"runbookBaseUrl": "https://wiki.example.com/ops/edgewarden/"})
    assert moved == {alert: f"https://wiki.example.com/ops/edgewarden#{alert.lower()}"
                     for alert in default}
    assert "runbookBaseUrl" in render_error({"prometheusRule": {"runbookBaseUrl": "wiki"}})


def sync_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_policies",
                                                  REPO / "deploy" / "sync-policies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def listed_policies(values_text: str) -> list[str]:
    block = values_text.split("# BEGIN shipped policies")[1].split("# END shipped policies")[0]
    return re.findall(r"^  #   ([a-z0-9-]+)\s", block, re.MULTILINE)


def test_values_yaml_lists_every_shipped_policy() -> None:
    shipped = sorted(yaml.safe_load(path.read_text())["metadata"]["name"]
                     for path in (CHART / "policies").glob("*.yaml"))
    assert len(shipped) >= 17
    assert listed_policies((CHART / "values.yaml").read_text()) == shipped
    assert yaml.safe_load((CHART / "values.yaml").read_text())["policies"]["enabled"] == ["*"]


def test_the_list_follows_the_policies_folder(tmp_path: Path) -> None:
    """A new policy in policies/ appears in the list sync-policies writes (and --check
    reports the list stale until then); its mode and kinds come with it."""
    sync = sync_module()
    source = tmp_path / "policies"
    shutil.copytree(REPO / "policies", source)
    (source / "deny-host-ports.yaml").write_text(
        "apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\nmetadata:\n"
        "  name: deny-host-ports\nspec:\n  mode: Warn\n  match:\n    kinds: [Service]\n"
        "  validations:\n    - expression: 'true'\n")
    current = (CHART / "values.yaml").read_text()
    rewritten = sync.values_with_catalogue(current, source)
    assert rewritten != current, "--check would report the list stale"
    assert "deny-host-ports" in listed_policies(rewritten)
    [row] = [line for line in rewritten.splitlines() if "deny-host-ports" in line]
    assert row.split()[2:] == ["Warn", "Service"]
    assert sync.values_with_catalogue(current) == current, "the committed list is current"


@pytest.mark.parametrize("values", [OPENSHIFT, {"webhooks": {
    "registration": "static",
    "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}}])
def test_the_override_value_sets_lint_clean(values: dict[str, Any]) -> None:
    from .chart import run_helm

    result = run_helm("lint", str(CHART), "--strict", values=values)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_namespace_selector_is_refused_where_serve_registers_the_webhooks(
    tmp_path: Path,
) -> None:
    """Self-registration (webhooks.registration: self) excludes namespaces by name only: a
    selector there is refused with a message rather than silently not applied. The chart
    is copied with `registration` known to its schema where this checkout lacks it."""
    import json

    from .chart import run_helm

    chart = tmp_path / "edgewarden"
    shutil.copytree(CHART, chart)
    schema_path = chart / "values.schema.json"
    schema = json.loads(schema_path.read_text())
    webhook_values = schema["properties"]["webhooks"]["properties"]
    webhook_values.setdefault("registration", {"enum": ["self", "static"]})
    schema_path.write_text(json.dumps(schema))
    selector = {"matchExpressions": [{"key": "edgewarden.dev/ignore", "operator": "NotIn",
                                      "values": ["true"]}]}
    refused = run_helm("template", "edgewarden", str(chart), "-n", "edgewarden",
                       values={"webhooks": {"registration": "self",
                                            "namespaceSelector": selector}})
    assert refused.returncode != 0
    assert "webhooks.namespaceSelector needs webhooks.registration=static" in refused.stderr
    for values in ({"webhooks": {"registration": "self"}},
                   {"webhooks": {"registration": "static", "namespaceSelector": selector}}):
        result = run_helm("template", "edgewarden", str(chart), "-n", "edgewarden",
                          values=values)
        assert result.returncode == 0, result.stderr
