"""Every shipped default policy, judged by the real server over TLS."""

from __future__ import annotations

from pathlib import Path

import jsonpatch
import pytest

from tests.support import patch_of

from .harness import RunningServer, load_object, load_review, make_review


def _validate(server: RunningServer, namespace: str, fixture: str) -> dict:
    """The /validate response to a CREATE of the fixture object in ``namespace``."""
    return server.review("/validate", make_review("CREATE", namespace, load_object(fixture)))


def _patched(server: RunningServer, review: dict) -> dict:
    response = server.review("/mutate", review)
    assert response["allowed"] is True
    return jsonpatch.apply_patch(review["request"]["object"], patch_of(response))


def test_nodeport_in_production_is_denied_with_403_naming_the_policy(
    default_server: RunningServer,
) -> None:
    response = default_server.review("/validate", load_review("nodeport-create-payments.json"))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "deny-nodeport-in-production" in response["status"]["message"]
    assert "patch" not in response


def test_nodeport_in_development_is_allowed(default_server: RunningServer) -> None:
    assert _validate(default_server, "dev", "services/nodeport.yaml")["allowed"] is True


def test_mutate_never_denies_a_nodeport_in_production(default_server: RunningServer) -> None:
    response = default_server.review("/mutate", load_review("nodeport-create-payments.json"))
    assert response["allowed"] is True
    assert "status" not in response


@pytest.mark.parametrize(
    ("namespace", "fixture", "policy"),
    [
        pytest.param("dev", "services/external-ips.yaml", "deny-external-ips",
                     id="external-ips-everywhere"),
        pytest.param("team-a", "services/loadbalancer.yaml", "limit-loadbalancers-per-namespace",
                     id="third-loadbalancer-in-a-namespace"),
        pytest.param("payments", "ingresses/no-tls.yaml", "require-ingress-tls-in-production",
                     id="ingress-without-tls-in-production"),
    ],
)
def test_is_denied_naming_the_policy(
    default_server: RunningServer, namespace: str, fixture: str, policy: str
) -> None:
    response = _validate(default_server, namespace, fixture)
    assert response["allowed"] is False
    assert policy in response["status"]["message"]


def test_update_of_an_existing_loadbalancer_over_the_cap_is_allowed(
    default_server: RunningServer,
) -> None:
    old = load_object("services/loadbalancer.yaml")
    old["metadata"]["name"] = "lb-one"
    new = {**old, "metadata": {**old["metadata"], "labels": {"app": "api", "tier": "edge"}}}
    review = make_review("UPDATE", "team-a", new, old)
    assert default_server.review("/validate", review)["allowed"] is True


def test_loadbalancer_without_annotations_map_gets_internal_annotation(
    default_server: RunningServer,
) -> None:
    review = make_review("CREATE", "dev", load_object("services/loadbalancer.yaml"))
    patched = _patched(default_server, review)
    annotations = patched["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] == "true"


def test_patch_into_existing_annotations_escapes_slash(default_server: RunningServer) -> None:
    review = make_review("CREATE", "dev", load_object("services/loadbalancer-annotated.yaml"))
    response = default_server.review("/mutate", review)
    assert response["patchType"] == "JSONPatch"
    patch = patch_of(response)
    paths = [op["path"] for op in patch]
    assert "/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-internal" in paths
    patched = jsonpatch.apply_patch(review["request"]["object"], patch)
    assert patched["metadata"]["annotations"]["owner"] == "platform"


def test_public_namespace_loadbalancer_is_not_patched(default_server: RunningServer) -> None:
    review = make_review("CREATE", "public", load_object("services/loadbalancer.yaml"))
    response = default_server.review("/mutate", review)
    assert "patch" not in response


def test_validate_never_returns_a_patch(default_server: RunningServer) -> None:
    response = _validate(default_server, "dev", "services/loadbalancer.yaml")
    assert "patch" not in response and "patchType" not in response


def test_ingress_with_tls_in_production_is_allowed(default_server: RunningServer) -> None:
    response = _validate(default_server, "payments", "ingresses/tls.yaml")
    assert response["allowed"] is True
    assert "warnings" not in response


def test_ingress_without_class_is_allowed_with_a_warning(default_server: RunningServer) -> None:
    response = _validate(default_server, "payments", "ingresses/no-class.yaml")
    assert response["allowed"] is True
    assert any("ingressClassName" in w for w in response["warnings"])


def test_delete_is_allowed(default_server: RunningServer) -> None:
    review = make_review("DELETE", "payments", None, load_object("services/nodeport.yaml"))
    assert default_server.review("/validate", review)["allowed"] is True


def test_metrics_count_requests_and_violations(default_server: RunningServer) -> None:
    default_server.review("/validate", load_review("nodeport-create-payments.json"))
    assert default_server.metric("edgewarden_requests_total",
                                 endpoint="validate", result="denied") >= 1
    assert default_server.metric("edgewarden_violations_total",
                                 policy="deny-nodeport-in-production", mode="Enforce") >= 1
    shipped = [p for p in (Path(__file__).parents[2] / "policies").glob("*.yaml")
               if not p.name.endswith(".test.yaml")]
    assert default_server.metric("edgewarden_policies_loaded") == len(shipped)
    assert default_server.metric("edgewarden_decision_duration_seconds_count",
                                 endpoint="validate") >= 1
    assert default_server.metric("edgewarden_serving_certificate_expiry_timestamp_seconds") > 0


def test_health_and_readiness(default_server: RunningServer) -> None:
    assert default_server.get("/healthz").json() == {"status": "ok"}
    ready = default_server.get("/readyz").json()
    assert ready["status"] == "ready"
    assert "deny-nodeport-in-production" in ready["policies"]["serving"]
