"""Issue 24's replay "done when", against a real kube-apiserver: the API server logs with the
audit policy docs/replay.md prints, edgewarden (in this process, reading the cluster as
serve does) is registered as the validating and the mutating webhook, a handful of Services
and Ingresses are created, patched, replaced and deleted (some denied by the webhook), and
``edgewarden replay`` over the API server's own audit log agrees with every decision it
recorded. With one policy changed, it lists exactly the requests that policy decided.

The API server here is a second one (tests/kube's ControlPlane), started with the documented
audit policy: the session's logs writes at level Metadata, which holds no objects. Skips
where the binaries are missing (tests/kube/binaries.py), as every real-API-server test.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.admission.harness import RunningServer, base_settings, start_server
from tests.kube.binaries import require
from tests.kube.controlplane import ControlPlane
from tests.support import eventually, use_kubeconfig
from webhook.certs.files import generate_certificates
from webhook.cli.app import app
from webhook.offline.apiserver_log import DEFAULT_WEBHOOKS, Verdict, read_audit_log
from webhook.offline.replay import Agreement, ReplayOptions, ReplayReport, replay
from webhook.policy.load.loader import load_policies

REPO = Path(__file__).parents[2]
POLICIES = REPO / "policies"
DOCUMENTED = REPO / "docs" / "replay.md"
INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"


def documented_audit_policy() -> dict[str, Any]:
    """The audit Policy of docs/replay.md, as printed there."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCUMENTED.read_text(), re.DOTALL)
    policies = [yaml.safe_load(b) for b in blocks if "kind: Policy" in b]
    assert len(policies) == 1, "docs/replay.md prints one audit Policy"
    policy: dict[str, Any] = policies[0]
    assert policy["apiVersion"] == "audit.k8s.io/v1"
    return policy


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    control = ControlPlane(require(), tmp_path_factory.mktemp("replay-plane"),
                           controller_manager=False, audit_policy=documented_audit_policy())
    control.start()
    try:
        yield control
    finally:
        control.stop()


@pytest.fixture(scope="module")
def server(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[RunningServer]:
    """edgewarden serving the shipped policies, its cache fed by the control plane."""
    folder = tmp_path_factory.mktemp("replay-webhook")
    certificates = generate_certificates(folder / "certs", service="edgewarden",
                                         namespace="edgewarden", hosts_extra=("127.0.0.1",))
    with pytest.MonkeyPatch.context() as patch:
        use_kubeconfig(patch, plane.kubeconfig)
        # One replica without the controllers (no leader to confirm and release claims):
        # the in-process reservations hold its places, as with serve --no-claims.
        settings = base_settings(certificates, folder, cluster_state=None,
                                 policies=(POLICIES,), host="127.0.0.1", claims=False)
        running = start_server(settings, certificates.ca_file)
        try:
            eventually(lambda: running.get("/readyz").status_code == 200, timeout=60,
                       what="/readyz")
            yield running
        finally:
            running.stop()


@dataclass
class Recorded:
    log: Path
    production: str
    team: str


def service(namespace: str, name: str, kind: str = "ClusterIP") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": kind, "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080}]}}


def ingress(namespace: str, name: str, tls: bool) -> dict[str, Any]:
    host = f"{name}.shop.example.com"
    spec: dict[str, Any] = {"ingressClassName": "nginx", "rules": [{"host": host, "http": {
        "paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "web", "port": {"number": 80}}}}]}}]}
    if tls:
        spec["tls"] = [{"hosts": [host], "secretName": f"{name}-tls"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def cached(server: RunningServer, kind: str, namespace: str, name: str) -> bool:
    return any(o.get("kind") == kind and o["metadata"].get("namespace") == namespace
               and o["metadata"].get("name") == name
               for o in server.runtime.cluster.snapshot())


def register(plane: ControlPlane, server: RunningServer, namespaces: list[str]) -> None:
    ca = base64.b64encode(server.ca_file.read_bytes()).decode()
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
              "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"},
             {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
              "resources": ["ingresses"], "operations": ["CREATE", "UPDATE"],
              "scope": "Namespaced"}]

    def hook(name: str, path: str) -> dict[str, Any]:
        return {"name": name,
                "clientConfig": {"url": f"https://127.0.0.1:{server.port}/{path}",
                                 "caBundle": ca},
                "rules": rules,
                "namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name", "operator": "In",
                    "values": namespaces}]},
                "failurePolicy": "Fail", "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "timeoutSeconds": 10}

    validate, mutate = DEFAULT_WEBHOOKS
    configs = [
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "MutatingWebhookConfiguration", "metadata": {"name": "edgewarden-replay"},
         "webhooks": [{**hook(mutate, "mutate"), "reinvocationPolicy": "Never"}]},
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "edgewarden-replay"},
         "webhooks": [hook(validate, "validate")]},
    ]
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(configs))


