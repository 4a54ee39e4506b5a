"""The Helm chart: lint, the values schema, and what `helm template` renders for several
value sets: valid Kubernetes objects whose parts agree with each other and with the real
`edgewarden` command line and policy loader."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.checks import Manifest, parse_with_the_real_cli, schema_problems
from tests.deploy.test_manifests import NEWEST_KUBERNETES, OLDEST_KUBERNETES

from .chart import (
    CHART,
    CUSTOM_POLICY,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    render,
    render_error,
    render_value_set,
    run_helm,
)

CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}
# Every policy of policies/ (deploy/sync-policies.py copies them into the chart).
SHIPPED = {
    p.stem for p in (Path(__file__).parents[2] / "policies").glob("*.yaml")
    if not p.name.endswith(".test.yaml")
}


@pytest.fixture(params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [o for o in objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    return one(objects, "Deployment", "edgewarden")["spec"]["template"]["spec"]


def server(objects: list[Manifest]) -> dict[str, Any]:
    containers = pod_spec(objects)["containers"]
    assert [c["name"] for c in containers] == ["edgewarden"]
    return containers[0]


def all_containers(objects: list[Manifest]) -> list[dict[str, Any]]:
    spec = pod_spec(objects)
    return [*spec.get("initContainers", []), *spec["containers"]]


def webhooks(objects: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """The policy webhooks (/validate, /mutate); the exception approval one apart."""
    found = [
        (kind, hook)
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for hook in one(objects, kind)["webhooks"]
        if hook["name"] != "approve-exception.edgewarden.dev"
    ]
    assert len(found) == 2
    return found


def approval(objects: list[Manifest]) -> dict[str, Any]:
    hooks = [h for h in one(objects, "MutatingWebhookConfiguration")["webhooks"]
             if h["name"] == "approve-exception.edgewarden.dev"]
    assert len(hooks) == 1
    return hooks[0]


def serve_params(args: list[str]) -> dict[str, Any]:
    """``serve`` args parsed by the real CLI."""
    return parse_with_the_real_cli(list(args))


# -- helm lint and the values schema ------------------------------------------------------


def test_helm_lint_is_clean_with_the_default_values() -> None:
    result = run_helm("lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_helm_lint_is_clean_with_every_value_set(value_set: str) -> None:
    namespace, values = VALUE_SETS[value_set]
    result = run_helm("lint", "--strict", "--kube-version", KUBE_VERSION,
                      "--namespace", namespace, str(CHART), values=values)
    assert result.returncode == 0, result.stdout + result.stderr


def test_values_yaml_holds_every_key_the_schema_knows_and_no_other() -> None:
    """values.yaml documents every setting: the schema and it list the same keys."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def keys(node: Any, schema_node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        if isinstance(node, dict) and schema_node.get("additionalProperties") is False:
            for key, value in node.items():
                found.add(prefix + key)
                found |= keys(value, schema_node["properties"].get(key, {}), prefix + key + ".")
        return found

    def schema_keys(schema_node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        if schema_node.get("additionalProperties") is False:
            for key, sub in schema_node["properties"].items():
                found.add(prefix + key)
                found |= schema_keys(sub, prefix + key + ".")
        return found

    # `global` is Helm's own, never set by this chart.
    assert keys(values, schema) == schema_keys(schema) - {"global"}


BAD_VALUES = [
    ({"replicaCount": 0}, "/replicaCount"),
    ({"webhooks": {"failurePolicy": "Maybe"}}, "/webhooks/failurePolicy"),
    ({"webhooks": {"timeoutSeconds": 31}}, "/webhooks/timeoutSeconds"),
    ({"webhooks": {"timeoutSeconds": 0}}, "/webhooks/timeoutSeconds"),
    ({"webhooks": {"validating": {"rules": [{"apiGroups": [""], "resources": ["services"],
                                             "operations": ["PATCH"], "apiVersions": ["v1"]}]}}},
     "/webhooks/validating/rules/0/operations/0"),
    ({"webhooks": {"excludeNamespaces": ["Not_A_Namespace"]}}, "/webhooks/excludeNamespaces/0"),
    ({"certificates": {"mode": "vault"}}, "/certificates/mode"),
    ({"certificates": {"certManager": {"issuerRef": {"kind": "ClusterIssuer"}}}},
     "/certificates/certManager/issuerRef"),
    ({"certificates": {"certManager": {"duration": "90 days"}}},
     "/certificates/certManager/duration"),
    ({"internalLoadBalancerFlavour": "vultr"}, "/internalLoadBalancerFlavour"),
    ({"policies": {"enabled": "all"}}, "/policies/enabled"),
    # (helm reports a bad property name at a wrong path; the name itself is in the message)
    ({"policies": {"custom": {"no-extension": "kind: Policy"}}}, "'no-extension' does not match"),
    ({"logLevel": "verbose"}, "/logLevel"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"networkPolicy": {"controlPlaneCIDRs": ["10.0.0.1"]}}, "/networkPolicy/controlPlaneCIDRs/0"),
    ({"networkPolicy": {"controlPlaneCIDRs": []}}, "/networkPolicy/controlPlaneCIDRs"),
    ({"metrics": {"port": 8443}}, "/metrics/port"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"probes": {"port": 8443}}, "/probes/port"),
    ({"probes": {"port": "8081"}}, "/probes/port"),
    ({"serviceMonitor": {"interval": "soon"}}, "/serviceMonitor/interval"),
    ({"podDisruptionBudget": {"minAvailable": "half"}}, "/podDisruptionBudget/minAvailable"),
    ({"replicas": 3}, "replicas"),  # a misspelt key is refused, not ignored
    # Exceptions on, but nowhere to live: refused, as serve refuses it.
    ({"exceptions": {"enabled": True}}, "namespaces"),
    ({"exceptions": {"enabled": True, "namespaces": []}}, "/exceptions/namespaces"),
    ({"exceptions": {"maxDays": 0}}, "/exceptions/maxDays"),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _v, w in BAD_VALUES])
