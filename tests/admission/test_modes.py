"""Enforce, Warn and Audit per policy, and the server-wide --dry-run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from webhook.certs.files import GeneratedCertificates

from .harness import (
    DEFAULT_POLICIES,
    FIXTURES,
    RunningServer,
    base_settings,
    load_object,
    load_review,
    make_review,
    start_server,
)


@pytest.fixture(scope="module")
def modes_server(certificates: GeneratedCertificates,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("modes")
    settings = base_settings(certificates, tmp, policies=(FIXTURES / "policies",))
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def dry_run_server(certificates: GeneratedCertificates,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("dry-run")
    settings = base_settings(certificates, tmp, policies=(DEFAULT_POLICIES,), dry_run=True)
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


def _lines_for(server: RunningServer, uid: str) -> list[dict]:
    return [line for line in server.audit_lines() if line["uid"] == uid]


def test_warn_mode_allows_with_a_warning_and_writes_no_audit_line(
    modes_server: RunningServer,
) -> None:
    obj = load_object("services/nodeport.yaml")
    obj["metadata"]["labels"]["team"] = "web"
    review = make_review("CREATE", "dev", obj)
    response = modes_server.review("/validate", review)
    assert response["allowed"] is True
    assert any("NodePort opens a port" in w for w in response["warnings"])
    assert _lines_for(modes_server, review["request"]["uid"]) == []


def test_audit_mode_allows_records_a_line_and_an_audit_annotation(
    modes_server: RunningServer,
) -> None:
    review = make_review("CREATE", "dev", load_object("services/external-ips.yaml"))
    response = modes_server.review("/validate", review)
    assert response["allowed"] is True
    assert "warnings" not in response
    annotation = response["auditAnnotations"]["audit-services-without-team"]
    assert "team label" in annotation
    [line] = _lines_for(modes_server, review["request"]["uid"])
    assert line["policy"] == "audit-services-without-team"
    assert line["mode"] == "Audit"
    assert line["action"] == "recorded"
    assert line["user"] == "jane@example.com"
    assert (line["operation"], line["kind"], line["namespace"], line["name"]) == (
        "CREATE", "Service", "dev", "legacy-gateway")
    assert "time" in line and "message" in line


def test_audit_line_never_carries_the_object(modes_server: RunningServer) -> None:
    obj = load_object("services/external-ips.yaml")
    obj["metadata"]["annotations"] = {"secret-token": "s3cr3t-value-must-not-be-logged"}
    review = make_review("CREATE", "dev", obj)
    modes_server.review("/validate", review)
    assert modes_server.audit_log is not None
    assert b"s3cr3t-value" not in modes_server.audit_log.read_bytes()


def test_dry_run_allows_what_enforce_would_deny_and_records_would_deny(
    dry_run_server: RunningServer,
) -> None:
    review = load_review("nodeport-create-payments.json")
    response = dry_run_server.review("/validate", review)
    assert response["allowed"] is True
    assert "deny-nodeport-in-production" in response["auditAnnotations"]
    [line] = _lines_for(dry_run_server, review["request"]["uid"])
    assert line["action"] == "would deny"
    assert line["mode"] == "Enforce"
    assert line["policy"] == "deny-nodeport-in-production"


def test_dry_run_mutate_patches_nothing_and_records_would_patch(
    dry_run_server: RunningServer,
) -> None:
    review = make_review("CREATE", "dev", load_object("services/loadbalancer.yaml"))
    response = dry_run_server.review("/mutate", review)
    assert response["allowed"] is True
    assert "patch" not in response and "patchType" not in response
    [line] = _lines_for(dry_run_server, review["request"]["uid"])
    assert line["action"] == "would patch"
    assert line["policy"] == "internal-loadbalancer"
    assert "/metadata/annotations" in line["message"]


def test_dry_run_does_not_deny_the_limit(dry_run_server: RunningServer) -> None:
    review = make_review("CREATE", "team-a", load_object("services/loadbalancer.yaml"))
    assert dry_run_server.review("/validate", review)["allowed"] is True


def test_audit_log_goes_to_the_file_given(tmp_path: Path,
                                          certificates: GeneratedCertificates) -> None:
    assert FIXTURES.exists()
    settings = base_settings(certificates, tmp_path, dry_run=True,
                             audit_log=tmp_path / "elsewhere.jsonl")
    server = start_server(settings, certificates.ca_file)
    try:
        server.review("/validate", load_review("nodeport-create-payments.json"))
    finally:
        server.stop()
    assert (tmp_path / "elsewhere.jsonl").read_bytes().count(b"\n") == 1


def test_audit_mode_mutation_is_reported_not_patched(modes_server: RunningServer) -> None:
    review = make_review("CREATE", "dev", load_object("services/loadbalancer.yaml"))
    response = modes_server.review("/mutate", review)
    assert "patch" not in response
    [line] = _lines_for(modes_server, review["request"]["uid"])
    assert (line["policy"], line["action"], line["mode"]) == (
        "audit-owner-annotation", "would patch", "Audit")
