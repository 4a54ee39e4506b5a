"""Issue 22's proof of equivalence, against the real kube-apiserver: the objects `edgewarden
export` writes, applied with no webhook in the way, give the same verdicts, messages and
patches as edgewarden's own engine over the same policies:

* every case of every shipped suite, in namespaces labelled as the suite's fixtures say;
* at least 2,000 generated Services and Ingresses, well-typed (the API server decodes nothing
  else: the differential test's odd types never reach an admission policy there).

Each suite gets its own copies of its fixture namespaces (``e<suite>-<name>``, labelled as the
fixture says), so suites that label one name differently never disturb each other; the
bindings are narrowed to namespaces carrying this test's label, so nothing else in the shared
control plane is judged by them. Objects the API server refuses before any admission policy
(field validation) are not comparable and are counted apart; every other difference fails
the test with the case, both verdicts and both messages.
"""

from __future__ import annotations

import copy
import http.client
import itertools
import json
import re
import ssl
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import eventually
from webhook.cluster.memory import MemoryCluster
from webhook.native.export import export
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import Decision, Mode
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import UserInfo, make_request
from webhook.suites import model as suites

from .conftest import REPO

ISOLATION = "edgewarden.dev/native-equivalence"
PATHS = {
    "Service": ("/api/v1", "services"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "Gateway": ("/apis/gateway.networking.k8s.io/v1", "gateways"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "GRPCRoute": ("/apis/gateway.networking.k8s.io/v1", "grpcroutes"),
    "TLSRoute": ("/apis/gateway.networking.k8s.io/v1", "tlsroutes"),
    "ConfigMap": ("/api/v1", "configmaps"),
}
# Admission policies take effect a moment after they are created, and the API server hands
# them ``namespaceObject`` from its informer: a namespace created a moment ago is not there
# yet. This policy, applied after the exported ones (the API server's informers keep the
# order), refuses a ConfigMap labelled as a probe (so: policies in force) and any ConfigMap
# whose namespace it has not seen yet.
PROBE_LABEL = "edgewarden.dev/equivalence-probe"
NAMESPACE_SEEN = [
    {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
     "metadata": {"name": "equivalence-namespace-seen"},
     "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
         "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
         "operations": ["CREATE"]}]},
         "validations": [
             {"expression": "has(namespaceObject.metadata)",
              "message": "namespace not seen yet"},
             {"expression": f"!has(object.metadata.labels) || !('{PROBE_LABEL}' in "
                            "object.metadata.labels)",
              "message": "policies in force"}]}},
    {"apiVersion": "admissionregistration.k8s.io/v1",
     "kind": "ValidatingAdmissionPolicyBinding",
     "metadata": {"name": "equivalence-namespace-seen"},
     "spec": {"policyName": "equivalence-namespace-seen", "validationActions": ["Deny"],
              "matchResources": {"namespaceSelector": {"matchLabels": {ISOLATION: "on"}}}}},
]
DENIED = re.compile(r"ValidatingAdmissionPolicy '(edgewarden-[^']+)' with binding '[^']+' "
                    r"denied request: (.*?)(?=(?:, )?ValidatingAdmissionPolicy '|$)", re.S)
WARNED = re.compile(r"Validation failed for ValidatingAdmissionPolicy '(edgewarden-[^']+)' "
                    r"with binding '[^']+': (.*)$", re.S)


@dataclass
class Answer:
    status: int
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)


class ApiServer:
    """Raw HTTPS to the API server as admin: fast (one keep-alive connection), and it keeps
    the Warning headers that admission policies answer with."""

    def __init__(self, plane: Any) -> None:
        context = ssl.create_default_context(cafile=str(plane.ca_file))
        pki = plane.workdir / "pki"
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        self._context = context
        self._port = plane.port
        self._connection = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self._port, context=self._context,
                                           timeout=30)

    def send(self, method: str, path: str, body: Mapping[str, Any]) -> Answer:
        payload = json.dumps(body).encode()
        for attempt in range(2):
            try:
                self._connection.request(method, path, body=payload,
                                         headers={"content-type": "application/json"})
                response = self._connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = self._connect()
                if attempt:
                    raise
        warnings = [re.sub(r'^\d+ - "(.*)"$', r"\1", w, flags=re.S)
                    for w in response.headers.get_all("Warning") or []]
        document = json.loads(data) if data else {}
        message = document.get("message", "") if response.status >= 400 else ""
        return Answer(response.status, message, warnings, document)

    def create(self, obj: Mapping[str, Any], *, dry_run: bool) -> Answer:
        prefix, plural = PATHS[obj["kind"]]
        namespace = obj["metadata"]["namespace"]
        query = "?dryRun=All" if dry_run else ""
        return self.send("POST", f"{prefix}/namespaces/{namespace}/{plural}{query}", obj)

    def replace(self, obj: Mapping[str, Any]) -> Answer:
        prefix, plural = PATHS[obj["kind"]]
        meta = obj["metadata"]
        return self.send("PUT", f"{prefix}/namespaces/{meta['namespace']}/{plural}/"
                                f"{meta['name']}?dryRun=All", obj)

    def delete(self, obj: Mapping[str, Any]) -> None:
        prefix, plural = PATHS[obj["kind"]]
        meta = obj["metadata"]
        self.send("DELETE", f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}",
                  {})