def test_the_values_schema_refuses_bad_values(values: dict[str, Any], where: str) -> None:
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert where in error, error


def test_an_unknown_policy_name_is_refused_with_the_shipped_names() -> None:
    error = render_error({"policies": {"enabled": ["deny-nodeports"]}})
    assert 'no shipped policy is named "deny-nodeports"' in error
    assert "deny-nodeport-in-production" in error


def test_a_chart_with_no_policy_at_all_is_refused() -> None:
    assert "no policy to run" in render_error({"policies": {"enabled": []}})


def test_the_probe_and_metrics_ports_must_differ() -> None:
    error = render_error({"probes": {"port": 9090}, "metrics": {"port": 9090}})
    assert "probes.port and metrics.port must differ" in error


def test_a_service_monitor_needs_the_metrics_port() -> None:
    error = render_error({"serviceMonitor": {"enabled": True}, "metrics": {"port": None}})
    assert "serviceMonitor.enabled needs metrics.port" in error


# -- every value set: valid objects that agree with each other ----------------------------


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, NEWEST_KUBERNETES])
def test_every_rendered_object_is_valid_against_the_schemas(value_set: str, version: str) -> None:
    """Kubernetes objects against the Kubernetes schemas (strict), ServiceMonitor and
    PrometheusRule against the prometheus-operator CRDs (strict)."""
    _namespace, objects = render_value_set(value_set)
    problems = schema_problems(objects, version)
    assert not problems, "\n".join(problems)


def test_every_namespaced_object_lives_in_the_release_namespace(value_set: str) -> None:
    namespace, objects = render_value_set(value_set)
    assert objects, "the chart renders objects"
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], obj["metadata"]["name"]
        else:
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]
    created = find(objects, "Namespace")
    if VALUE_SETS[value_set][1].get("namespace", {}).get("create"):
        assert [n["metadata"]["name"] for n in created] == [namespace]
        labels = created[0]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    else:
        assert not created


def test_container_args_parse_with_the_edgewarden_command(value_set: str) -> None:
    namespace, objects = render_value_set(value_set)
    values = VALUE_SETS[value_set][1]
    for container in all_containers(objects):
        args = container["args"]
        if args[0] == "serve":
            params = serve_params(args)
            assert params["dry_run"] is bool(values.get("auditOnly"))
            self_managed = values.get("certificates", {}).get("mode") != "cert-manager"
            assert params["manage_certs"] is self_managed
            assert params["port"] == 8443
            assert params["internal_lb_flavour"] == (
                values.get("internalLoadBalancerFlavour") or None)
            assert params["log_level"] == values.get("logLevel", "info")
        else:
            params = parse_with_the_real_cli(args)
            assert args[:2] == ["certs", "bootstrap"]
            assert params["namespace"] == namespace


def test_the_chart_serves_metrics_on_their_own_port() -> None:
    _namespace, objects = render_value_set("defaults")
    params = parse_with_the_real_cli(server(objects)["args"])
    assert params["metrics_port"] == 8080


