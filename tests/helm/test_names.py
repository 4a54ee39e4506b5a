"""fullnameOverride / nameOverride (issue 23): every object the chart renders is named after
the override, and every argument that names an object (serve's, the certificate init
container's, the uninstall hook's) names one the chart renders or serve itself creates
under the same base name. Parsed with the real CLI, so an option that does not exist fails."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.checks import Manifest, parse_with_the_real_cli

from .chart import render, render_error
from .test_chart import one

NAME = "acme-guard"
NAMESPACE = "guard"
# Objects serve (or `certs bootstrap`) makes itself at run time, under the base name.
MADE_BY_SERVE = {("Lease", f"{NAME}-leader"), ("Secret", f"{NAME}-tls"),
                 ("ValidatingWebhookConfiguration", f"{NAME}-validating"),
                 ("MutatingWebhookConfiguration", f"{NAME}-mutating")}
# Every mode that renders a different set of objects or args.
MODES: dict[str, dict[str, Any]] = {
    "self-registration": {},
    "static": {"webhooks": {"registration": "static"}},
    "cert-manager": {"certificates": {"mode": "cert-manager"},
                     "webhooks": {"registration": "static"}},
    "native": {"native": {"enabled": True}},
    "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                   "grafanaDashboard": {"enabled": True}},
}


def rendered(mode: str, **overrides: Any) -> list[Manifest]:
    return render({**MODES[mode], **overrides}, namespace=NAMESPACE)


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    """The Deployment's pod spec, whatever it is named."""
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def names(objects: list[Manifest]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


def container_args(objects: list[Manifest], name: str) -> list[str]:
    spec = pod_spec(objects)
    found = [c for c in [*spec.get("initContainers", []), *spec["containers"]]
             if c["name"] == name]
    assert len(found) == 1, name
    return [str(a) for a in found[0]["args"]]


def uninstall_args(objects: list[Manifest]) -> list[str] | None:
    jobs = [o for o in objects if o["kind"] == "Job"]
    if not jobs:
        return None
    assert len(jobs) == 1
    [container] = jobs[0]["spec"]["template"]["spec"]["containers"]
    return [str(a) for a in container["args"]]


@pytest.mark.parametrize("mode", list(MODES))
def test_every_object_is_named_after_the_override(mode: str) -> None:
    objects = rendered(mode, fullnameOverride=NAME)
    found = names(objects)
    assert len(found) > 10, "the chart renders its usual objects"
    for kind, name in sorted(found):
        if kind == "Namespace" or kind == "CustomResourceDefinition":
            continue  # named by the user and by the API
        assert name == NAME or name.startswith(NAME + "-"), (kind, name)
    assert ("Service", NAME) in found
    for binding in (o for o in objects if o["kind"].endswith("AdmissionPolicyBinding")):
        policy = binding["kind"].removesuffix("Binding")
        assert (policy, binding["spec"]["policyName"]) in found, binding["metadata"]["name"]
    assert ("ServiceAccount", NAME) in found
    assert ("Deployment", NAME) in found
    assert pod_spec(objects)["serviceAccountName"] == NAME


@pytest.mark.parametrize("mode", list(MODES))
def test_every_argument_names_an_object_of_the_same_install(mode: str) -> None:
    objects = rendered(mode, fullnameOverride=NAME)
    known = names(objects) | MADE_BY_SERVE
    serve = parse_with_the_real_cli(container_args(objects, "edgewarden"))
    assert ("Service", serve["webhook_service"]) in known
    assert ("ValidatingWebhookConfiguration", serve["webhook_validating_name"]) in known
    assert ("MutatingWebhookConfiguration", serve["webhook_mutating_name"]) in known
    assert ("Secret", serve["cert_secret"]) in known
    assert ("Lease", serve["leader_election_lease"]) in known
    assert serve["webhook_service"] == NAME
    assert serve["cert_secret"] == f"{NAME}-tls"
    assert serve["leader_election_lease"] == f"{NAME}-leader"
    if serve["register_webhooks"] is False:  # static: the chart's own configurations
        assert ("ValidatingWebhookConfiguration", f"{NAME}-validating") in names(objects)
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for configuration in (o for o in objects if o["kind"] == kind):
            for hook in configuration["webhooks"]:
                assert hook["clientConfig"]["service"]["name"] == NAME
    spec = pod_spec(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert ("ConfigMap", volumes["policies"]["configMap"]["name"]) in known
    if "secret" in volumes["tls"]:
        assert ("Secret", volumes["tls"]["secret"]["secretName"]) in known | {
            ("Secret", f"{NAME}-serving-tls")}  # written by cert-manager
    if spec.get("initContainers"):
        bootstrap = parse_with_the_real_cli(container_args(objects, "certs"))
        assert ("Service", bootstrap["service"]) in known
        assert ("Secret", bootstrap["secret"]) in known
        assert bootstrap["validating_name"] == serve["webhook_validating_name"]
        assert bootstrap["mutating_name"] == serve["webhook_mutating_name"]
        assert bootstrap["secret"] == serve["cert_secret"]
    uninstall = uninstall_args(objects)
    assert uninstall is not None, "the uninstall hook is on by default"
    removal = parse_with_the_real_cli(uninstall)
    assert removal["service"] == serve["webhook_service"]
    assert removal["validating_name"] == serve["webhook_validating_name"]
    assert removal["mutating_name"] == serve["webhook_mutating_name"]
    assert removal["lease"] == serve["leader_election_lease"]
    assert removal["secret"] == serve["cert_secret"]


def test_rbac_grants_the_renamed_objects() -> None:
    objects = rendered("self-registration", fullnameOverride=NAME)
    granted = {name for o in objects if o["kind"] in ("Role", "ClusterRole")
               for rule in o.get("rules", []) for name in rule.get("resourceNames", [])}
    for name in (NAME, f"{NAME}-leader", f"{NAME}-tls", f"{NAME}-validating",
                 f"{NAME}-mutating"):
        assert name in granted, name
    assert not {n for n in granted if n.startswith("edgewarden-")} - {
        "edgewarden-loadbalancers"}, "the per-namespace quota keeps its name"
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for binding in bindings:
        assert binding["roleRef"]["name"].startswith(NAME)
        assert [s["name"] for s in binding["subjects"]] == [NAME]


def test_without_an_override_no_name_argument_is_added() -> None:
    args = container_args(render(), "edgewarden")
    for flag in ("--webhook-validating-name", "--cert-secret", "--leader-election-lease",
                 "--webhook-service"):
        assert flag not in args
    assert one(render(), "Service")["metadata"]["name"] == "edgewarden"


def test_name_override_is_the_base_name_and_the_name_label() -> None:
    objects = render({"nameOverride": "guard"}, namespace=NAMESPACE)
    assert one(objects, "Service")["metadata"]["name"] == "guard"
    assert pod_spec(objects)["serviceAccountName"] == "guard"
    selector = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/name"] == "guard"
    assert one(objects, "Service")["spec"]["selector"] == selector
    # fullnameOverride wins for names; the label stays nameOverride's.
    both = render({"nameOverride": "guard", "fullnameOverride": NAME}, namespace=NAMESPACE)
    assert one(both, "Service")["metadata"]["name"] == NAME
    assert one(both, "Deployment")["spec"]["selector"]["matchLabels"] == selector


def test_a_name_that_is_no_dns_label_is_refused() -> None:
    assert "fullnameOverride" in render_error({"fullnameOverride": "Acme_Guard"})
