"""PolicyExceptions closed by default, against a real kube-apiserver (see conftest: these
skip without tests/kube): the approver a kubectl user gets is that user, whatever the
manifest says; an exception outside the allowed namespaces exempts nothing; the CRD refuses
an exception without expiry or with a selector of only DoesNotExist; namespace admins read
exceptions and cannot write them."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.support import eventually
from webhook.policy.model.exception_rules import ExceptionRules
from webhook.registration.render import WebhookSettings, approval_webhook

from .conftest import Edgewarden

START = time.time()


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + seconds))


def exception_yaml(namespace: str, **spec: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "legacy-gateway", "namespace": namespace},
        "spec": {"policies": ["deny-nodeport-in-production"], "match": {"names": ["gateway"]},
                 "expiresAt": stamp(7 * 86400), "ticket": "PLAT-8", **spec}})


def register_approval(running: Edgewarden) -> str:
    """The approval webhook as webhookconfig renders it, pointed at this server's URL."""
    name = f"edgewarden-approval-{running.server.port}"
    ca = base64.b64encode(running.server.ca_file.read_bytes()).decode()
    hook = approval_webhook(WebhookSettings(url=f"https://127.0.0.1:{running.server.port}",
                                            ca_bundle_b64=ca))
    running.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [hook]}))
    return name


def nodeport_admitted(running: Edgewarden, namespace: str) -> bool:
    result = running.kubectl("-n", namespace, "create", "service", "nodeport", "gateway",
                             "--tcp=80:8080", check=False)
    if result.returncode == 0:
        running.kubectl("-n", namespace, "delete", "service", "gateway")
    return result.returncode == 0


def test_kubectl_gets_its_own_user_as_approver_and_only_allowed_namespaces_exempt(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str]
) -> None:
    allowed = test_namespace(environment="production")
    elsewhere = test_namespace(environment="production")
    running = edgewarden(now=START, exception_rules=ExceptionRules(
        enabled=True, namespaces=frozenset({allowed})))
    approval = register_approval(running)
    try:
        running.register(allowed)
        running.register(elsewhere)
        whoami = running.kubectl("auth", "whoami", "-o",
                                 "jsonpath={.status.userInfo.username}").stdout.strip()
        assert whoami
        running.kubectl("apply", "-f", "-", input=exception_yaml(
            allowed, approvedBy="the-cto@example.com"))
        stored = running.get("policyexception.edgewarden.dev", "legacy-gateway", "-n", allowed)
        assert stored["spec"]["approvedBy"] == whoami, "recorded from the user, not typed in"

        written = running.kubectl("apply", "-f", "-", input=exception_yaml(elsewhere))
        assert "will exempt nothing" in written.stderr, "kubectl prints why it is ignored"

        eventually(lambda: nodeport_admitted(running, allowed), timeout=30, interval=0.2,
                   what="the exception in the allowed namespace to admit")
        assert not nodeport_admitted(running, elsewhere)
        assert running.controllers.exceptions.left_out[f"{elsewhere}/legacy-gateway"][0] == \
            "Ignored"
        honoured = [e for e in running.controllers.registry if e.namespace == allowed]
        assert [e.approved_by for e in honoured] == [whoami], "the engine reads the record"
    finally:
        running.kubectl("delete", "mutatingwebhookconfiguration", approval, check=False)


def test_the_crd_refuses_no_expiry_and_a_selector_of_only_does_not_exist(
    plane: Any, test_namespace: Callable[..., str]
) -> None:
    namespace = test_namespace()
    forever = yaml.safe_load(exception_yaml(namespace))
    del forever["spec"]["expiresAt"]
    refused = plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(forever), check=False)
    assert refused.returncode != 0 and "expiresAt" in refused.stderr
    match_all = exception_yaml(namespace, match={"selector": {"matchExpressions": [
        {"key": "no-such-label", "operator": "DoesNotExist"}]}})
    refused = plane.kubectl("apply", "-f", "-", input=match_all, check=False)
    assert refused.returncode != 0
    assert "practically the whole namespace" in refused.stderr
    positive = exception_yaml(namespace, match={"selector": {"matchLabels": {"app": "legacy"}}})
    assert plane.kubectl("apply", "--dry-run=server", "-f", "-", input=positive).returncode == 0


def test_namespace_admins_read_exceptions_and_cannot_write_them(
    plane: Any, test_namespace: Callable[..., str]
) -> None:
    namespace = test_namespace()
    plane.kubectl("-n", namespace, "create", "rolebinding", "team-admin",
                  "--clusterrole=admin", "--user=team-lead")
    as_admin = plane.kubeconfig_for("team-lead")

    def can(verb: str) -> str:
        result = plane.kubectl("-n", namespace, "auth", "can-i", verb,
                               "policyexceptions.edgewarden.dev", kubeconfig=as_admin,
                               check=False)
        return result.stdout.strip()

    # The aggregation controller fills the admin role shortly after the ClusterRole exists.
    eventually(lambda: can("list") == "yes", timeout=30, interval=0.2,
               what="admin to aggregate the read-only role")
    assert can("get") == "yes" and can("watch") == "yes"
    for verb in ("create", "update", "patch", "delete"):
        assert can(verb) == "no", verb
