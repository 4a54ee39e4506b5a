"""POST /mutate-policyexception over real TLS: the approver of a PolicyException is the user
the API server authenticated, whatever the client wrote; a write that keeps the terms keeps
the approval; a write without a user is refused; kubectl is warned when this server would
ignore the exception."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import jsonpatch
import pytest

from tests.admission.harness import RunningServer, base_settings, start_server
from webhook.certs.files import GeneratedCertificates
from webhook.policy.model.exception_rules import ExceptionRules

PATH = "/mutate-policyexception"


def days_from_now(days: int) -> str:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    return at.isoformat().replace("+00:00", "Z")


EXCEPTION: dict[str, Any] = {
    "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
    "metadata": {"name": "legacy-gateway", "namespace": "policy-exceptions"},
    "spec": {"policies": ["deny-nodeport-in-production"], "match": {"names": ["gateway"]},
             "expiresAt": days_from_now(30), "ticket": "PLAT-42"},
}
_uids = iter(range(1, 10**6))


@pytest.fixture(scope="module")
def server(certificates: GeneratedCertificates,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = base_settings(certificates, tmp_path_factory.mktemp("approval"),
                             exception_rules=ExceptionRules(
                                 enabled=True, namespaces=frozenset({"policy-exceptions"})))
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


def review(operation: str, obj: dict[str, Any] | None, old: dict[str, Any] | None = None, *,
           username: str = "alice@example.com") -> dict[str, Any]:
    """A PolicyException write, as the API server sends it to a mutating webhook."""
    subject = obj if obj is not None else old
    assert subject is not None
    gvk = {"group": "edgewarden.dev", "version": "v1alpha1", "kind": "PolicyException"}
    gvr = {"group": "edgewarden.dev", "version": "v1alpha1", "resource": "policyexceptions"}
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": f"00000000-0000-4000-9000-{next(_uids):012d}",
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": subject["metadata"]["name"], "namespace": subject["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": username, "groups": ["platform", "system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": False,
        },
    }


def applied(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it after the patch."""
    assert response["allowed"], response
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    patched: dict[str, Any] = jsonpatch.apply_patch(
        copy.deepcopy(obj), json.loads(base64.b64decode(response["patch"])))
    return patched


def exception(**spec: Any) -> dict[str, Any]:
    written = copy.deepcopy(EXCEPTION)
    written["spec"].update(spec)
    return written


def test_the_creator_is_recorded_as_the_approver(server: RunningServer) -> None:
    stored = applied(EXCEPTION, server.review(PATH, review("CREATE", EXCEPTION)))
    assert stored["spec"]["approvedBy"] == "alice@example.com"
    assert {k: v for k, v in stored["spec"].items() if k != "approvedBy"} == EXCEPTION["spec"]


def test_what_the_client_wrote_as_approver_is_overwritten(server: RunningServer) -> None:
    forged = exception(approvedBy="the-cto@example.com")
    response = server.review(PATH, review("CREATE", forged, username="mallory@example.com"))
    assert applied(forged, response)["spec"]["approvedBy"] == "mallory@example.com"


def test_an_update_of_the_terms_is_approved_by_whoever_updates(server: RunningServer) -> None:
    old = exception(approvedBy="alice@example.com")
    extended = exception(approvedBy="alice@example.com", expiresAt=days_from_now(60))
    response = server.review(PATH, review("UPDATE", extended, old, username="bob@example.com"))
    assert applied(extended, response)["spec"]["approvedBy"] == "bob@example.com"


def test_an_update_that_keeps_the_terms_keeps_the_approval_and_its_approver(
        server: RunningServer) -> None:
    old = exception(approvedBy="alice@example.com")
    relabelled = exception(approvedBy="alice@example.com")
    relabelled["metadata"]["labels"] = {"team": "payments"}
    response = server.review(PATH, review("UPDATE", relabelled, old, username="bob@example.com"))
    assert "patch" not in response
    # ...and a client cannot rewrite the approver without changing the terms either.
    forged = exception(approvedBy="bob@example.com")
    response = server.review(PATH, review("UPDATE", forged, old, username="bob@example.com"))
    assert applied(forged, response)["spec"]["approvedBy"] == "alice@example.com"


def test_a_write_without_a_user_is_refused(server: RunningServer) -> None:
    response = server.review(PATH, review("CREATE", EXCEPTION, username=""))
    assert not response["allowed"]
    assert response["status"]["code"] == 403
    assert "authenticated user" in response["status"]["message"]


def test_kubectl_is_warned_when_this_server_would_ignore_the_exception(
        server: RunningServer) -> None:
    elsewhere = exception()
    elsewhere["metadata"]["namespace"] = "production"
    response = server.review(PATH, review("CREATE", elsewhere))
    assert applied(elsewhere, response)["spec"]["approvedBy"] == "alice@example.com"
    assert response["warnings"] == [
        "PolicyException production/legacy-gateway will exempt nothing: namespace production "
        "is not one PolicyExceptions may live in (--exception-namespace: policy-exceptions)"]
    assert "warnings" not in server.review(PATH, review("CREATE", EXCEPTION))
    too_long = exception(expiresAt=days_from_now(200))
    [warning] = server.review(PATH, review("CREATE", too_long))["warnings"]
    assert warning == ("PolicyException policy-exceptions/legacy-gateway will exempt nothing: "
                       "expiresAt is 200.0 days after its creation, more than the maximum of 90 "
                       "(--max-exception-days)")


def test_a_delete_passes_untouched(server: RunningServer) -> None:
    response = server.review(PATH, review("DELETE", None, EXCEPTION))
    assert response["allowed"] and "patch" not in response
