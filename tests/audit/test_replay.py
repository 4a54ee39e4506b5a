"""``edgewarden replay`` over a small API-server audit log: tests/audit/fixtures/
apiserver-audit.log, written by kube-apiserver 1.37 with the audit policy of docs/replay.md
while edgewarden was its webhook (the traffic of tests/crds_apiserver/test_replay.py,
namespaces renamed). No API server needed here; the cases the traffic does not show (level
Request, a first stage, an unknown object) are made from its events."""

from __future__ import annotations

import functools
import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.audit.helpers import FIXTURES, SCHEMAS, run
from webhook.errors import ManifestError
from webhook.offline.apiserver_log import (
    DEFAULT_WEBHOOKS,
    Verdict,
    read_audit_log,
    recorded_outcome,
)
from webhook.offline.folders import load_manifests
from webhook.offline.replay import Agreement, ReplayOptions, replay
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet

REPO = Path(__file__).resolve().parents[2]
LOG = FIXTURES / "apiserver-audit.log"
STATE = FIXTURES / "replay-cluster.yaml"
WEBHOOKS = frozenset(DEFAULT_WEBHOOKS)


@functools.cache
def loaded(policies: Path) -> PolicySet:
    return load_policies(policies)


def replayed(log: Path = LOG, policies: Path = REPO / "policies",
             namespaces: frozenset[str] | None = None) -> Any:
    [report] = replay(read_audit_log(log), [loaded(policies)],
                      ReplayOptions(WEBHOOKS, namespaces))
    return report


def by_line(report: Any) -> dict[int, Any]:
    return {r.logged.location.line: r for r in report.requests}


def test_every_recorded_decision_of_the_webhook_is_reproduced() -> None:
    report = replayed()
    assert report.requests
    assert report.count(Agreement.DIFFER) == 0, [r.differences for r in report.differing]
    assert report.count(Agreement.AGREE) == 16
    assert report.not_rebuilt == []
    assert report.agreement_rate() == 1.0
    lines = by_line(report)
    assert lines[4].logged.recorded.verdict is Verdict.DENIED
    assert lines[4].denied_by() == ["deny-nodeport-in-production"]
    # The third LoadBalancer of team-a is over the cap; once lb-1 is deleted it fits.
    assert lines[8].denied_by() == ["limit-loadbalancers-per-namespace"]
    assert (lines[9].logged.operation, lines[10].allowed) == ("DELETE", True)
    assert lines[17].denied_by() == ["require-ingress-tls-in-production"]


def test_requests_are_rebuilt_as_the_api_server_sent_them() -> None:
    lines = by_line(replayed())
    dry_run = lines[5].logged
    assert dry_run.dry_run and dry_run.rebuilt.request is not None
    assert dry_run.rebuilt.request.raw["dryRun"] is True
    assert dry_run.ref == "Service/storefront/preview"
    # kubectl label: the patch's requestObject is not the object; the response is.
    label = lines[11].logged.rebuilt
    assert label.request is not None and label.request.operation == "UPDATE"
    assert label.request.object is not None
    assert label.request.object["metadata"]["labels"] == {"tier": "frontend"}
    assert not label.before_mutation
    # A denied patch has a Status for response: the patch is applied to the replayed object.
    denied_patch = lines[12].logged.rebuilt.request
    assert denied_patch is not None and denied_patch.object is not None
    assert denied_patch.object["spec"]["type"] == "NodePort"
    assert denied_patch.object["metadata"]["labels"] == {"tier": "frontend"}
    update = lines[13].logged.rebuilt.request
    assert update is not None and update.operation == "UPDATE"
    assert update.old_object is not None and update.old_object["spec"]["type"] == "ClusterIP"
    # kubectl --as=alice: admission sees the impersonated user.
    alice = lines[16].logged.rebuilt.request
    assert alice is not None and alice.user.username == "alice"
    assert "developers" in alice.user.groups


def test_what_is_not_an_admission_of_an_object_is_counted_not_judged() -> None:
    report = replayed()
    assert report.skipped["refused before admission (no object in the event)"] == 1
    assert report.skipped["subresource status (no webhook is called for it)"] == 1
    assert report.skipped["namespaces (followed for their labels)"] == 2
    assert report.skipped["kinds the policies do not govern"] == 2  # a Role, a RoleBinding


def test_a_request_the_api_server_refused_itself_is_not_compared() -> None:
    broken = by_line(replayed())[19]
    assert broken.logged.recorded.verdict is Verdict.UNKNOWN
    assert broken.logged.recorded.detail == "422 Invalid"
    assert broken.agreement is Agreement.NOT_COMPARED


