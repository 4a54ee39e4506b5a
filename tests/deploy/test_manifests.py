"""Every overlay builds, every object is valid Kubernetes, and the pieces agree with each
other: what a platform engineer must be able to trust before `kubectl apply -k`."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
import yaml
from kubernetes_validate.utils import all_versions

from webhook.policy.load.loader import load_policies
from webhook.policy.model.kinds import SHORT_NAMES

from .checks import parse_with_the_real_cli, schema_problems
from .conftest import OVERLAYS, REPO, Manifest, find, one, rendered, rendered_static

NAMESPACE = "edgewarden"
SERVICE = "edgewarden"
WEBHOOKS = {
    "ValidatingWebhookConfiguration": ("edgewarden-validating", "/validate"),
    "MutatingWebhookConfiguration": ("edgewarden-mutating", "/mutate"),
}
# The edgewarden command, run from this interpreter whether or not its script is installed.
EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]
# Oldest Kubernetes minor we claim to run on, and the newest whose schemas the installed
# kubernetes-validate ships (it works offline from bundled schemas).
OLDEST_KUBERNETES = "1.29"
NEWEST_KUBERNETES = ".".join(all_versions()[-1].split(".")[:2])
# The endpoints `edgewarden serve` answers (SPEC, and webhook/admission/app.py).
SERVER_PATHS = {"/validate", "/mutate", "/mutate-policyexception", "/healthz", "/livez",
                "/readyz", "/metrics"}
# The PolicyException approval webhook rides in the mutating configuration; it has its own
# rules (tests/deploy/test_exception_deploy.py), so the policy webhooks' tests skip it.
APPROVAL_WEBHOOK = "approve-exception.edgewarden.dev"
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}


def deployment(objects: list[Manifest]) -> Manifest:
    return one(objects, "Deployment", "edgewarden")


def container(objects: list[Manifest]) -> dict[str, Any]:
    containers = deployment(objects)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def webhook_entries(objects: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """Every webhook of both configurations; each configuration must have at least one, so
    a test looping over them can never pass by looping over nothing."""
    entries = []
    for kind, (name, _path) in WEBHOOKS.items():
        hooks = [h for h in one(objects, kind, name).get("webhooks") or []
                 if h["name"] != APPROVAL_WEBHOOK]
        assert hooks, f"{kind} {name} has no webhooks"
        entries += [(kind, hook) for hook in hooks]
    return entries


def flag(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a container's args."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def mounted_volume(objects: list[Manifest], path: str) -> dict[str, Any]:
    """The pod volume whose mount holds ``path`` (the longest matching mountPath)."""
    mounts = [
        m for m in container(objects).get("volumeMounts", [])
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert mounts, f"{path} is on no mounted volume"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volumes = deployment(objects)["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == mount["name"])


# -- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, NEWEST_KUBERNETES])
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    # cert-manager objects are CRDs with no bundled schema: checked by
    # test_cert_manager_objects_are_well_formed_and_their_references_resolve.
    problems = schema_problems(rendered(overlay), version)
    assert not problems, "\n".join(problems)


def test_overlays_are_the_documented_four() -> None:
    assert set(OVERLAYS) == {"kind", "production", "cert-manager", "audit-only"}


def test_every_namespaced_object_lives_in_the_edgewarden_namespace(overlay: str) -> None:
    objects = rendered(overlay)
    one(objects, "Namespace", NAMESPACE)
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]


def test_own_namespace_enforces_the_restricted_pod_security_standard(overlay: str) -> None:
    labels = one(rendered(overlay), "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# -- webhook configurations ---------------------------------------------------------------


def test_webhooks_never_see_kube_system_or_their_own_namespace(overlay: str) -> None:
    objects = rendered_static(overlay)
    own = one(objects, "Service", SERVICE)["metadata"]["namespace"]
    for kind, hook in webhook_entries(objects):
        expressions = hook["namespaceSelector"]["matchExpressions"]
        excluded = {
            value
            for e in expressions
            if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"
            for value in e["values"]
        }
        assert {"kube-system", own} <= excluded, f"{kind} {hook['name']} excludes {excluded}"


def test_webhook_settings_are_safe_for_the_api_server(overlay: str) -> None:
    for kind, hook in webhook_entries(rendered_static(overlay)):
        where = f"{kind} {hook['name']}"
        assert 1 <= hook["timeoutSeconds"] <= 30, where
        assert hook["admissionReviewVersions"] == ["v1"], where
        # None: the server reserves nothing for a dry-run request, so it may be called
        # for `kubectl apply --dry-run=server` (the API server skips other webhooks).
        assert hook["sideEffects"] == "None", where
        assert hook["matchPolicy"] == "Equivalent", where
        assert hook["failurePolicy"] in ("Fail", "Ignore"), where
        assert "caBundle" not in hook["clientConfig"], f"{where}: caBundle is injected at run time"


def test_webhooks_call_the_edgewarden_service_on_its_real_paths(overlay: str) -> None:
    objects = rendered_static(overlay)
    svc = one(objects, "Service", SERVICE)
    ports = {p["port"]: p for p in svc["spec"]["ports"]}
    for kind, hook in webhook_entries(objects):
        path = WEBHOOKS[kind][1]
        target = hook["clientConfig"]["service"]
        assert target["name"] == svc["metadata"]["name"]
        assert target["namespace"] == svc["metadata"]["namespace"]
        assert target["path"] == path and path in SERVER_PATHS
        assert target.get("port", 443) in ports


def test_webhook_rules_send_services_and_ingresses_on_create_and_update(overlay: str) -> None:
    objects = rendered_static(overlay)
    for kind, (name, _path) in WEBHOOKS.items():
        sent = {
            (group, resource, operation)
            for hook in one(objects, kind, name)["webhooks"]
            for rule in hook["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for operation in rule["operations"]
        }
        assert {("", "services", "CREATE"), ("", "services", "UPDATE")} <= sent, kind
        if kind == "ValidatingWebhookConfiguration":
            assert {("networking.k8s.io", "ingresses", "CREATE"),
                    ("networking.k8s.io", "ingresses", "UPDATE")} <= sent
        assert not any("*" in part for entry in sent for part in entry), "no wildcard rules"


def test_static_webhook_rules_cover_what_the_shipped_policies_need(overlay: str) -> None:
    """If a shipped policy starts to match another kind or operation, the static
    configurations in deploy/components/static-webhooks/webhooks.yaml must follow (or no
    request reaches it)."""
    from .test_policies_configmap import POLICIES_DIR

    policy_set = load_policies(POLICIES_DIR)
    objects = rendered_static(overlay)
    for kind, (name, _path) in WEBHOOKS.items():
        sent = {
            (group, version, resource, operation)
            for hook in one(objects, kind, name)["webhooks"]
            for rule in hook["rules"]
            for group in rule["apiGroups"]
            for version in rule["apiVersions"]
            for resource in rule["resources"]
            for operation in rule["operations"]
        }
        needed = policy_set.webhook_rules(mutating=kind.startswith("Mutating"))
        assert needed, f"no shipped policy needs the {kind}: nothing here would be checked"
        for rule in needed:
            for operation in rule.operations:
                wanted = (rule.group, rule.version, rule.resource, operation)
                assert wanted in sent, f"{kind} does not send {wanted}, a shipped policy needs it"


@pytest.mark.parametrize("overlay", ["production", "cert-manager"])
def test_production_fails_closed(overlay: str) -> None:
    for kind, hook in webhook_entries(rendered_static(overlay)):
        assert hook["failurePolicy"] == "Fail", f"{overlay}: {kind}"


@pytest.mark.parametrize("overlay", ["kind", "audit-only"])
def test_kind_and_audit_only_fail_open(overlay: str) -> None:
    """Static configurations (kind) fail open; a registering server (audit-only) is told to
    (--dry-run registers failurePolicy Ignore, webhook/cli/registration_options.py)."""
    objects = rendered(overlay)
    args = container(objects)["args"]
    if "--register-webhooks" not in args:
        entries = webhook_entries(objects)
        assert entries, f"{overlay}: neither registered nor static configurations"
        for kind, hook in entries:
            assert hook["failurePolicy"] == "Ignore", f"{overlay}: {kind}"
        return
    if "--dry-run" not in args:
        assert args[args.index("--webhook-failure-policy") + 1] == "Ignore", overlay


# -- the Deployment -----------------------------------------------------------------------


def test_audit_only_runs_the_whole_server_in_dry_run_and_nothing_else_does(overlay: str) -> None:
    args = container(rendered(overlay))["args"]
    assert ("--dry-run" in args) == (overlay == "audit-only"), args


def test_audit_only_is_production_plus_dry_run() -> None:
    """Switching from audit-only to enforcing changes the server flag and the
    failurePolicy, nothing else: `kubectl apply -k deploy/overlays/production` finishes it."""
    audit, production = rendered("audit-only"), rendered("production")
    assert container(audit)["args"] == [*container(production)["args"], "--dry-run"]
    for objects in (audit, production):
        for o in objects:
            if o["kind"] == "Deployment":
                o["spec"]["template"]["spec"]["containers"][0]["args"] = []
            for hook in o.get("webhooks", []):
                hook["failurePolicy"] = "?"
    assert audit == production


def test_server_flags_match_the_container(overlay: str) -> None:
    objects = rendered(overlay)
    c = container(objects)
    args = c["args"]
    assert args[0] == "serve"
    port = flag(args, "--port")
    assert port is not None and int(port) in {p["containerPort"] for p in c["ports"]}
    policies = flag(args, "--policies")
    assert policies is not None
    volume = mounted_volume(objects, policies)
    configmap = one(objects, "ConfigMap", volume["configMap"]["name"])
    assert configmap["metadata"]["name"].startswith("edgewarden-policies")


def test_certificate_flags_point_into_the_right_volume(overlay: str) -> None:
    objects = rendered(overlay)
    args = container(objects)["args"]
    if "--manage-certs" in args:
        cert_dir = flag(args, "--cert-dir")
        assert cert_dir is not None, "--manage-certs needs a writable --cert-dir"
        assert "emptyDir" in mounted_volume(objects, cert_dir)
        assert flag(args, "--tls-cert") is None
    else:
        cert, key = flag(args, "--tls-cert"), flag(args, "--tls-key")
        assert cert is not None and key is not None, "no certificate source"
        for path in (cert, key):
            secret = mounted_volume(objects, path)["secret"]["secretName"]
            certificates = [c for c in find(objects, "Certificate")
                            if c["spec"]["secretName"] == secret]
            assert certificates, f"{path}: no Certificate writes Secret {secret}"


def test_overlays_choose_the_documented_certificate_source(overlay: str) -> None:
    args = container(rendered(overlay))["args"]
    if overlay == "cert-manager":
        assert "--manage-certs" not in args
    else:
        assert "--manage-certs" in args


def test_probes_call_the_servers_own_probe_listener(overlay: str) -> None:
    """Not the webhook port: a flood there must not make the kubelet restart the pod or
    take it out of the Service (issue 18)."""
    objects = rendered(overlay)
    c = container(objects)
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    probe_port = parse_with_the_real_cli(c["args"])["probe_port"]
    assert named["probes"] == probe_port != named["https"]
    expected = {
        "livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz",
    }
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path and path in SERVER_PATHS, probe
        assert get["scheme"] == "HTTP", probe  # the probe listener is plain HTTP
        assert get["port"] == "probes", probe
    service = one(objects, "Service", SERVICE)
    assert "probes" not in [p["targetPort"] for p in service["spec"]["ports"]]
    assert probe_port not in [p["targetPort"] for p in service["spec"]["ports"]]


def all_containers(objects: list[Manifest]) -> list[dict[str, Any]]:
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["containers"], "the Deployment runs no container"
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_container_security_context_is_restricted(overlay: str) -> None:
    objects = rendered(overlay)
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for c in all_containers(objects):
        sc = c["securityContext"]
        where = c["name"]
        assert sc["runAsNonRoot"] is True, where
        assert sc["runAsUser"] != 0, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in sc["capabilities"], where
        assert sc.get("privileged", False) is False, where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert {"cpu", "memory"} <= c["resources"]["limits"].keys(), where
    assert "emptyDir" in mounted_volume(objects, "/tmp"), "a read-only root needs a /tmp"


def test_self_managed_certificates_are_issued_before_the_server_starts(overlay: str) -> None:
    objects = rendered(overlay)
    args = container(objects)["args"]
    init = deployment(objects)["spec"]["template"]["spec"].get("initContainers", [])
    if "--manage-certs" not in args:
        assert not init
        return
    assert len(init) == 1
    bootstrap = init[0]
    assert bootstrap["args"][:2] == ["certs", "bootstrap"]
    out = flag(bootstrap["args"], "--out")
    assert out == flag(args, "--cert-dir"), "the init container writes where serve reads"
    assert bootstrap["image"] == container(objects)["image"]
    volume = next(m["name"] for m in bootstrap["volumeMounts"] if m["mountPath"] == out)
    assert volume == mounted_volume(objects, out + "/tls.crt")["name"]


def test_deployment_is_highly_available_and_bounded(overlay: str) -> None:
    objects = rendered(overlay)
    spec = deployment(objects)["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    constraints = spec["template"]["spec"]["topologySpreadConstraints"]
    assert constraints, "replicas are spread across nodes"
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    resources = container(objects)["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[part].keys(), part
    pdb = one(objects, "PodDisruptionBudget", "edgewarden")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = one(objects, "Service", SERVICE)
    assert service["spec"]["selector"].items() <= pod_labels.items()
    target = service["spec"]["ports"][0]["targetPort"]
    assert target in {p.get("name") for p in container(objects)["ports"]} | {8443}


def test_kind_overlay_uses_the_locally_loaded_image(overlay: str) -> None:
    for c in all_containers(rendered(overlay)):
        if overlay == "kind":
            assert c["image"] == "edgewarden:dev"
            assert c["imagePullPolicy"] == "Never"
        else:
            assert c["image"].endswith(":0.1.0") and c["imagePullPolicy"] == "IfNotPresent"


# -- RBAC ---------------------------------------------------------------------------------


def rules_of(objects: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """Every RBAC rule; there must be some, so a test looping over them checks something."""
    found = [
        (f"{o['kind']}/{o['metadata']['name']}", rule)
        for o in objects
        if o["kind"] in ("ClusterRole", "Role")
        for rule in o.get("rules", [])
    ]
    assert found, "no Role or ClusterRole grants anything"
    return found


def test_rbac_has_no_wildcards_and_reads_only_what_policies_judge(overlay: str) -> None:
    objects = rendered(overlay)
    for where, rule in rules_of(objects):
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(key, []), f"{where}: wildcard {key}"
    read = one(objects, "ClusterRole", "edgewarden-read")
    granted = {
        (group, resource, verb)
        for rule in read["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # Namespaces and every kind a policy may name by short name (a policy naming a kind the
    # server cannot list would keep its cache from syncing); nothing else.
    wanted = {
        (group, resource, verb)
        for group, resource in (("", "namespaces"),
                                *((ref.group, ref.resource) for ref in SHORT_NAMES.values()))
        for verb in ("get", "list", "watch")
    }
    assert granted == wanted


# The writes the server may make cluster-wide, each for a named reason: the caBundle of its
# own two webhook configurations (--manage-certs), the status of Policy objects (never their
# spec), the continuous audit's PolicyReports, and the LoadBalancer quotas (--manage-quotas:
# update and delete only by name).
CLUSTER_WRITES = {
    ("", "resourcequotas", "list"),
    ("", "resourcequotas", "create"),
    ("", "resourcequotas", "update"),
    ("", "resourcequotas", "delete"),
    # --register-webhooks and `edgewarden uninstall`: the two configurations by name, and
    # create (which cannot be limited by name).
    *(("admissionregistration.k8s.io", kind, verb)
      for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
      for verb in ("get", "patch", "update", "delete", "create")),
    ("edgewarden.dev", "policies/status", "patch"),
    ("edgewarden.dev", "policyexceptions/status", "patch"),
    *(("wgpolicyk8s.io", kind, verb) for kind in ("policyreports", "clusterpolicyreports")
      for verb in ("list", "create", "update", "delete")),
}
# What it may read cluster-wide besides what policies judge: its own kinds.
CLUSTER_READS = {("edgewarden.dev", kind, verb) for kind in ("policies", "policyexceptions")
                 for verb in ("list", "watch")}


def test_cluster_wide_writes_are_only_the_named_ones(overlay: str) -> None:
    objects = rendered(overlay)
    read_only = {"get", "list", "watch"}
    cluster_roles = find(objects, "ClusterRole")
    assert cluster_roles, "the server reads the cluster through a ClusterRole"
    for obj in cluster_roles:
        for rule in obj["rules"]:
            granted = {(group, resource, verb) for group in rule["apiGroups"]
                       for resource in rule["resources"] for verb in rule["verbs"]}
            # edgewarden-policyexceptions-view is for people (aggregated into view/admin),
            # not the server; it reads only (tests/deploy/test_exception_deploy.py).
            if obj["metadata"]["name"] in ("edgewarden-read", "edgewarden-policyexceptions-view"):
                assert set(rule["verbs"]) <= read_only, rule
                continue
            assert granted <= CLUSTER_WRITES | CLUSTER_READS, rule
            if rule["resources"] == ["resourcequotas"] and not {"list", "create"} >= set(
                    rule["verbs"]):
                assert rule.get("resourceNames") == ["edgewarden-loadbalancers"], rule
            if rule["apiGroups"] == ["admissionregistration.k8s.io"] and rule["verbs"] == [
                    "create"]:
                assert "resourceNames" not in rule, rule  # the API server would ignore it
                continue
            if rule["apiGroups"] == ["admissionregistration.k8s.io"]:
                names = {
                    "validatingwebhookconfigurations": ["edgewarden-validating"],
                    "mutatingwebhookconfigurations": ["edgewarden-mutating"],
                }
                assert len(rule["resources"]) == 1, rule
                assert rule.get("resourceNames") == names[rule["resources"][0]], rule


def test_leader_election_touches_one_lease_in_the_own_namespace(overlay: str) -> None:
    objects = rendered(overlay)
    role = one(objects, "Role", "edgewarden-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    named, anonymous, events = role["rules"]
    assert named == {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                     "resourceNames": ["edgewarden-leader"], "verbs": ["get", "update"]}
    # create cannot be restricted by name (the name does not exist when it is authorized).
    assert anonymous == {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                         "verbs": ["create"]}
    # Warning Events about Policy objects that do not load, in the own namespace only.
    assert events == {"apiGroups": ["events.k8s.io"], "resources": ["events"],
                      "verbs": ["create"]}


def test_secret_access_is_limited_to_the_own_namespace_and_secret(overlay: str) -> None:
    objects = rendered(overlay)
    manages = "--manage-certs" in container(objects)["args"]
    secret_rules = [(w, r) for w, r in rules_of(objects) if "secrets" in r["resources"]]
    # `edgewarden uninstall` deletes edgewarden-tls by name, only when labelled as
    # edgewarden's (webhook/controllers/uninstall.py): in every mode.
    uninstall = ("Role/edgewarden-uninstall", {
        "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["edgewarden-tls"],
        "verbs": ["get", "delete"]})
    assert uninstall in secret_rules
    secret_rules.remove(uninstall)
    if not manages:
        assert not secret_rules, "cert-manager mode needs no Secret access"
        assert not find(objects, "ClusterRole", "edgewarden-webhook-ca")
        return
    assert secret_rules, "--manage-certs keeps its certificate in a Secret"
    for where, rule in secret_rules:
        assert where.startswith("Role/"), f"{where}: Secret access must be namespaced"
        if rule.get("resourceNames"):
            assert rule["resourceNames"] == ["edgewarden-tls"]
            assert set(rule["verbs"]) <= {"get", "update", "patch"}
        else:
            # create cannot be restricted by name (see deploy/components/self-managed-certs).
            assert rule["verbs"] == ["create"], where


def test_bindings_grant_roles_to_the_pods_service_account_only(overlay: str) -> None:
    objects = rendered(overlay)
    account = deployment(objects)["spec"]["template"]["spec"]["serviceAccountName"]
    one(objects, "ServiceAccount", account)
    roles = {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"].endswith("Role")}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings, "the service account is granted its roles by bindings"
    for binding in bindings:
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


# -- cert-manager -------------------------------------------------------------------------


def expected_sans(objects: list[Manifest]) -> set[str]:
    svc = one(objects, "Service", SERVICE)["metadata"]
    name, ns = svc["name"], svc["namespace"]
    return {name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"}


def test_cert_manager_certificate_covers_every_service_name() -> None:
    objects = rendered("cert-manager")
    secret = mounted_volume(objects, flag(container(objects)["args"], "--tls-cert") or "")
    serving = next(c for c in find(objects, "Certificate")
                   if c["spec"]["secretName"] == secret["secret"]["secretName"])
    assert set(serving["spec"]["dnsNames"]) >= expected_sans(objects)
    assert "server auth" in serving["spec"]["usages"]


def test_cert_manager_serving_secret_is_what_the_server_registers() -> None:
    """The server registers the caBundle from ca.crt beside its --tls-cert: the mounted
    Secret of the cert-manager Certificate, whose CA issuer writes ca.crt."""
    objects = rendered("cert-manager")
    args = container(objects)["args"]
    assert "--register-webhooks" in args
    folder = args[args.index("--tls-cert") + 1].rsplit("/", 1)[0]
    [mount] = [m for m in container(objects)["volumeMounts"] if m["mountPath"] == folder]
    [volume] = [v for v in deployment(objects)["spec"]["template"]["spec"]["volumes"]
                if v["name"] == mount["name"]]
    secret = volume["secret"]["secretName"]
    [serving] = [c for c in find(objects, "Certificate") if c["spec"]["secretName"] == secret]
    assert expected_sans(objects) <= set(serving["spec"]["dnsNames"])
    issuer = one(objects, serving["spec"]["issuerRef"].get("kind", "Issuer"),
                 serving["spec"]["issuerRef"]["name"])
    assert "ca" in issuer["spec"], "a CA issuer, so the Secret carries ca.crt"


CERTIFICATE_FIELDS = {
    "secretName", "commonName", "dnsNames", "duration", "renewBefore", "usages", "isCA",
    "privateKey", "issuerRef", "subject", "secretTemplate",
}
ISSUER_KINDS = {"selfSigned", "ca"}
USAGES = {"server auth", "client auth", "digital signature", "key encipherment",
          "cert sign", "crl sign"}


def test_cert_manager_objects_are_well_formed_and_their_references_resolve() -> None:
    """No CRD schema ships with kubernetes-validate: check the fields we use by hand."""
    objects = rendered("cert-manager")
    issuers = {o["metadata"]["name"]: o for o in find(objects, "Issuer")}
    certificates = find(objects, "Certificate")
    assert issuers and certificates
    for issuer in issuers.values():
        assert issuer["apiVersion"] == "cert-manager.io/v1"
        assert len(issuer["spec"]) == 1 and set(issuer["spec"]) <= ISSUER_KINDS, issuer["spec"]
        if "ca" in issuer["spec"]:
            secret = issuer["spec"]["ca"]["secretName"]
            assert any(c["spec"]["secretName"] == secret and c["spec"].get("isCA")
                       for c in certificates), f"no CA Certificate writes {secret}"
    for cert in certificates:
        spec = cert["spec"]
        assert cert["apiVersion"] == "cert-manager.io/v1"
        assert set(spec) <= CERTIFICATE_FIELDS, set(spec) - CERTIFICATE_FIELDS
        assert spec["issuerRef"]["kind"] == "Issuer"
        assert spec["issuerRef"]["group"] == "cert-manager.io"
        assert spec["issuerRef"]["name"] in issuers
        assert set(spec.get("usages", [])) <= USAGES
        assert spec["privateKey"]["algorithm"] in {"RSA", "ECDSA", "Ed25519"}
        assert spec["privateKey"].get("rotationPolicy", "Always") in {"Always", "Never"}


# -- agreement with `edgewarden webhook-config` ---------------------------------------------

COMPARED = ("name", "clientConfig", "rules", "admissionReviewVersions", "sideEffects",
            "matchPolicy", "timeoutSeconds", "failurePolicy", "namespaceSelector",
            "reinvocationPolicy", "matchConditions")


def normalized(hook: dict[str, Any]) -> dict[str, Any]:
    out = {key: copy.deepcopy(hook.get(key)) for key in COMPARED}
    out["rules"] = sorted(out["rules"], key=lambda r: (r["apiGroups"], r["resources"]))
    for rule in out["rules"]:
        rule["operations"] = sorted(rule["operations"])
    for expression in (out["namespaceSelector"] or {}).get("matchExpressions", []):
        expression["values"] = sorted(expression["values"])
    return out


def test_base_webhooks_are_what_edgewarden_webhook_config_renders() -> None:
    """deploy/components/static-webhooks/webhooks.yaml is written by hand; the CLI renders
    the same from the shipped policies. They must not drift apart."""
    result = subprocess.run(
        [*EDGEWARDEN, "webhook-config", "--policies", str(REPO / "policies")],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered_by_cli = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    static = {
        d["kind"]: d
        for d in yaml.safe_load_all(
            (REPO / "deploy" / "components" / "static-webhooks" / "webhooks.yaml").read_text())
        if d
    }
    assert rendered_by_cli.keys() == static.keys() == WEBHOOKS.keys()
    for kind, document in static.items():
        assert document["metadata"]["name"] == rendered_by_cli[kind]["metadata"]["name"]
        assert [normalized(h) for h in document["webhooks"]] == [
            normalized(h) for h in rendered_by_cli[kind]["webhooks"]
        ], kind


# -- agreement with the `edgewarden` command line -----------------------------------------


def test_every_container_args_parse_with_the_edgewarden_command(overlay: str) -> None:
    containers = all_containers(rendered(overlay))
    parsed = [(c["args"], parse_with_the_real_cli(c["args"])) for c in containers]
    [serve] = [params for args, params in parsed if args[0] == "serve"]
    assert serve["dry_run"] is (overlay == "audit-only")
    assert serve["manage_certs"] is (overlay != "cert-manager")
    assert serve["port"] == 8443
