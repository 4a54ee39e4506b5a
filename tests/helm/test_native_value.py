"""The chart's ``native`` value (hybrid mode, issue 22) and ``webhook.clientCA`` (issue 19).

``native.enabled`` renders, for the enabled shipped policies, exactly what
``edgewarden export`` writes (computed here from policies/, so a hand edit of the chart's
generated files fails), with bindings that skip the namespaces the webhooks skip, and runs
serve with ``--except-exported``; the real API server accepts what it renders."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.checks import parse_with_the_real_cli
from tests.kube.fixtures import kube_control_plane  # noqa: F401  (registers the fixture)
from webhook.native.export import export
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import INTERNAL_LB_FLAVOURS

from .chart import CUSTOM_POLICY, NAMESPACE, REPO, render

NATIVE_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding")
POLICY_LABEL = "edgewarden.dev/policy"


def native(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in NATIVE_KINDS]


def serve_params(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "edgewarden"]
    return parse_with_the_real_cli(container["args"])


def exported(flavour: str | None = None) -> list[dict[str, Any]]:
    """What `edgewarden export` writes for the shipped policies."""
    files = sorted(p for p in (REPO / "policies").glob("*.yaml")
                   if not p.name.endswith(".test.yaml"))
    return export(load_policies(*files, internal_lb_flavour=flavour)).objects


def without_chart_changes(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as exported: the chart's labels and the bindings' namespaces taken off."""
    obj = yaml.safe_load(yaml.safe_dump(obj))
    labels = obj["metadata"]["labels"]
    for key in [k for k in labels if k.startswith(("app.kubernetes.io/", "helm.sh/"))]:
        del labels[key]
    labels["app.kubernetes.io/managed-by"] = "edgewarden"
    obj["spec"].pop("matchResources", None) if obj["kind"].endswith("Binding") else None
    return obj


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def test_off_by_default_nothing_native_and_serve_judges_everything() -> None:
    objects = render()
    assert native(objects) == []
    params = serve_params(objects)
    assert params["except_exported"] is False
    assert params["client_ca"] is None


def test_on_it_renders_the_export_of_every_shipped_policy_and_serve_leaves_them_out() -> None:
    objects = render({"native": {"enabled": True}})
    rendered = native(objects)
    want = exported()
    assert want, "the shipped policies export something"
    assert {key(o) for o in rendered} == {key(o) for o in want}
    by_key = {key(o): o for o in want}
    for obj in rendered:
        assert without_chart_changes(obj) == by_key[key(obj)], key(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert "namespace" not in obj["metadata"], "cluster-scoped"
    bindings = [o for o in rendered if o["kind"].endswith("Binding")]
    assert bindings
    for binding in bindings:
        assert binding["spec"]["matchResources"] == {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
             "values": ["kube-system", NAMESPACE]}]}}
    params = serve_params(objects)
    assert params["except_exported"] is True
    assert not params["keep_on_webhook"]


def test_only_enabled_policies_and_a_custom_policy_stays_on_the_webhook() -> None:
    objects = render({
        "native": {"enabled": True},
        "webhooks": {"excludeNamespaces": ["platform-system"]},
        "policies": {"enabled": ["deny-external-ips", "internal-loadbalancer",
                                 "unique-ingress-hosts"],
                     "custom": {"deny-public-ingress-class.yaml": CUSTOM_POLICY}},
    })
    rendered = native(objects)
    assert {o["metadata"]["labels"][POLICY_LABEL] for o in rendered} == {
        "deny-external-ips", "internal-loadbalancer"}, "unique-ingress-hosts is not native"
    for binding in (o for o in rendered if o["kind"].endswith("Binding")):
        [skip] = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert skip["values"] == ["kube-system", NAMESPACE, "platform-system"]
    params = serve_params(objects)
    assert params["except_exported"] is True
    # The chart cannot export a custom policy: the webhook keeps judging it.
    assert list(params["keep_on_webhook"]) == ["deny-public-ingress-class"]


def test_a_custom_file_replacing_a_shipped_one_drops_its_native_objects() -> None:
    replaced = (REPO / "policies" / "deny-external-ips.yaml").read_text()
    rendered = native(render({"native": {"enabled": True},
                              "policies": {"custom": {"deny-external-ips.yaml": replaced}}}))
    names = {o["metadata"]["labels"][POLICY_LABEL] for o in rendered}
    assert names and "deny-external-ips" not in names


def test_keep_leaves_a_policy_on_the_webhook() -> None:
    objects = render({"native": {"enabled": True, "keep": ["deny-external-ips"]}})
    names = {o["metadata"]["labels"][POLICY_LABEL] for o in native(objects)}
    assert names and "deny-external-ips" not in names
    assert list(serve_params(objects)["keep_on_webhook"]) == ["deny-external-ips"]


@pytest.mark.parametrize("flavour", sorted(INTERNAL_LB_FLAVOURS))
def test_the_mutation_adds_the_annotation_of_the_flavour(flavour: str) -> None:
    rendered = native(render({"native": {"enabled": True},
                              "internalLoadBalancerFlavour": flavour}))
    [mutating] = [o for o in rendered if o["kind"] == "MutatingAdmissionPolicy"]
    [want] = [o for o in exported(flavour) if o["kind"] == "MutatingAdmissionPolicy"]
    assert mutating["spec"] == want["spec"]
    annotation, _ = INTERNAL_LB_FLAVOURS[flavour]
    assert annotation in mutating["spec"]["mutations"][0]["jsonPatch"]["expression"]


def test_audit_only_audits_natively_and_keeps_mutations_on_the_webhook() -> None:
    objects = render({"native": {"enabled": True}, "auditOnly": True})
    rendered = native(objects)
    assert not [o for o in rendered if o["kind"].startswith("Mutating")]
    bindings = [o for o in rendered if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert bindings
    for binding in bindings:
        assert "Deny" not in binding["spec"]["validationActions"]
    params = serve_params(objects)
    assert params["dry_run"] is True and params["except_exported"] is True
    assert list(params["keep_on_webhook"]) == ["internal-loadbalancer"]


def test_the_schema_refuses_an_unknown_native_value() -> None:
    from .chart import render_error

    assert "additional properties" in render_error({"native": {"enable": True}}).lower()


def test_the_client_ca_secret_is_mounted_and_passed() -> None:
    objects = render({"webhook": {"clientCA": {"secretName": "apiserver-ca", "key": "ca.pem"}}})
    params = serve_params(objects)
    assert str(params["client_ca"]) == "/etc/edgewarden/client-ca/ca.crt"
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "client-ca"]
    assert volume["secret"] == {"secretName": "apiserver-ca", "defaultMode": 0o440,
                                "items": [{"key": "ca.pem", "path": "ca.crt"}]}
    [container] = [c for c in pod["containers"] if c["name"] == "edgewarden"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "client-ca"]
    assert mount == {"name": "client-ca", "mountPath": "/etc/edgewarden/client-ca",
                     "readOnly": True}


def test_the_schema_refuses_a_bad_client_ca_secret_name() -> None:
    from .chart import render_error

    assert "secretName" in render_error({"webhook": {"clientCA": {"secretName": "Not_A_Name"}}})


def test_the_api_server_accepts_what_native_enabled_renders(
        kube_control_plane: Any) -> None:  # noqa: F811
    rendered = native(render({"native": {"enabled": True}}))
    assert len(rendered) == len(exported())
    result = kube_control_plane.kubectl("apply", "--dry-run=server", "-f", "-",
                                        input=yaml.safe_dump_all(rendered))
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(rendered), result.stdout
    assert all("(server dry run)" in line for line in lines), result.stdout