def test_the_recorded_patch_of_our_mutating_webhook_is_compared() -> None:
    lines = by_line(replayed())
    lb = lines[6]
    assert lb.logged.recorded.patch == (
        {"op": "add", "path": "/metadata/annotations",
         "value": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},)
    assert list(lb.patch) == list(lb.logged.recorded.patch)
    assert lines[3].logged.recorded.patch == ()  # called, did not mutate


def test_a_tighter_policy_lists_the_requests_that_would_differ(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    limit = policies / "limit-loadbalancers-per-namespace.yaml"
    limit.write_text(limit.read_text().replace("      : 2\n", "      : 1\n"))
    report = replayed(policies=policies)
    differing = {r.logged.location.line: r.differences for r in report.differing}
    # lb-2 is the second LoadBalancer; lb-3 after lb-1's deletion is the second again.
    assert sorted(differing) == [7, 10]
    assert differing[7] == ["recorded admitted; replay denies (limit-loadbalancers-per-namespace)"]


def test_a_changed_patch_is_a_difference(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "internal-loadbalancer.yaml").unlink()
    differing = {r.logged.location.line: r.differences for r in replayed(policies=policies)
                 .differing}
    assert sorted(differing) == [6, 7, 10]
    assert differing[6] == ["recorded patch: add /metadata/annotations; replay: none"]


def test_namespace_filter_judges_only_those_namespaces() -> None:
    report = replayed(namespaces=frozenset({"team-a"}))
    assert report.requests
    assert {r.logged.namespace for r in report.requests} == {"team-a"}
    # The cluster still follows every write: lb-3 is admitted after lb-1 goes.
    assert by_line(report)[10].allowed is True


def test_a_cluster_state_seeds_what_existed_before_the_log() -> None:
    [report] = replay(read_audit_log(LOG), [loaded(REPO / "policies")],
                      ReplayOptions(WEBHOOKS), seed=load_manifests([STATE]))
    differing = {r.logged.location.line: r.differences for r in report.differing}
    assert sorted(differing) == [6, 7, 10], "two LoadBalancers ran in team-a already"


def log_without(tmp_path: Path, drop: Callable[[dict[str, Any]], bool],
                change: Callable[[dict[str, Any]], None] = lambda event: None) -> Path:
    """The fixture log less the events ``drop`` picks, each event passed to ``change``."""
    events = [json.loads(line) for line in LOG.read_text().splitlines()]
    kept = []
    for event in events:
        if drop(event):
            continue
        change(event)
        kept.append(json.dumps(event))
    path = tmp_path / "audit.log"
    path.write_text("\n".join(kept) + "\n")
    return path


def test_a_namespace_the_log_does_not_show_is_judged_without_labels_and_said_so(
    tmp_path: Path,
) -> None:
    log = log_without(tmp_path, lambda e: e["objectRef"]["resource"] == "namespaces")
    report = replayed(log)
    assert any("namespace storefront was created before the log begins" in n
               for n in report.notes)
    # Without its production label, the NodePort in storefront is admitted: a difference.
    assert "debug" in {r.logged.name for r in report.differing}


def test_level_request_patches_are_applied_when_unambiguous_else_listed(tmp_path: Path) -> None:
    def at_level_request(event: dict[str, Any]) -> None:
        if event["verb"] == "patch" and event["objectRef"].get("name") == "web":
            event["level"] = "Request"
            event.pop("responseObject", None)
            if event["responseStatus"]["code"] == 200:  # the label: a ports list instead
                event["requestObject"] = {"spec": {"ports": [{"port": 443, "name": "https"}],
                                                   "$setElementOrder/ports": [{"port": 80}]}}

    report = replayed(log_without(tmp_path, lambda e: False, at_level_request))
    lines = by_line(report)
    assert "strategic merge patch of a list" in lines[11].logged.rebuilt.problem
    assert lines[11].agreement is Agreement.NOT_COMPARED
    # The NodePort patch is a plain merge patch: applied, judged, agreeing.
    assert lines[12].agreement is Agreement.AGREE
    assert report.not_rebuilt == [lines[11]]


def test_metadata_level_first_stages_and_unknown_deletes(tmp_path: Path) -> None:
    def reshape(event: dict[str, Any]) -> None:
        if event["objectRef"].get("name") == "checkout":
            event["level"] = "Metadata"
            event.pop("requestObject", None)
            event.pop("responseObject", None)
        if event["verb"] == "delete":  # a Service's delete returns it: not this one
            event.pop("responseObject", None)

    def drop(event: dict[str, Any]) -> bool:  # lb-1's create: its delete is of the unknown
        return event["verb"] == "create" and event["objectRef"].get("name") == "lb-1"

    path = log_without(tmp_path, drop, reshape)
    first = json.loads(LOG.read_text().splitlines()[2])  # web's create, as RequestReceived
    first["stage"] = "RequestReceived"
    first.pop("responseStatus")
    path.write_text(json.dumps(first) + "\n" + path.read_text())
    report = replayed(path)
    problems = {r.logged.name: r.logged.rebuilt.problem for r in report.not_rebuilt}
    assert problems["checkout"].startswith("level Metadata: the event holds no object")
    assert problems["lb-1"].startswith("the deleted object is unknown")
    assert report.skipped["stage RequestReceived (only the final stage is read)"] == 1
    # Without lb-1 in the log, team-a holds one LoadBalancer when lb-3 is first created.
    assert [(r.logged.name, r.logged.recorded.verdict) for r in report.differing] == [
        ("lb-3", Verdict.DENIED)]


def test_recorded_outcome_reads_denials_failures_and_annotations() -> None:
    def event(code: int, message: str = "", **annotations: str) -> dict[str, Any]:
        return {"verb": "create", "responseStatus": {"code": code, "message": message},
                "annotations": annotations}

    denied = recorded_outcome(event(403, 'admission webhook "validate.edgewarden.dev" denied '
                                    "the request: [a-policy] no; [b.policy] never [x] here"),
                              WEBHOOKS)
    assert (denied.verdict, denied.denied_by) == (Verdict.DENIED, ("a-policy", "b.policy"))
    other = recorded_outcome(event(403, 'admission webhook "other.example.com" denied the '
                                   "request: [a-policy] no"), WEBHOOKS)
    assert other.verdict is Verdict.UNKNOWN and "other.example.com" in other.detail
    failed = recorded_outcome(event(500, 'Internal error occurred: failed calling webhook '
                                    '"validate.edgewarden.dev": connection refused'), WEBHOOKS)
    assert failed.verdict is Verdict.FAILED
    opened = recorded_outcome(event(201, **{
        "failed-open.validating.webhook.admission.k8s.io/round_0_index_0":
            "validate.edgewarden.dev"}), WEBHOOKS)
    assert opened.verdict is Verdict.FAILED
    audited = recorded_outcome(event(201, **{
        "validate.edgewarden.dev/require-ingress-class": "no class",
        "validate.edgewarden.dev/deny-x.exception": "PolicyException a/b"}), WEBHOOKS)
    assert audited.verdict is Verdict.ADMITTED and audited.audited == ("require-ingress-class",)
    assert recorded_outcome(event(201), WEBHOOKS).audited is None


def test_gzip_logs_event_lists_and_broken_lines_are_read(tmp_path: Path) -> None:
    lines = LOG.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    mixed = tmp_path / "audit.log.gz"
    with gzip.open(mixed, "wt") as stream:
        stream.write(json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                                 "items": events[:10]}) + "\n")
        stream.write("\n".join(lines[10:]) + "\n")
        stream.write('{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Req')  # cut off
    log = read_audit_log(mixed)
    assert len(log.events) == len(lines)
    assert log.malformed == [len(lines) - 10 + 2]
    assert replayed(mixed).count(Agreement.AGREE) == 16