@dataclass
class Comparison:
    compared: int = 0
    not_comparable: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)


def _pairs(pattern: re.Pattern[str], texts: list[str]) -> set[tuple[str, str]]:
    found = set()
    for text in texts:
        for match in pattern.finditer(text):
            found.add((match.group(1).removeprefix("edgewarden-"),
                       " ".join(match.group(2).split())))
    return found


def compare(label: str, decision: Decision, answer: Answer, result: Comparison) -> None:
    """One object: edgewarden's decision beside the API server's answer."""
    denied_by_policy = bool(_pairs(DENIED, [answer.message]))
    if answer.status >= 400 and not denied_by_policy:
        if answer.status in (400, 422):  # refused before admission: not ours to compare
            result.not_comparable.append(f"{label}: {answer.message[:160]}")
            return
        result.differences.append(f"{label}: the API server answered {answer.status} "
                                  f"{answer.message[:300]}")
        return
    result.compared += 1
    ours_denied = {(v.policy, " ".join(v.message.split())) for v in decision.denials}
    theirs_denied = _pairs(DENIED, [answer.message])
    if bool(ours_denied) != denied_by_policy:
        result.differences.append(
            f"{label}: edgewarden {'denies' if ours_denied else 'admits'} "
            f"{sorted(ours_denied)}, the API server "
            f"{'denies' if denied_by_policy else 'admits'} {answer.message[:300]}")
        return
    if not theirs_denied <= ours_denied:
        result.differences.append(f"{label}: denial messages differ: edgewarden "
                                  f"{sorted(ours_denied)}, API server {sorted(theirs_denied)}")
        return
    if denied_by_policy:
        return  # the API server stops at the first denial; warnings are not all collected
    ours_warned = {(v.policy, " ".join(v.message.split())) for v in decision.violations
                   if v.mode is Mode.WARN}
    theirs_warned = _pairs(WARNED, answer.warnings)
    if ours_warned != theirs_warned:
        result.differences.append(f"{label}: warnings differ: edgewarden {sorted(ours_warned)}"
                                  f", API server {sorted(theirs_warned)}")
        return
    if decision.mutated_object is not None:
        ours = (decision.mutated_object.get("metadata") or {}).get("annotations") or {}
        theirs = (answer.body.get("metadata") or {}).get("annotations") or {}
        if ours != theirs:
            result.differences.append(f"{label}: patch differs: edgewarden annotations {ours}, "
                                      f"API server {theirs}")


@pytest.fixture(scope="module")
def exported(plane: Any) -> Iterator[tuple[PolicySet, ApiServer]]:
    """Every shipped policy's native objects, applied; bindings narrowed to this test's
    namespaces; removed afterwards."""
    from tests.e2e.local import install_gateway_api

    install_gateway_api(plane)
    policies = load_policies(REPO / "policies")
    result = export(policies)
    # The done-when: the export as it is is accepted by the API server.
    plane.kubectl("apply", "--dry-run=server", "-f", "-",
                  input=yaml.safe_dump_all(result.objects))
    objects = copy.deepcopy(result.objects)
    for obj in objects:
        if obj["kind"].endswith("Binding"):
            obj["spec"]["matchResources"] = {
                "namespaceSelector": {"matchLabels": {ISOLATION: "on"}}}
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([*objects, *NAMESPACE_SEEN]))
    native = PolicySet(tuple(p for p in policies.policies if p.name in set(result.exported)))
    api = ApiServer(plane)
    in_force(plane, api)
    try:
        yield native, api
    finally:
        plane.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy,"
                      "mutatingadmissionpolicybinding,mutatingadmissionpolicy",
                      "-l", "app.kubernetes.io/managed-by=edgewarden", check=False)
        plane.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                      "equivalence-namespace-seen", check=False)


def in_force(plane: Any, api: ApiServer) -> None:
    """Until the validating policies (the probe policy, applied last) and the mutating one
    (the internal-LB patch on a new LoadBalancer) are in force."""
    probe_namespace = f"eq-probe-{uuid.uuid4().hex[:4]}"
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": probe_namespace, "labels": {ISOLATION: "on"}}}))
    probe = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "probe", "namespace": probe_namespace,
                          "labels": {PROBE_LABEL: "yes"}}}
    eventually(lambda: "policies in force" in api.create(probe, dry_run=True).message,
               timeout=60, interval=0.2, what="the exported validating policies in force")
    balancer = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "probe", "namespace": probe_namespace},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}

    def patched() -> bool:
        body = api.create(balancer, dry_run=True).body
        return bool((body.get("metadata") or {}).get("annotations"))

    eventually(patched, timeout=60, interval=0.2,
               what="the exported mutating policy in force")


