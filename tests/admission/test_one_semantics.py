"""One semantics on every path: nulls are absent, mutations follow their failurePolicy on
/mutate as in `check`, and every denial or evaluation error leaves one log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import jsonpatch
import pytest
from typer.testing import CliRunner

from webhook.certs.files import GeneratedCertificates
from webhook.cli.app import app

from .harness import (
    DEFAULT_POLICIES,
    FIXTURES,
    RunningServer,
    base_settings,
    load_review,
    make_review,
    start_server,
)
from .test_default_policies import _patched

SEMANTICS = FIXTURES / "semantics"
CLUSTERIP = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "nullish"},
    "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
}
NULL_ANNOTATIONS_LB = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "lb", "namespace": "nullish", "annotations": None},
    "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]},
}


@pytest.fixture(scope="module")
def nullish_server(certificates: GeneratedCertificates,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("nullish")
    settings = base_settings(certificates, tmp, cluster_state=SEMANTICS / "cluster.yaml")
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def failing_server(certificates: GeneratedCertificates,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("failing")
    settings = base_settings(certificates, tmp, policies=(SEMANTICS / "failing-mutations.yaml",),
                             cluster_state=SEMANTICS / "failing-cluster.yaml")
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


def test_a_null_namespace_annotations_map_does_not_deny_every_service(
    nullish_server: RunningServer,
) -> None:
    response = nullish_server.review("/validate", make_review("CREATE", "nullish", CLUSTERIP))
    assert response["allowed"] is True, response


def test_null_service_annotations_get_the_internal_annotation_on_every_path(
    nullish_server: RunningServer,
) -> None:
    review = make_review("CREATE", "nullish", NULL_ANNOTATIONS_LB)
    patched = _patched(nullish_server, review)
    assert patched["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"
    }
    review["request"]["object"] = patched
    assert nullish_server.review("/validate", review)["allowed"] is True
    # `check` over the same manifests decides the same.
    manifest = json.dumps([  # YAML is a superset of JSON; a List keeps it one document
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "nullish", "annotations": None}},
        NULL_ANNOTATIONS_LB,
    ])
    result = CliRunner().invoke(
        app, ["check", "-p", str(DEFAULT_POLICIES), "-o", "json", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": json.loads(manifest)}),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    (obj,) = json.loads(result.stdout)["results"]
    assert obj["allowed"] is True
    (patch,) = [f["patch"] for f in obj["findings"] if f["result"] == "patch"]
    assert jsonpatch.apply_patch(NULL_ANNOTATIONS_LB, patch) == patched


def test_a_mutation_that_fails_under_fail_denies_on_mutate(failing_server: RunningServer,
                                                           caplog: pytest.LogCaptureFixture,
                                                           ) -> None:
    caplog.set_level(logging.INFO, logger="edgewarden.decisions")
    review = make_review("CREATE", "closed", CLUSTERIP | {"metadata": {"name": "web"}})
    response = failing_server.review("/mutate", review)
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "label-fail-closed" in response["status"]["message"]
    assert "could not be evaluated" in response["status"]["message"]
    assert "patch" not in response
    lines = _decision_lines(caplog, review["request"]["uid"])
    assert [(line["event"], line["policy"], line["denied"]) for line in lines] == [
        ("evaluation_error", "label-fail-closed", True)
    ]


def test_a_mutation_that_fails_under_ignore_admits_and_logs(failing_server: RunningServer,
                                                            caplog: pytest.LogCaptureFixture,
                                                            ) -> None:
    caplog.set_level(logging.INFO, logger="edgewarden.decisions")
    review = make_review("CREATE", "open", CLUSTERIP | {"metadata": {"name": "web"}})
    response = failing_server.review("/mutate", review)
    assert response["allowed"] is True
    assert "patch" not in response
    (line,) = _decision_lines(caplog, review["request"]["uid"])
    assert line["event"] == "evaluation_error" and line["ignored"] is True
    assert line["policy"] == "label-fail-open"


def test_every_denial_leaves_one_structured_line_without_the_object(
    default_server: RunningServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edgewarden.decisions")
    review = load_review("nodeport-create-payments.json")
    review["request"]["name"] = "evil\nforged line"
    assert default_server.review("/validate", review)["allowed"] is False
    (line,) = _decision_lines(caplog, review["request"]["uid"])
    assert line["event"] == "denied"
    assert line["policy"] == "deny-nodeport-in-production"
    assert line["mode"] == "Enforce"
    assert line["kind"] == "Service" and line["namespace"] == "payments"
    assert line["name"] == "evil\nforged line"  # escaped in the log text, one line
    uid = review["request"]["uid"]
    text = next(r.getMessage() for r in caplog.records if uid in r.getMessage())
    assert "\n" not in text
    assert "ports" not in text and "selector" not in text  # nothing of the object


def _decision_lines(caplog: pytest.LogCaptureFixture, uid: str) -> list[dict]:
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "edgewarden.decisions"]
    return [line for line in lines if line["uid"] == uid]