def test_a_file_that_is_no_audit_log_is_a_clear_error(tmp_path: Path) -> None:
    manifest = tmp_path / "service.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    with pytest.raises(ManifestError, match=r"no audit\.k8s\.io Event in it"):
        read_audit_log(manifest)
    with pytest.raises(ManifestError, match="no such file"):
        read_audit_log(tmp_path / "absent.log")


# -- the command ------------------------------------------------------------------------------


def test_replay_command_reports_full_agreement() -> None:
    result = run("replay", "--audit-log", str(LOG), "-p", str(REPO / "policies"))
    assert result.exit_code == 0, result.output
    assert "16 agree, 0 differ (100.0% agreement)" in result.output


def test_replay_command_json_and_fail_on_difference(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "deny-nodeport-in-production.yaml").unlink()
    result = run("replay", "--audit-log", str(LOG), "-p", str(policies), "-o", "json",
                 "--fail-on-difference")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, json.loads((SCHEMAS / "replay.schema.json").read_text()))
    assert report["kind"] == "ReplayReport"
    differing = [r for r in report["requests"] if r["agreement"] == "differ"]
    assert [r["line"] for r in differing] == [4, 5, 12, 13, 16]
    assert differing[0]["recorded"]["deniedBy"] == ["deny-nodeport-in-production"]
    assert differing[0]["replay"]["allowed"] is True
    assert report["summary"]["differ"] == 5


def test_replay_command_refuses_a_missing_log_with_exit_2(tmp_path: Path) -> None:
    result = run("replay", "--audit-log", str(tmp_path / "nope.log"), "-p",
                 str(REPO / "policies"))
    assert result.exit_code == 2
    assert "no such file" in result.output and "Traceback" not in result.output