@pytest.fixture(scope="module")
def recorded(plane: ControlPlane, server: RunningServer) -> Recorded:
    """The traffic, through the API server and the webhook; its audit log."""
    suffix = uuid.uuid4().hex[:6]
    production, team, probe = (f"shop-{suffix}", f"team-{suffix}", f"probe-{suffix}")
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": name, "labels": labels}}
        for name, labels in ((production, {"environment": "production"}),
                             (team, {"environment": "dev"}),
                             (probe, {"environment": "production"}))]
    plane.kubectl("create", "-f", "-", input=yaml.safe_dump_all(namespaces))
    eventually(lambda: (server.runtime.cluster.get_namespace(probe) or {}).get("metadata"),
               timeout=60, what="the webhook's cache to hold the namespaces")
    register(plane, server, [production, team, probe])

    def apply(verb: str, obj: dict[str, Any], *extra: str) -> Any:
        return plane.kubectl(verb, "-f", "-", *extra, input=json.dumps(obj), check=False)

    # Both webhooks answer in the probe namespace (left out of the replay) before any
    # request that counts is made: a dry-run NodePort is refused, a LoadBalancer patched.
    def webhooks_active() -> bool:
        refused = apply("create", service(probe, "p", "NodePort"), "--dry-run=server")
        patched = apply("create", service(probe, "p", "LoadBalancer"), "--dry-run=server",
                        "-o", "json")
        return (refused.returncode != 0 and "deny-nodeport-in-production" in refused.stderr
                and patched.returncode == 0
                and INTERNAL in (json.loads(patched.stdout)["metadata"].get("annotations")
                                 or {}))

    eventually(webhooks_active, timeout=60, what="the webhooks to be called")

    def ok(result: Any) -> None:
        assert result.returncode == 0, result.stderr

    def refused(result: Any, policy: str) -> None:
        assert result.returncode != 0 and policy in result.stderr, result.stderr

    ok(apply("create", service(production, "web")))
    refused(apply("create", service(production, "debug", "NodePort")),
            "deny-nodeport-in-production")
    refused(apply("create", service(production, "preview", "NodePort"), "--dry-run=server"),
            "deny-nodeport-in-production")
    for name in ("lb-1", "lb-2"):
        ok(apply("create", service(team, name, "LoadBalancer")))
        eventually(lambda name=name: cached(server, "Service", team, name), timeout=30,
                   what=f"the cache to hold {name}")
    refused(apply("create", service(team, "lb-3", "LoadBalancer")),
            "limit-loadbalancers-per-namespace")
    ok(plane.kubectl("-n", team, "delete", "service", "lb-1", check=False))
    eventually(lambda: not cached(server, "Service", team, "lb-1"), timeout=30,
               what="the cache to drop lb-1")
    ok(apply("create", service(team, "lb-3", "LoadBalancer")))
    ok(plane.kubectl("-n", production, "label", "service", "web", "tier=frontend",
                     check=False))
    refused(plane.kubectl("-n", production, "patch", "service", "web", "-p",
                          '{"spec":{"type":"NodePort"}}', check=False),
            "deny-nodeport-in-production")
    refused(apply("replace", service(production, "web", "NodePort")),
            "deny-nodeport-in-production")
    # Someone else, through impersonation: the admission request names the impersonated user.
    # (A Role of its own: the aggregated "edit" is empty without the controller manager.)
    ok(plane.kubectl("-n", production, "create", "role", "service-writer",
                     "--verb=create,get", "--resource=services", check=False))
    ok(plane.kubectl("-n", production, "create", "rolebinding", "alice-services",
                     "--role=service-writer", "--user=alice", check=False))
    refused(plane.kubectl("--as=alice", "--as-group=developers", "-n", production, "create",
                          "service", "nodeport", "alice-debug", "--tcp=80:8080", check=False),
            "deny-nodeport-in-production")
    refused(apply("create", ingress(production, "shop", tls=False)),
            "require-ingress-tls-in-production")
    ok(apply("create", ingress(production, "checkout", tls=True)))
    # What ends before our webhook: the API server's own validation (422), RBAC (403). And
    # what no webhook is called for: the status subresource.
    invalid = service(production, "broken")
    invalid["spec"]["ports"][0]["port"] = 0
    assert "Invalid value" in apply("create", invalid).stderr
    assert "forbidden" in plane.kubectl("--as=bob", "-n", team, "create", "service", "nodeport",
                                        "sneaky", "--tcp=80:8080", check=False).stderr
    ok(plane.kubectl("-n", team, "patch", "service", "lb-2", "--subresource=status",
                     "--type=merge", "-p",
                     '{"status":{"loadBalancer":{"ingress":[{"ip":"10.30.0.5"}]}}}',
                     check=False))
    # An update the webhook admits: web as it is, labelled, replaced whole (PUT).
    labelled = service(production, "web")
    labelled["metadata"]["labels"] = {"tier": "frontend", "team": "shop"}
    ok(apply("replace", labelled))
    ok(apply("create", ingress(production, "last", tls=True)))

    def logged_last() -> bool:
        return any((e.get("objectRef") or {}).get("name") == "last"
                   and e.get("stage") == "ResponseComplete" for e in plane.audit_events())

    eventually(logged_last, timeout=30, what="the audit log to hold the last request")
    return Recorded(plane.audit_log, production, team)


