"""``edgewarden replay`` over a small API-server audit log (tests/audit/fixtures/
apiserver-audit.log: audit.k8s.io/v1 Events as kube-apiserver writes them with the audit
policy of docs/replay.md). No API server needed; tests/crds_apiserver/test_replay.py does
the same over a log the real one writes."""

from __future__ import annotations

import functools
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.audit.helpers import FIXTURES, run
from webhook.audit.apiserver_log import (
    DEFAULT_WEBHOOKS,
    Verdict,
    read_audit_log,
    recorded_outcome,
)
from webhook.audit.manifests import load_manifests
from webhook.audit.replay import Agreement, ReplayOptions, replay
from webhook.errors import ManifestError
from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet

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
                      ReplayOptions(WEBHOOKS, namespaces), seed=load_manifests([STATE]))
    return report


def by_line(report: Any) -> dict[int, Any]:
    return {r.logged.location.line: r for r in report.requests}


def test_every_recorded_decision_of_the_webhook_is_reproduced() -> None:
    report = replayed()
    assert report.requests
    assert report.count(Agreement.DIFFER) == 0, [r.differences for r in report.differing]
    assert report.count(Agreement.AGREE) == 11
    assert report.agreement_rate() == 1.0
    lines = by_line(report)
    assert lines[5].logged.recorded.verdict is Verdict.DENIED
    assert lines[5].denied_by() == ["deny-nodeport-in-production"]
    # The third LoadBalancer of team-a is over the cap; once lb-1 is deleted it fits.
    assert lines[8].denied_by() == ["limit-loadbalancers-per-namespace"]
    assert (lines[9].logged.operation, lines[10].allowed) == ("DELETE", True)


def test_requests_are_rebuilt_as_the_api_server_sent_them() -> None:
    lines = by_line(replayed())
    dry_run = lines[13].logged
    assert dry_run.dry_run and dry_run.rebuilt.request is not None
    assert dry_run.rebuilt.request.raw["dryRun"] is True
    assert dry_run.ref == "Service/storefront/preview"
    # A namespace the log itself creates, with its labels: production, so denied.
    assert lines[13].denied_by() == ["deny-nodeport-in-production"]
    update = lines[17].logged.rebuilt.request
    assert update is not None and update.operation == "UPDATE"
    assert update.old_object is not None and update.old_object["spec"]["type"] == "ClusterIP"
    assert update.user.username == "alice" and "developers" in update.user.groups
    # kubectl label: the patch's requestObject is not the object; the response is.
    label = lines[11].logged.rebuilt
    assert label.request is not None and label.request.operation == "UPDATE"
    assert label.request.object is not None
    assert label.request.object["metadata"]["labels"] == {"tier": "frontend"}
    assert not label.before_mutation


def test_what_cannot_be_rebuilt_is_listed_with_the_reason() -> None:
    report = replayed()
    [missing] = report.not_rebuilt
    assert missing.logged.location.line == 18
    assert "strategic merge patch of a list" in missing.logged.rebuilt.problem
    assert missing.agreement is Agreement.NOT_COMPARED
    # Refused before admission (RBAC), the read, the status subresource and the first stage
    # of a request are counted, not judged.
    assert report.skipped["refused before admission (no object in the event)"] == 1
    assert report.skipped["reads"] == 1
    assert report.skipped["subresource status (no webhook is called for it)"] == 1
    assert sum(1 for why in report.skipped if why.startswith("stage RequestReceived")) == 1


def test_a_request_the_api_server_refused_itself_is_not_compared() -> None:
    web = by_line(replayed())[14]
    assert web.logged.recorded.verdict is Verdict.UNKNOWN
    assert web.logged.recorded.detail == "422 Invalid"
    assert web.agreement is Agreement.NOT_COMPARED


def test_the_recorded_patch_of_our_mutating_webhook_is_compared() -> None:
    lines = by_line(replayed())
    lb = lines[6]
    assert lb.logged.recorded.patch == (
        {"op": "add", "path": "/metadata/annotations",
         "value": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},)
    assert list(lb.patch) == list(lb.logged.recorded.patch)
    assert lines[4].logged.recorded.patch == ()  # called, did not mutate


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


def test_a_namespace_the_log_does_not_know_is_judged_without_labels_and_said_so() -> None:
    [report] = replay(read_audit_log(LOG), [loaded(REPO / "policies")],
                      ReplayOptions(WEBHOOKS))
    assert any("namespace payments was created before the log begins" in n
               for n in report.notes)
    # Without its production label, the NodePort in payments is admitted: a difference.
    assert 5 in {r.logged.location.line for r in report.differing}


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
    assert replayed(mixed).count(Agreement.AGREE) == 11


def test_a_file_that_is_no_audit_log_is_a_clear_error(tmp_path: Path) -> None:
    manifest = tmp_path / "service.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    with pytest.raises(ManifestError, match=r"no audit\.k8s\.io Event in it"):
        read_audit_log(manifest)
    with pytest.raises(ManifestError, match="no such file"):
        read_audit_log(tmp_path / "absent.log")


# -- the command ------------------------------------------------------------------------------


def test_replay_command_reports_full_agreement() -> None:
    result = run("replay", "--audit-log", str(LOG), "--cluster-state", str(STATE),
                 "-p", str(REPO / "policies"))
    assert result.exit_code == 0, result.output
    assert "11 agree, 0 differ (100.0% agreement)" in result.output
    assert "strategic merge patch of a list" in result.output


def test_replay_command_json_and_fail_on_difference(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "deny-nodeport-in-production.yaml").unlink()
    result = run("replay", "--audit-log", str(LOG), "--cluster-state", str(STATE),
                 "-p", str(policies), "-o", "json", "--fail-on-difference")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "ReplayReport"
    differing = [r for r in report["requests"] if r["agreement"] == "differ"]
    assert [r["line"] for r in differing] == [5, 13, 17]
    assert differing[0]["recorded"]["deniedBy"] == ["deny-nodeport-in-production"]
    assert differing[0]["replay"]["allowed"] is True
    assert report["summary"]["differ"] == 3


def test_replay_command_refuses_a_missing_log_with_exit_2(tmp_path: Path) -> None:
    result = run("replay", "--audit-log", str(tmp_path / "nope.log"), "-p",
                 str(REPO / "policies"))
    assert result.exit_code == 2
    assert "no such file" in result.output and "Traceback" not in result.output