def test_policies_configmap_loads_with_the_real_loader(value_set: str, tmp_path: Path) -> None:
    loader = pytest.importorskip("webhook.policy.load.loader")
    _namespace, objects = render_value_set(value_set)
    data = one(objects, "ConfigMap", "edgewarden-policies")["data"]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    names = {p.name for p in loader.load_policies(tmp_path).policies}
    policies = VALUE_SETS[value_set][1].get("policies")
    if policies is None:
        assert names == SHIPPED
    else:
        assert names == set(policies["enabled"]) | {"deny-public-ingress-class"}


def test_policies_configmap_is_what_serve_reads(value_set: str) -> None:
    _namespace, objects = render_value_set(value_set)
    spec = pod_spec(objects)
    args = server(objects)["args"]
    folder = args[args.index("--policies") + 1]
    mount = next(m for m in server(objects)["volumeMounts"] if m["mountPath"] == folder)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "edgewarden-policies"


def test_ports_and_selectors_agree(value_set: str) -> None:
    _namespace, objects = render_value_set(value_set)
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    deployment_selector = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert deployment_selector.items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in server(objects)["ports"]}
    service = one(objects, "Service", "edgewarden")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    for port in service_ports.values():
        assert port["targetPort"] in container_ports, port
    metrics_port = VALUE_SETS[value_set][1].get("metrics", {}).get("port", 8080)
    probe_port = VALUE_SETS[value_set][1].get("probes", {}).get("port", 8081)
    if metrics_port:
        assert container_ports["metrics"] == metrics_port
        assert service_ports["metrics"]["port"] == metrics_port
    else:
        assert set(service_ports) == {"https"}
    assert "probes" not in service_ports  # only the kubelet calls it
    if probe_port:
        assert container_ports["probes"] == probe_port
        assert parse_with_the_real_cli(server(objects)["args"])["probe_port"] == probe_port
    else:
        assert "probes" not in container_ports
    assert set(container_ports) <= {"https", "metrics", "probes"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = server(objects)[probe]["httpGet"]
        # The probe listener when there is one: a flood on the webhook port cannot fail it.
        assert (get["port"], get["scheme"]) == (
            ("probes", "HTTP") if probe_port else ("https", "HTTPS")), probe
    for pdb in find(objects, "PodDisruptionBudget"):
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for policy in find(objects, "NetworkPolicy"):
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                assert port["port"] in container_ports, port
    for monitor in find(objects, "ServiceMonitor"):
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items())
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [
            service["metadata"]["namespace"]]
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in service_ports and endpoint["port"] != "https"
            assert endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"


