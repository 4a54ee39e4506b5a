"""A renamed install (the chart's fullnameOverride): serve registers, and uninstall removes,
the objects by the names it is given, and never touches the default-named ones of another
install. Against the API double."""

from __future__ import annotations

from pathlib import Path

from tests.admission.harness import base_settings
from tests.kubeapi import LEASES, MUTATING_WEBHOOKS, SECRETS, VALIDATING_WEBHOOKS, KubeApi
from tests.support import api_client
from webhook.certs.files import generate_certificates
from webhook.cli.registration_options import registration_settings
from webhook.cluster.webhook_configurations import RestApi
from webhook.controllers.uninstall import uninstall
from webhook.policy.model.decision import FailurePolicy
from webhook.serve.build import build_runtime

from .test_registration import DEFAULTS, OWNED, Leading, registration

NAME = "acme-guard"


def test_a_renamed_install_is_registered_and_uninstalled_by_its_names(
        kube_api: KubeApi, kubeconfig: Path, tmp_path: Path) -> None:
    certificates = generate_certificates(tmp_path / "tls", service=NAME, namespace="guard")
    webhooks = registration_settings(
        True, service=NAME, url=None, failure_policy=FailurePolicy.FAIL, excluded=None,
        ca_bundle=None, timeout_seconds=5, dry_run=False, namespace="guard",
        names=(f"{NAME}-validating", f"{NAME}-mutating"))
    runtime = build_runtime(base_settings(
        certificates, tmp_path, policies=(DEFAULTS,), registration=webhooks,
        leader_election_lease=f"{NAME}-leader", cert_secret=f"{NAME}-tls"))
    kube_api.create({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": NAME, "namespace": "guard"},
                     "spec": {"ports": [{"port": 443}]}})
    # Another install's objects under the default names, with edgewarden's label.
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        short = "validating" if kind.startswith("Validating") else "mutating"
        kube_api.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                         "metadata": {"name": f"edgewarden-{short}", "labels": OWNED},
                         "webhooks": []})
    for namespace in ("guard", "edgewarden"):
        prefix = NAME if namespace == "guard" else "edgewarden"
        kube_api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": f"{prefix}-leader", "namespace": namespace},
                         "spec": {}})
        kube_api.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": f"{prefix}-tls", "namespace": namespace,
                                      "labels": OWNED}, "data": {}})
    with api_client(kubeconfig) as client:
        rest = RestApi(client)
        result = registration(runtime, rest, Leading()).sync_once()
        assert result.written == [f"{NAME}-validating", f"{NAME}-mutating"]
        for plural, name in ((VALIDATING_WEBHOOKS.plural, f"{NAME}-validating"),
                             (MUTATING_WEBHOOKS.plural, f"{NAME}-mutating")):
            hooks = kube_api.get(plural, name)["webhooks"]
            assert hooks, name
            for hook in hooks:
                assert hook["clientConfig"]["service"]["name"] == NAME
                assert hook["clientConfig"]["service"]["namespace"] == "guard"
        removed = uninstall(rest, namespace="guard", service=NAME, settle=0.0,
                            names={"validating": f"{NAME}-validating",
                                   "mutating": f"{NAME}-mutating"},
                            lease_name=f"{NAME}-leader", secret_name=f"{NAME}-tls")
    assert removed.service_marked
    assert sorted(removed.objects) == sorted([
        f"ValidatingWebhookConfiguration {NAME}-validating",
        f"MutatingWebhookConfiguration {NAME}-mutating",
        f"Lease guard/{NAME}-leader",
        f"Secret guard/{NAME}-tls",
    ])
    # The other install's objects are all still there.
    assert [c["metadata"]["name"] for c in kube_api.objects(VALIDATING_WEBHOOKS.plural)] == [
        "edgewarden-validating"]
    assert [c["metadata"]["name"] for c in kube_api.objects(MUTATING_WEBHOOKS.plural)] == [
        "edgewarden-mutating"]
    assert [lease["metadata"]["name"] for lease in kube_api.objects(LEASES.plural)] == [
        "edgewarden-leader"]
    assert kube_api.exists(SECRETS.plural, "edgewarden-tls", namespace="edgewarden")
    assert not kube_api.exists(SECRETS.plural, f"{NAME}-tls", namespace="guard")
