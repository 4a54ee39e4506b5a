"""The internal-load-balancer mutation as the API server applies and stores it, and the
mutating webhook's reinvocation (reinvocationPolicy IfNeeded) when a later mutating
webhook changes the Service after it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import INTERNAL_LB, Cluster, NamespaceFactory, eventually, service
from .installation import EDGEWARDEN
from .kubeplane import ControlPlane, ManagedProcess, free_port, listening, until
from .local import LocalInstallation

OWNER = "example.com/owner"
SECOND = "zz-e2e-second-mutating"  # sorts after edgewarden-mutating: it runs after ours
SECOND_POLICY = {
    "apiVersion": "edgewarden.dev/v1alpha1",
    "kind": "Policy",
    "metadata": {"name": "owner-annotation"},
    "spec": {
        "mode": "Enforce",
        "failurePolicy": "Fail",
        "match": {"kinds": ["Service"], "operations": ["CREATE"],
                  "objectSelector": {"matchLabels": {"e2e/second-webhook": "on"}}},
        "mutations": [{"setAnnotations": {OWNER: "platform"}}],
    },
}


def test_the_internal_annotation_is_in_the_stored_service(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    cluster.core.create_namespaced_service(ns, service("api", "LoadBalancer"))
    stored = cluster.core.read_namespaced_service("api", ns)
    assert stored.metadata.annotations[INTERNAL_LB] == "true"


def test_an_explicit_scheme_is_stored_as_its_owner_wrote_it(
    cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "payments"})
    cluster.core.create_namespaced_service(
        ns, service("edge", "LoadBalancer", annotations={INTERNAL_LB: "false"}))
    stored = cluster.core.read_namespaced_service("edge", ns)
    assert stored.metadata.annotations[INTERNAL_LB] == "false"


@pytest.fixture
def second_mutating_webhook(local: LocalInstallation, tmp_path: Path) -> Iterator[None]:
    """Another mutating webhook, after ours: an edgewarden server with one policy that
    annotates Services labelled e2e/second-webhook=on, registered as SECOND."""
    policy = tmp_path / "owner.yaml"
    policy.write_text(yaml.safe_dump(SECOND_POLICY))
    (tmp_path / "cluster.yaml").write_text("")  # it reads no namespace
    port = free_port()
    server = ManagedProcess("second webhook", [
        EDGEWARDEN, "serve", "--policies", str(policy), "--host", "127.0.0.1",
        "--port", str(port), "--tls-cert", str(local.tls_dir / "tls.crt"),
        "--tls-key", str(local.tls_dir / "tls.key"),
        "--cluster-state", str(tmp_path / "cluster.yaml")], tmp_path / "second.log")
    server.start()
    rendered = local.edgewarden(
        "webhook-config", "--policies", str(policy), "--url", f"https://127.0.0.1:{port}",
        "--ca-bundle", str(local.tls_dir / "ca.crt"), as_service_account=False).stdout
    [configuration] = list(yaml.safe_load_all(rendered))
    configuration["metadata"]["name"] = SECOND
    configuration["webhooks"][0]["name"] = "second.e2e.edgewarden.dev"
    try:
        until(lambda: listening(port), "the second webhook to listen", 30,
              check=server.check_alive)
        local.kubectl("apply", "-f", "-", input=yaml.safe_dump(configuration))
        yield
    finally:
        local.kubectl("delete", "mutatingwebhookconfiguration", SECOND, "--ignore-not-found")
        server.stop()


def mutation_rounds(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    """The API server's record of which mutating webhooks ran on the CREATE, and whether
    each changed the object: {"round_0_index_0": {...}, ...}, once the event is written."""
    prefix = "mutation.webhook.admission.k8s.io/"
    for event in plane.audit_events():
        ref = event.get("objectRef") or {}
        if (event.get("verb") == "create" and ref.get("resource") == "services"
                and ref.get("namespace") == namespace and ref.get("name") == name
                and event.get("stage") == "ResponseComplete"):
            return {key.removeprefix(prefix): json.loads(value)
                    for key, value in (event.get("annotations") or {}).items()
                    if key.startswith(prefix)}
    return None


def test_reinvocation_after_a_later_mutating_webhook_changes_nothing_more(
    second_mutating_webhook: None, control_plane: ControlPlane, cluster: Cluster,
    namespace: NamespaceFactory,
) -> None:
    ns = namespace({"team": "payments"})
    body = service("api", "LoadBalancer")
    body["metadata"]["labels"]["e2e/second-webhook"] = "on"

    # The API server learns of the new configuration through its own watch: retry on
    # throw-away names until the second webhook is called, then create the real one.
    def second_webhook_called() -> bool | None:
        probe = service("probe", "LoadBalancer")
        probe["metadata"]["labels"]["e2e/second-webhook"] = "on"
        judged = cluster.core.create_namespaced_service(ns, probe, dry_run="All")
        return True if OWNER in (judged.metadata.annotations or {}) else None

    eventually(second_webhook_called, "the API server calling the second webhook")
    created = cluster.core.create_namespaced_service(ns, body)

    annotations = created.metadata.annotations
    assert annotations[INTERNAL_LB] == "true"
    assert annotations[OWNER] == "platform"
    rounds = eventually(lambda: mutation_rounds(control_plane, ns, "api"),
                        "the audit event of the create")
    ours = {key: value for key, value in rounds.items()
            if value["configuration"] == "edgewarden-mutating"}
    assert ours == {
        "round_0_index_0": {"configuration": "edgewarden-mutating",
                            "webhook": "mutate.edgewarden.dev", "mutated": True},
        # called again because the second webhook changed the Service after it, and the
        # annotation is already there: no second patch, nothing overwritten.
        "round_1_index_0": {"configuration": "edgewarden-mutating",
                            "webhook": "mutate.edgewarden.dev", "mutated": False},
    }, rounds