def static(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the chart rendering the webhook configurations (GitOps)."""
    return {**values, "webhooks": {**values.get("webhooks", {}), "registration": "static"}}


def render_static_value_set(name: str) -> tuple[str, list[Manifest]]:
    namespace, values = VALUE_SETS[name]
    return namespace, render(static(values), namespace=namespace)


def test_by_default_the_server_registers_what_the_values_say(value_set: str) -> None:
    """No configuration rendered; the server's flags carry the failure policy, timeout and
    exclusions the static configurations would have."""
    namespace, objects = render_value_set(value_set)
    assert not [o for o in objects if o["kind"].endswith("WebhookConfiguration")]
    values = VALUE_SETS[value_set][1]
    params = parse_with_the_real_cli(server(objects)["args"])
    assert params["register_webhooks"] is True
    failing = "Ignore" if values.get("auditOnly") else values.get("webhooks", {}).get(
        "failurePolicy", "Fail")
    registered = "Ignore" if params["dry_run"] else params["webhook_failure_policy"].value
    assert registered == failing
    assert params["webhook_timeout"] == values.get("webhooks", {}).get("timeoutSeconds", 5)
    assert list(params["webhook_exclude_namespace"] or []) == values.get(
        "webhooks", {}).get("excludeNamespaces", [])
    job = one(objects, "Job", "edgewarden-uninstall")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "uninstall"
    assert parse_with_the_real_cli(container["args"])["namespace"] == namespace


def test_webhooks_call_the_service_and_never_see_kube_system_or_the_release_namespace(
    value_set: str,
) -> None:
    namespace, objects = render_static_value_set(value_set)
    service = one(objects, "Service", "edgewarden")
    https = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "https")
    extra = VALUE_SETS[value_set][1].get("webhooks", {}).get("excludeNamespaces", [])
    for kind, hook in webhooks(objects):
        target = hook["clientConfig"]["service"]
        assert (target["name"], target["namespace"], target["port"]) == (
            "edgewarden", namespace, https), kind
        assert target["path"] == ("/validate" if kind.startswith("Validating") else "/mutate")
        # The name exclusions first; webhooks.namespaceSelector's own expressions after.
        expression, *others = hook["namespaceSelector"]["matchExpressions"]
        selector = VALUE_SETS[value_set][1].get("webhooks", {}).get("namespaceSelector", {})
        assert others == selector.get("matchExpressions", []), kind
        assert expression["key"] == "kubernetes.io/metadata.name"
        assert expression["operator"] == "NotIn"
        assert set(expression["values"]) == {"kube-system", namespace, *extra}
        assert "caBundle" not in hook["clientConfig"]
        assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]


def test_failure_policy_follows_the_values(value_set: str) -> None:
    _namespace, objects = render_static_value_set(value_set)
    values = VALUE_SETS[value_set][1]
    wanted = "Ignore" if values.get("auditOnly") else values.get("webhooks", {}).get(
        "failurePolicy", "Fail")
    timeout = values.get("webhooks", {}).get("timeoutSeconds", 5)
    for kind, hook in webhooks(objects):
        assert hook["failurePolicy"] == wanted, kind
        assert hook["timeoutSeconds"] == timeout, kind


def test_every_container_runs_restricted(value_set: str) -> None:
    _namespace, objects = render_value_set(value_set)
    spec = pod_spec(objects)
    assert spec["securityContext"]["runAsNonRoot"] is True
    for container in all_containers(objects):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["limits"], container["name"]


def test_certificates_come_from_where_the_mode_says(value_set: str) -> None:
    namespace, objects = render_value_set(value_set)
    args = server(objects)["args"]
    spec = pod_spec(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    roles = {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"].endswith("Role")}
    if "--manage-certs" in args:
        assert "emptyDir" in volumes["tls"]
        assert [c["name"] for c in spec["initContainers"]] == ["certs"]
        assert ("Role", "edgewarden-certs") in roles
        assert ("ClusterRole", "edgewarden-webhook-ca") in roles
        assert not find(objects, "Certificate")
        return
    assert "initContainers" not in spec
    # (edgewarden-policyexceptions-view is for people, aggregated into view/admin.)
    assert roles == {("ClusterRole", "edgewarden-read"), ("ClusterRole", "edgewarden-policies"),
                     ("ClusterRole", "edgewarden-reports"),
                     ("ClusterRole", "edgewarden-policyexceptions-view"),
                     ("ClusterRole", "edgewarden-quotas"),  # manageQuotas (on by default)
                     # webhooks.registration=self and the uninstall hook (by default)
                     ("ClusterRole", "edgewarden-webhook-registration"),
                     ("ClusterRole", "edgewarden-uninstall"), ("Role", "edgewarden-uninstall"),
                     ("Role", "edgewarden-claims"),  # claims (on by default)
                     ("Role", "edgewarden-leader-election")}, "cert-manager mode needs no more"
    secret = volumes["tls"]["secret"]["secretName"]
    serving = one(objects, "Certificate", "edgewarden-serving")
    assert serving["spec"]["secretName"] == secret
    service_names = {"edgewarden", f"edgewarden.{namespace}", f"edgewarden.{namespace}.svc",
                     f"edgewarden.{namespace}.svc.cluster.local"}
    assert set(serving["spec"]["dnsNames"]) == service_names
    # Registered by the server with ca.crt of that Secret; rendered (static) with the
    # annotation cert-manager's CA injector follows.
    assert "--register-webhooks" in args
    static_objects = render(static(VALUE_SETS[value_set][1]), namespace=namespace)
    for kind, _hook in webhooks(static_objects):
        annotation = one(static_objects, kind)["metadata"]["annotations"][
            "cert-manager.io/inject-ca-from"]
        assert annotation == f"{namespace}/edgewarden-serving"
    issuer = serving["spec"]["issuerRef"]
    own = VALUE_SETS[value_set][1]["certificates"]["certManager"]["issuerRef"] if (
        "certManager" in VALUE_SETS[value_set][1]["certificates"]) else None
    if own:
        assert issuer == {"group": "cert-manager.io", "kind": own["kind"], "name": own["name"]}
        assert not find(objects, "Issuer")
    else:
        one(objects, "Issuer", issuer["name"])


def test_network_policy_lets_only_the_control_plane_reach_the_webhook_port(
    value_set: str,
) -> None:
    _namespace, objects = render_value_set(value_set)
    values = VALUE_SETS[value_set][1]
    policies = find(objects, "NetworkPolicy")
    if not values.get("networkPolicy", {}).get("enabled", True):
        assert not policies
        return
    [policy] = policies
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    by_port = {port["port"]: rule for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    assert "probes" not in by_port  # the kubelet calls from the pod's node: never blocked
    webhook_rule = by_port["https"]
    assert [port["port"] for port in webhook_rule["ports"]] == ["https"]
    cidrs = [peer["ipBlock"]["cidr"] for peer in webhook_rule["from"]]
    assert len(cidrs) == len(webhook_rule["from"]), "only ipBlocks may reach the webhook port"
    for cidr in cidrs:
        ipaddress.ip_network(cidr)  # strict: a host address with a prefix is refused
    assert cidrs == values.get("networkPolicy", {}).get(
        "controlPlaneCIDRs", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])
    if values.get("metrics", {}).get("port", 8080):
        assert by_port["metrics"]["from"] == values.get("networkPolicy", {}).get(
            "metricsFrom", [{"namespaceSelector": {}}])
    else:
        assert set(by_port) == {"https"}


# -- particular values --------------------------------------------------------------------


def test_scheduling_and_image_values_reach_the_pod() -> None:
    _namespace, objects = render_value_set("scheduling-and-image")
    values = VALUE_SETS["scheduling-and-image"][1]
    deployment = one(objects, "Deployment")
    spec = pod_spec(objects)
    assert deployment["spec"]["replicas"] == 3
    for key in ("priorityClassName", "nodeSelector", "tolerations", "affinity",
                "topologySpreadConstraints", "imagePullSecrets"):
        assert spec[key] == values[key], key
    image = f"registry.example.com/platform/edgewarden@sha256:{'ab' * 32}"
    for container in all_containers(objects):
        assert container["image"] == image and container["imagePullPolicy"] == "Always"
    assert server(objects)["resources"] == values["resources"]
    metadata = deployment["spec"]["template"]["metadata"]
    assert metadata["labels"]["team"] == "platform"
    assert metadata["annotations"]["example.com/owner"] == "platform"
    assert one(objects, "ServiceAccount")["metadata"]["annotations"] == {
        "example.com/role": "edgewarden"}
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == "50%"
    args = server(objects)["args"]
    assert args[-2:] == ["--max-body-bytes", "8388608"]
    assert serve_params(args)["max_body_bytes"] == 8388608


def test_defaults_spread_softly_and_take_the_app_version_as_image_tag() -> None:
    objects = render()
    spec = pod_spec(objects)
    assert [c["whenUnsatisfiable"] for c in spec["topologySpreadConstraints"]] == [
        "ScheduleAnyway", "ScheduleAnyway"]
    assert "priorityClassName" not in spec
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    for container in all_containers(objects):
        assert container["image"] == f"edgewarden:{app_version}"
    assert one(objects, "Deployment")["spec"]["replicas"] == 2


def test_audit_only_differs_from_enforcing_in_dry_run_and_failure_policy_only() -> None:
    enforcing, audit = render(static({})), render(static({"auditOnly": True}))
    audit_args = server(audit)["args"]
    assert audit_args.count("--dry-run") == 1
    assert [a for a in audit_args if a != "--dry-run"] == server(enforcing)["args"]
    for objects in (enforcing, audit):
        server(objects)["args"] = []
        for obj in objects:
            for hook in obj.get("webhooks", []):
                hook["failurePolicy"] = "?"
    assert audit == enforcing


def test_a_policy_change_rolls_the_pods() -> None:
    """The pod template carries a checksum of the policies: a change means new pods (which
    must load it before they become ready)."""
    def checksum(values: dict[str, Any]) -> str:
        template = one(render(values), "Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/policies"])

    base = checksum({})
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert checksum({"policies": {"custom": {"x.yaml": CUSTOM_POLICY}}}) != base
    assert checksum({"policies": {"enabled": ["deny-external-ips"]}}) != base
    assert checksum({"replicaCount": 3}) == base


def test_a_custom_policy_with_a_shipped_name_replaces_it() -> None:
    replacement = CUSTOM_POLICY.replace("deny-public-ingress-class", "require-ingress-class")
    objects = render({"policies": {"custom": {"require-ingress-class.yaml": replacement}}})
    data = one(objects, "ConfigMap", "edgewarden-policies")["data"]
    assert data["require-ingress-class.yaml"] == replacement
    assert len(data) == len(SHIPPED)


def test_shipped_policies_in_the_chart_are_one_document_named_like_their_file() -> None:
    """The chart selects shipped policies by metadata.name, read with fromYaml (one
    document per file)."""
    files = sorted((CHART / "policies").glob("*.yaml"))
    assert {f.stem for f in files} == SHIPPED
    for path in files:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(documents) == 1 and documents[0]["metadata"]["name"] == path.stem


def test_other_rules_reach_both_webhooks() -> None:
    rule = {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
            "resources": ["ingresses"], "operations": ["CREATE", "UPDATE", "DELETE"],
            "scope": "Namespaced"}
    objects = render({"webhooks": {"validating": {"rules": [rule]},
                                   "mutating": {"rules": [rule]}, "registration": "static"}})
    for _kind, hook in webhooks(objects):
        assert hook["rules"] == [rule]


def test_release_namespace_other_than_edgewarden() -> None:
    namespace, objects = render_value_set("other-namespace")
    assert namespace != NAMESPACE
    binding_subjects = [s for o in objects if o["kind"].endswith("Binding") for s in o["subjects"]]
    assert binding_subjects and all(s["namespace"] == namespace for s in binding_subjects)
    init = pod_spec(objects)["initContainers"][0]
    assert parse_with_the_real_cli(init["args"])["namespace"] == namespace


def test_release_name_does_not_change_object_names() -> None:
    """`serve --manage-certs` looks for fixed names; a release called otherwise must not
    rename anything."""
    result = run_helm("template", "something-else", str(CHART), "--namespace", NAMESPACE,
                      "--kube-version", KUBE_VERSION)
    assert result.returncode == 0, result.stderr
    names = {(d["kind"], d["metadata"]["name"])
             for d in yaml.safe_load_all(result.stdout) if d}
    assert names == {(o["kind"], o["metadata"]["name"]) for o in render()}
    assert RELEASE != "something-else"


def test_the_packaged_chart_renders_what_the_folder_renders(tmp_path: Path) -> None:
    """`helm package` keeps the policies and monitoring copies (nothing the templates read
    is left out by .helmignore), so a chart from a repository installs the same."""
    result = run_helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    [archive] = tmp_path.glob("edgewarden-*.tgz")
    values = {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}
    rendered = run_helm("template", RELEASE, str(archive), "--namespace", NAMESPACE,
                        "--kube-version", KUBE_VERSION, values=values)
    assert rendered.returncode == 0, rendered.stderr
    packaged = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert packaged == render(values)


# -- PolicyExceptions ------------------------------------------------------------------------


def test_exceptions_are_off_by_default_and_the_values_turn_them_on_for_named_namespaces(
) -> None:
    params = serve_params(server(render())["args"])
    assert params["enable_exceptions"] is False and not params["exception_namespace"]
    assert params["max_exception_days"] == 90
    args = server(render({"exceptions": {"enabled": True, "maxDays": 30,
                                         "namespaces": ["policy-exceptions", "platform"]}}))[
        "args"]
    params = serve_params(args)
    assert params["enable_exceptions"] is True
    assert params["exception_namespace"] == ["policy-exceptions", "platform"]
    assert params["max_exception_days"] == 30


@pytest.mark.parametrize("values", [{}, {"auditOnly": True},
                                    {"webhooks": {"failurePolicy": "Ignore",
                                                  "timeoutSeconds": 7}}])
def test_the_approval_webhook_fails_closed_whatever_the_values(values: dict[str, Any]) -> None:
    hook = approval(render(static(values)))
    assert hook["failurePolicy"] == "Fail"
    assert hook["timeoutSeconds"] == values.get("webhooks", {}).get("timeoutSeconds", 5)
    assert hook["clientConfig"]["service"]["path"] == "/mutate-policyexception"
    assert "namespaceSelector" not in hook
    assert hook["rules"] == [{"apiGroups": ["edgewarden.dev"], "apiVersions": ["v1alpha1"],
                              "resources": ["policyexceptions"],
                              "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]


def test_namespace_admins_read_exceptions_through_an_aggregated_read_only_role() -> None:
    role = one(render(), "ClusterRole", "edgewarden-policyexceptions-view")
    labels = role["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert role["rules"] == [{"apiGroups": ["edgewarden.dev"], "resources": ["policyexceptions"],
                              "verbs": ["get", "list", "watch"]}]