def suite_namespaces(plane: Any, api: ApiServer, suite: suites.TestSuite,
                     prefix: str) -> dict[str, dict[str, Any]]:
    """The suite's fixture namespaces, created as ``<prefix>-<name>``; name -> copy."""
    copies: dict[str, dict[str, Any]] = {}
    for document in (d for path in suite.cluster_paths
                     for d in yaml.safe_load_all(path.read_text()) if d):
        if document.get("kind") != "Namespace":
            continue
        name = document["metadata"]["name"]
        real = f"{prefix}-{name}"[:63]
        namespace = copy.deepcopy(document)
        metadata = namespace["metadata"]
        metadata["name"] = real
        labels = {k: v for k, v in (metadata.get("labels") or {}).items() if isinstance(v, str)}
        metadata["labels"] = {**labels, ISOLATION: "on", "kubernetes.io/metadata.name": real}
        copies[name] = namespace
    if copies:
        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(list(copies.values())))
    for namespace in copies.values():
        probe = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "seen", "namespace": namespace["metadata"]["name"]}}
        eventually(lambda probe=probe: api.create(probe, dry_run=True).status == 201,
                   timeout=30, interval=0.1, what="the API server to see the namespace")
    return copies


def _object_for(obj: Mapping[str, Any] | None, namespace: str, index: int) -> dict[str, Any]:
    """``obj`` placed in ``namespace``, named, without what the API server allocates (a fixed
    nodePort or clusterIP would collide between cases; no policy reads them)."""
    placed = copy.deepcopy(dict(obj or {}))
    spec = placed.get("spec")
    if isinstance(spec, dict) and placed.get("kind") == "Service":
        for allocated in ("clusterIP", "clusterIPs"):
            spec.pop(allocated, None)
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
    metadata = placed.setdefault("metadata", {})
    metadata["namespace"] = namespace
    if not metadata.get("name"):
        metadata["name"] = f"eq-{index}"
    metadata.pop("generateName", None)
    return placed


def _keep_allocated(created: Mapping[str, Any], updated: dict[str, Any]) -> None:
    """What a client's update carries over from the stored object: a Service's cluster IPs
    and the nodePort of each port it keeps."""
    stored, spec = created.get("spec") or {}, updated.get("spec")
    if updated.get("kind") != "Service" or not isinstance(spec, dict):
        return
    for allocated in ("clusterIP", "clusterIPs"):
        if allocated in stored:
            spec[allocated] = stored[allocated]
    node_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                  for p in stored.get("ports") or []}
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            found = node_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if found:
                port["nodePort"] = found


def judge_case(engine: Engine, cluster: MemoryCluster, api: ApiServer, case: suites.TestCase,
               namespaces: Mapping[str, Mapping[str, Any]], label: str, index: int,
               result: Comparison) -> None:
    if case.operation not in ("CREATE", "UPDATE") or case.namespace not in namespaces:
        result.not_comparable.append(f"{label}: {case.operation} in a namespace the fixtures "
                                     "lack, or a DELETE")
        return
    if case.object is None or case.object.get("kind") not in PATHS or case.dry_run:
        result.not_comparable.append(f"{label}: not a plain request of a kind we create")
        return
    namespace = namespaces[case.namespace]["metadata"]["name"]
    obj = _object_for(case.object, namespace, index)
    old = _object_for(case.old_object, namespace, index) if case.old_object else None
    if case.operation == "UPDATE":
        if old is None:
            result.not_comparable.append(f"{label}: an UPDATE without oldObject")
            return
        old["metadata"]["name"] = obj["metadata"]["name"]
        made = api.create(old, dry_run=False)
        if made.status >= 300:
            result.not_comparable.append(f"{label}: the old object is not admitted itself")
            return
        _keep_allocated(made.body, obj)
    request = make_request(case.operation, obj, old, namespace=namespace,
                           user=UserInfo(username="kubernetes-admin", groups=()),
                           dry_run=False, uid=f"eq-{index}")
    decision = engine.evaluate(request, cluster)
    try:
        answer = api.replace(obj) if case.operation == "UPDATE" else api.create(obj, dry_run=True)
    finally:
        if old is not None:
            api.delete(old)
    compare(label, decision, answer, result)


