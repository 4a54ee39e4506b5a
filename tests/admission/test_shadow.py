"""Shadow mode over real TLS: ``serve --shadow DIR`` judges candidate policies beside the
enforced set on every request, counts and logs what they would do, and never changes an
answer (docs/shadow.md)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import eventually
from webhook.certs.files import GeneratedCertificates

from .harness import RunningServer, base_settings, load_object, make_review, start_server

WAIT = 15.0
REFUSE_NODEPORT = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: refuse-nodeport-everywhere
spec:
  mode: Enforce
  match:
    kinds: [Service]
    operations: [CREATE, UPDATE]
  validations:
    - expression: "!has(object.spec.type) || object.spec.type != 'NodePort'"
      message: "NodePort opens a port on every node: use an Ingress"
"""
LABEL_SERVICES = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: label-services-with-owner
spec:
  mode: Enforce
  match:
    kinds: [Service]
    operations: [CREATE]
  mutations:
    - setAnnotations: {example.com/owner: platform}
"""


def _reviews() -> list[dict[str, Any]]:
    """CREATEs the enforced defaults admit, deny, warn about and patch."""
    return [
        make_review("CREATE", "dev", load_object("services/nodeport.yaml")),
        make_review("CREATE", "payments", load_object("services/nodeport.yaml")),
        make_review("CREATE", "dev", load_object("services/clusterip.yaml")),
        make_review("CREATE", "team-a", load_object("services/loadbalancer.yaml")),
        make_review("CREATE", "dev", load_object("services/loadbalancer.yaml")),
        make_review("CREATE", "dev", load_object("services/external-ips.yaml")),
    ]


def _answers(server: RunningServer, reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [server.review(path, review) for review in reviews for path in ("/mutate", "/validate")]


def _shadow_folder(tmp_path: Path, *documents: str) -> Path:
    folder = tmp_path / "shadow"
    folder.mkdir()
    for index, document in enumerate(documents):
        (folder / f"candidate-{index}.yaml").write_text(document)
    return folder


@pytest.fixture
def shadow_server(tmp_path: Path, certificates: GeneratedCertificates) -> Any:
    folder = _shadow_folder(tmp_path, REFUSE_NODEPORT, LABEL_SERVICES)
    server = start_server(base_settings(certificates, tmp_path, shadow=(folder,)),
                          certificates.ca_file)
    yield server
    server.stop()


def test_the_answers_are_the_same_with_a_shadow_set_as_without(
    tmp_path: Path, certificates: GeneratedCertificates, shadow_server: RunningServer,
) -> None:
    (tmp_path / "plain").mkdir()
    plain = start_server(base_settings(certificates, tmp_path / "plain"), certificates.ca_file)
    try:
        reviews = _reviews()
        without, with_shadow = _answers(plain, reviews), _answers(shadow_server, reviews)
    finally:
        plain.stop()
    assert [a["allowed"] for a in without] == [a["allowed"] for a in with_shadow]
    assert any(not a["allowed"] for a in without), "the defaults deny some of these"
    assert any("patch" in a for a in without), "and patch some"
    assert without == with_shadow


def test_a_shadow_denial_is_admitted_counted_and_logged(
    shadow_server: RunningServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edgewarden.decisions")
    policy = "refuse-nodeport-everywhere"
    review = make_review("CREATE", "dev", load_object("services/nodeport.yaml"))

    answer = shadow_server.review("/validate", review)

    assert answer["allowed"] is True
    assert "warnings" not in answer and "status" not in answer
    assert shadow_server.metric("edgewarden_shadow_decisions_total",
                                policy=policy, result="deny") == 1
    assert shadow_server.metric("edgewarden_shadow_differences_total",
                                policy=policy, result="deny") == 1
    assert shadow_server.metric("edgewarden_shadow_policies_loaded") == 2
    lines = [orjson.loads(r.getMessage()) for r in caplog.records
             if r.name == "edgewarden.decisions" and "shadow_difference" in r.getMessage()]
    assert lines == [{
        "event": "shadow_difference", "endpoint": "validate", "policy": policy,
        "kind": "Service", "namespace": "dev", "name": "web",
        "uid": review["request"]["uid"], "operation": "CREATE", "shadow": "deny",
        "enforced": "allow", "message": "NodePort opens a port on every node: use an Ingress",
    }]


def test_a_candidate_that_allows_what_is_allowed_is_no_difference(
    shadow_server: RunningServer,
) -> None:
    review = make_review("CREATE", "dev", load_object("services/clusterip.yaml"))
    assert shadow_server.review("/validate", review)["allowed"] is True
    assert shadow_server.metric("edgewarden_shadow_decisions_total",
                                policy="refuse-nodeport-everywhere", result="allow") == 1
    assert shadow_server.metric("edgewarden_shadow_differences_total",
                                policy="refuse-nodeport-everywhere", result="allow") == 0


def test_a_revision_on_trial_differs_only_where_it_decides_otherwise(
    tmp_path: Path, certificates: GeneratedCertificates,
) -> None:
    # The shipped deny-nodeport-in-production, widened to every namespace, under its name.
    revision = REFUSE_NODEPORT.replace("refuse-nodeport-everywhere", "deny-nodeport-in-production")
    folder = _shadow_folder(tmp_path, revision)
    server = start_server(base_settings(certificates, tmp_path, shadow=(folder,)),
                          certificates.ca_file)
    name = "deny-nodeport-in-production"
    try:
        for namespace in ("payments", "dev"):
            server.review("/validate", make_review("CREATE", namespace,
                                                   load_object("services/nodeport.yaml")))
        assert server.metric("edgewarden_shadow_decisions_total", policy=name,
                             result="deny") == 2
        # payments: both deny, no difference; dev: only the revision would.
        assert server.metric("edgewarden_shadow_differences_total", policy=name,
                             result="deny") == 1
    finally:
        server.stop()


def test_a_shadow_patch_is_counted_and_never_sent(shadow_server: RunningServer) -> None:
    review = make_review("CREATE", "dev", load_object("services/clusterip.yaml"))
    answer = shadow_server.review("/mutate", review)
    assert answer["allowed"] is True and "patch" not in answer
    assert shadow_server.metric("edgewarden_shadow_decisions_total",
                                policy="label-services-with-owner", result="patch") == 1
    assert shadow_server.metric("edgewarden_shadow_differences_total",
                                policy="label-services-with-owner", result="patch") == 1


def test_a_policy_file_marked_shadow_is_judged_and_not_enforced(
    tmp_path: Path, certificates: GeneratedCertificates,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "refuse.yaml").write_text(REFUSE_NODEPORT.replace(
        "spec:\n", "spec:\n  shadow: true\n", 1))
    (policies / "label.yaml").write_text(LABEL_SERVICES)
    server = start_server(base_settings(certificates, tmp_path, policies=(policies,)),
                          certificates.ca_file)
    try:
        review = make_review("CREATE", "dev", load_object("services/nodeport.yaml"))
        assert server.review("/validate", review)["allowed"] is True
        assert server.metric("edgewarden_policies_loaded") == 1
        assert server.metric("edgewarden_shadow_decisions_total",
                             policy="refuse-nodeport-everywhere", result="deny") == 1
    finally:
        server.stop()


def test_promotion_is_moving_the_file_and_a_broken_candidate_changes_nothing(
    tmp_path: Path, certificates: GeneratedCertificates,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "label.yaml").write_text(LABEL_SERVICES)
    shadow = _shadow_folder(tmp_path, REFUSE_NODEPORT)
    server = start_server(
        base_settings(certificates, tmp_path, policies=(policies,), shadow=(shadow,)),
        certificates.ca_file)

    def nodeport_allowed() -> bool:
        review = make_review("CREATE", "dev", load_object("services/nodeport.yaml"))
        return bool(server.review("/validate", review)["allowed"])

    try:
        assert nodeport_allowed()
        (shadow / "broken.yaml").write_text("apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\n")
        eventually(lambda: server.metric("edgewarden_policy_load_errors_total") >= 1,
                   timeout=WAIT, interval=0.05, what="the broken candidate to be refused")
        assert nodeport_allowed(), "the enforced set is untouched"
        assert server.metric("edgewarden_shadow_policies_loaded") == 1, "the old shadow stays"
        (shadow / "broken.yaml").unlink()

        shutil.move(shadow / "candidate-0.yaml", policies / "refuse.yaml")
        eventually(lambda: not nodeport_allowed(), timeout=WAIT, interval=0.05,
                   what="the promoted policy to enforce")
        assert server.metric("edgewarden_shadow_policies_loaded") == 0
        assert server.metric("edgewarden_policies_loaded") == 2
    finally:
        server.stop()