def replayed(recorded: Recorded, policies: Path = POLICIES) -> ReplayReport:
    [report] = replay(read_audit_log(recorded.log), [load_policies(policies)],
                      ReplayOptions(frozenset(DEFAULT_WEBHOOKS),
                                    frozenset({recorded.production, recorded.team})))
    return report


def test_replay_agrees_with_every_decision_the_api_server_recorded(recorded: Recorded) -> None:
    report = replayed(recorded)
    assert report.requests
    assert report.not_rebuilt == [], [(r.logged.ref, r.logged.rebuilt.problem)
                                      for r in report.not_rebuilt]
    assert report.differing == [], [(r.logged.ref, r.differences) for r in report.differing]
    assert report.agreement_rate() == 1.0
    denied = sorted((r.logged.verb, r.logged.name, tuple(r.logged.recorded.denied_by))
                    for r in report.requests if r.logged.recorded.verdict is Verdict.DENIED)
    assert denied == [
        ("create", "alice-debug", ("deny-nodeport-in-production",)),
        ("create", "debug", ("deny-nodeport-in-production",)),
        ("create", "lb-3", ("limit-loadbalancers-per-namespace",)),
        ("create", "preview", ("deny-nodeport-in-production",)),
        ("create", "shop", ("require-ingress-tls-in-production",)),
        ("patch", "web", ("deny-nodeport-in-production",)),
        ("update", "web", ("deny-nodeport-in-production",)),
    ]
    agreed = {(r.logged.verb, r.logged.name) for r in report.requests
              if r.agreement is Agreement.AGREE}
    assert {("create", "web"), ("delete", "lb-1"), ("patch", "web"), ("update", "web"),
            ("create", "checkout")} <= agreed
    # Ended before our webhook: not compared; refused by RBAC: no object, not even listed.
    broken = next(r for r in report.requests if r.logged.name == "broken")
    assert (broken.logged.recorded.detail, broken.agreement) == ("422 Invalid",
                                                                 Agreement.NOT_COMPARED)
    assert "sneaky" not in {r.logged.name for r in report.requests}
    assert report.skipped["refused before admission (no object in the event)"] >= 1
    # The mutating webhook's recorded patch was computed again, and is the same.
    patched = [r for r in report.requests if r.logged.recorded.patch]
    assert {r.logged.name for r in patched} >= {"lb-1", "lb-2"}
    assert all(list(r.patch) == list(r.logged.recorded.patch or ()) for r in patched)
    alice = next(r for r in report.requests if r.logged.name == "alice-debug")
    assert alice.logged.user == "alice"
    preview = next(r for r in report.requests if r.logged.name == "preview")
    assert preview.logged.dry_run


def test_a_changed_policy_lists_the_requests_that_would_differ(recorded: Recorded,
                                                               tmp_path: Path) -> None:
    changed = tmp_path / "policies"
    shutil.copytree(POLICIES, changed, ignore=shutil.ignore_patterns("fixtures"))
    nodeport = changed / "deny-nodeport-in-production.yaml"
    nodeport.write_text(nodeport.read_text().replace("mode: Enforce", "mode: Warn"))
    report = replayed(recorded, changed)
    differing = sorted((r.logged.verb, r.logged.name) for r in report.differing)
    assert differing == [("create", "alice-debug"), ("create", "debug"), ("create", "preview"),
                         ("patch", "web"), ("update", "web")]
    # The same through `edgewarden diff`: the two sets over the log, newly allowed (warned).
    result = CliRunner().invoke(app, [
        "diff", str(POLICIES), str(changed), "--audit-log", str(recorded.log),
        "-n", recorded.production, "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)["changes"]
    assert sorted((c["request"].split(" by ")[0], c["resource"]["name"]) for c in changes) \
        == differing
    assert {(c["change"], c["before"]["outcome"], c["after"]["outcome"]) for c in changes} == {
        ("newly-allowed", "deny", "warn")}