def test_every_suite_case_gets_the_same_verdict_natively(
    plane: Any, exported: tuple[PolicySet, ApiServer]
) -> None:
    native, api = exported
    engine = Engine(native)
    result = Comparison()
    shipped = [suite for path in suites.discover_suites(REPO / "policies")
               for suite in suites.load_suite(path)]
    assert shipped, "the shipped suites"
    index = itertools.count()
    for number, suite in enumerate(shipped):
        namespaces = suite_namespaces(plane, api, suite, f"e{number}-{uuid.uuid4().hex[:4]}")
        cluster = MemoryCluster(list(namespaces.values()))
        for case in suite.cases:
            label = f"{Path(suite.file).name}: {case.name}"
            judge_case(engine, cluster, api, case, namespaces, label, next(index), result)
    print(f"compared {result.compared}, not comparable {len(result.not_comparable)}")
    assert result.compared >= 100, (result.compared, result.not_comparable[:20])
    assert not result.differences, "\n".join(result.differences)


def generated(namespaces: list[str]) -> Iterator[dict[str, Any]]:
    """Well-typed Services and Ingresses: every combination of the fields policies read."""
    types = [("ClusterIP", {}), ("NodePort", {}), ("LoadBalancer", {}),
             ("ExternalName", {"externalName": "db.example.com"})]
    external_ips: list[dict[str, Any]] = [{}, {"externalIPs": ["192.0.2.10"]}]
    annotations: list[dict[str, str]] = [
        {}, {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"},
        {"networking.gke.io/load-balancer-type": "Internal"},
        {"edgewarden.dev/owner": "team-a"}, {"owner": "team-a", "tier": "web"}]
    ranges: list[dict[str, Any]] = [{}, {"loadBalancerSourceRanges": ["10.0.0.0/8"]},
                                    {"loadBalancerSourceRanges": ["0.0.0.0/0"]}]
    ports = [[{"name": "http", "port": 80}], [{"name": "https", "port": 443}],
             [{"name": "http", "port": 80}, {"name": "https", "port": 443}]]
    n = 0
    for ns, (kind, extra), ips, notes, port in itertools.product(
            namespaces, types, external_ips, annotations, ports):
        # loadBalancerSourceRanges is refused by the API server on other types
        for source in ranges if kind == "LoadBalancer" else [{}]:
            n += 1
            spec: dict[str, Any] = {"type": kind, **extra, **ips, **source, "ports": port}
            yield {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": f"g{n}", "namespace": ns,
                                **({"annotations": notes} if notes else {})},
                   "spec": spec}
    hosts = [["shop.example.com"], ["shop.example.com", "api.example.com"], []]
    tls: list[list[str] | None] = [None, ["shop.example.com"], ["*.example.com"]]
    classes = [None, "nginx"]
    snippets: list[dict[str, str]] = [{}, {"nginx.ingress.kubernetes.io/server-snippet": "x"}]
    for n, (ns, host_set, tls_hosts, ingress_class, notes) in enumerate(itertools.product(
            namespaces, hosts, tls, classes, snippets)):
        rules = [{"host": h, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "web", "port": {"number": 80}}}}]}} for h in host_set] or [
            {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "web", "port": {"number": 80}}}}]}}]
        ingress_spec: dict[str, Any] = {"rules": rules}
        if tls_hosts is not None:
            ingress_spec["tls"] = [{"hosts": tls_hosts, "secretName": "tls"}]
        if ingress_class is not None:
            ingress_spec["ingressClassName"] = ingress_class
        yield {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": f"i{n}", "namespace": ns,
                            **({"annotations": notes} if notes else {})},
               "spec": ingress_spec}


def test_generated_objects_get_the_same_verdict_natively(
    plane: Any, exported: tuple[PolicySet, ApiServer]
) -> None:
    native, api = exported
    engine = Engine(native)
    cluster_file = REPO / "policies" / "fixtures" / "cluster.yaml"
    fixture = suites.TestSuite(name="generated", file=cluster_file, policy_paths=(),
                               cluster_paths=(cluster_file,))
    namespaces = suite_namespaces(plane, api, fixture, f"gen-{uuid.uuid4().hex[:4]}")
    cluster = MemoryCluster(list(namespaces.values()))
    real = sorted(ns["metadata"]["name"] for ns in namespaces.values())
    result = Comparison()
    objects = list(generated(real))
    assert len(objects) >= 2000
    for index, obj in enumerate(objects):
        request = make_request("CREATE", obj, None, namespace=obj["metadata"]["namespace"],
                               user=UserInfo(username="kubernetes-admin", groups=()),
                               dry_run=False, uid=f"gen-{index}")
        decision = engine.evaluate(request, cluster)
        answer = api.create(obj, dry_run=True)
        compare(f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']} "
                f"{json.dumps(obj['spec'])[:200]}", decision, answer, result)
    print(f"compared {result.compared}, not comparable {len(result.not_comparable)}")
    assert result.compared >= 2000, result.not_comparable[:20]
    assert not result.differences, "\n".join(result.differences[:40])
