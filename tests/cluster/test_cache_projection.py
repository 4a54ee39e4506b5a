"""The watch cache keeps only what the policies read: cut at ingest, judged the same.

What a policy set reads comes from webhook/policy/load/reads.py; records.py holds each
kind's objects cut to it. The cut must be invisible to every reader: a field a policy
reads is there, a field none reads is gone, and the continuous audit, the counters and
the key indexes answer over the cut objects exactly as over whole ones.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, service
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_store import KubeStore
from webhook.cluster.memory import MemoryCluster, flatten_documents
from webhook.cluster.records import ABSENT, Shape
from webhook.offline.manifests import Manifest
from webhook.offline.results import ObjectResult
from webhook.offline.scan import audit_objects
from webhook.policy.cel.projection import merge, project
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.load.reads import FieldReads, covers, fields_read, patch_paths
from webhook.policy.model.kinds import key_of_object
from webhook.policy.model.policy import PolicySet

ROOT = Path(__file__).resolve().parents[2]
MakeCluster = Callable[..., KubeCluster]


def policy(name: str, validation: str, kinds: str = "Service") -> str:
    return f"""\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: {name}
spec:
  mode: Enforce
  failurePolicy: Fail
  match:
    kinds: [{kinds}]
    operations: [CREATE, UPDATE]
  validations:
    - expression: "{validation}"
      message: refused
"""


def load(tmp_path: Path, *documents: str) -> PolicySet:
    folder = tmp_path / f"policies-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for index, document in enumerate(documents):
        (folder / f"p{index}.yaml").write_text(document)
    return load_policies(str(folder))


def cluster_service(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    """A Service as the API server sends it: status, managedFields, a resourceVersion."""
    obj = service(name=name, namespace=ns, **spec)
    obj["metadata"].update({
        "uid": f"uid-{name}", "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z",
        "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}",
                        "team": "shop"},
    })
    obj["spec"]["sessionAffinity"] = "None"
    obj["status"] = {"loadBalancer": {}}
    return obj


# ---- what a policy set reads ----


def test_a_field_a_policy_reads_is_kept_and_one_no_policy_reads_is_dropped(
    tmp_path: Path,
) -> None:
    policies = load(tmp_path, policy("no-external-name", "object.spec.externalName != 'evil'"))
    store = KubeStore()
    store.set_field_reads(fields_read(policies.policies))
    store.upsert("Service", cluster_service("api", "shop", externalName="db.example.com",
                                            clusterIP="10.0.0.1"))

    [held] = store.objects("Service")

    assert held["spec"] == {"externalName": "db.example.com"}
    # What Python code reads: names, labels, annotations (the big one aside), the uid.
    assert held["metadata"] == {"name": "api", "namespace": "shop", "uid": "uid-api",
                                "annotations": {"team": "shop"}}
    assert held["kind"] == "Service" and held["apiVersion"] == "v1"
    assert "status" not in held


def test_without_field_reads_the_cache_keeps_objects_whole_but_slimmed() -> None:
    store = KubeStore()
    store.upsert("Service", cluster_service("api", "shop", clusterIP="10.0.0.1"))

    [held] = store.objects("Service")

    assert held["spec"]["clusterIP"] == "10.0.0.1" and held["spec"]["ports"]
    assert "managedFields" not in held["metadata"] and "status" not in held


def test_a_policy_that_uses_the_whole_object_keeps_it_whole(tmp_path: Path) -> None:
    policies = load(tmp_path, policy("whole", "size(object) > 0"))
    reads = fields_read(policies.policies)

    assert reads.of("Service") is None
    # Kinds no policy matches keep what Python code reads, nothing of the spec.
    assert reads.of("Ingress") == merge([("metadata", "name"), ("metadata", "generateName"),
                                          ("metadata", "namespace"), ("metadata", "uid"),
                                          ("metadata", "labels"), ("metadata", "annotations")])


def test_a_raw_patch_keeps_the_paths_it_touches() -> None:
    paths = patch_paths([
        {"op": "add", "path": "/spec/ports/-", "value": {"port": 1}},
        {"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "x"},
        {"op": "copy", "from": "/spec/selector", "path": "/spec/template/0/x"},
    ])

    assert paths == [("spec", "ports"), ("metadata", "labels", "app.kubernetes.io/name"),
                     ("spec", "template"), ("spec", "selector")]


def test_covers_says_whether_what_is_held_keeps_what_is_needed() -> None:
    narrow = merge([("spec", "type")])
    wide = merge([("spec", "type"), ("spec", "ports")])

    assert covers(wide, narrow)
    assert not covers(narrow, wide)
    assert covers(None, wide) and not covers(wide, None)


# ---- records ----

SHAPED = merge([("metadata", "name"), ("metadata", "namespace"), ("metadata", "labels"),
                ("spec", "type"), ("spec", "ports", "[]", "port"), ("spec", "tls", "x"),
                ("status", "loadBalancer", "ingress")])


@pytest.mark.parametrize("obj", [
    {"metadata": {"name": "a", "namespace": "n"}},
    {"metadata": {"name": "a", "namespace": "n", "labels": {}},
     "spec": {"type": None, "ports": [{"port": 80, "name": "http"}, {"name": "x"}]}},
    {"metadata": {"name": "a", "namespace": "n"}, "spec": {}, "status": {}},
    {"metadata": {"name": "a", "namespace": "n"}, "status": {"loadBalancer": {"ingress": []}},
     "spec": {"tls": {"x": {"y": 1}, "z": 2}}},
    # Not the layout (a list where a map is expected): held as the projected dict.
    {"metadata": {"name": "a", "namespace": "n"}, "spec": {"tls": [1, 2]}},
    {"metadata": {"name": "a", "namespace": "n"}, "spec": "not a map"},
], ids=["bare", "values", "empty-maps", "deep", "list-for-map", "scalar-for-map"])
def test_a_record_gives_back_what_the_projection_keeps(obj: dict[str, Any]) -> None:
    shape = Shape("Service", "v1", SHAPED)
    # What the cache held before, cut: metadata and spec (status is never kept).
    slimmed = {k: v for k, v in obj.items() if k in ("metadata", "spec")}
    expected = {"apiVersion": "v1", "kind": "Service", **project(slimmed, SHAPED)}

    assert shape.materialize(shape.record(obj)) == expected
    assert list(shape.materialize(shape.record(obj))) == list(expected)


def test_a_record_tells_a_null_from_an_absent_field() -> None:
    shape = Shape("Service", "v1", SHAPED)
    record = shape.record({"metadata": {"name": "a"}, "spec": {"type": None}})

    assert isinstance(record, tuple)
    assert shape.materialize(record)["spec"] == {"type": None}
    assert ABSENT in record  # ports, labels...: absent, not null


# ---- the cut objects are judged as the whole ones ----


def fixture_objects() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    files = [ROOT / "policies/fixtures/cluster.yaml",
             ROOT / "tests/audit/fixtures/cluster-state.yaml",
             *sorted((ROOT / "policies/fixtures").glob("*/*.yaml"))]
    for file in files:
        documents = list(yaml.safe_load_all(file.read_text()))
        found.extend(o for o in flatten_documents(documents)
                     if o.get("kind") and isinstance(o.get("metadata"), dict)
                     and o["metadata"].get("name"))
    unique: dict[tuple[str, str, str], dict[str, Any]] = {}
    for obj in found:  # as the API server sends them: every namespaced object has one
        if obj["kind"] != "Namespace":
            obj["metadata"].setdefault("namespace", "default")
        metadata = obj["metadata"]
        # Fixtures of several policies reuse names: a cluster holds one object of a name.
        unique.setdefault((key_of_object(obj), metadata.get("namespace", ""), metadata["name"]),
                          obj)
    return list(unique.values())


def comparable(result: ObjectResult) -> tuple[Any, ...]:
    """A judged object's result but the object it returns (the mutated object is the cut
    one); its findings whole: policy, outcome, message, patch."""
    findings = [dataclasses.replace(f, exception=None) for f in result.findings]
    return (result.resource, result.allowed, findings)


def test_the_audit_judges_the_cut_objects_as_it_judges_the_whole_ones() -> None:
    policies = load_policies(str(ROOT / "policies"))
    kinds = {ref.key for ref in policies.kinds()}
    objects = [o for o in fixture_objects()
               if key_of_object(o) in kinds or o["kind"] == "Namespace"]
    whole, cut = KubeStore(), KubeStore()
    cut.set_field_reads(fields_read(policies.policies))
    judged = 0
    for obj in objects:
        for store in (whole, cut):
            store.upsert(key_of_object(obj), copy.deepcopy(obj))
        judged += obj["kind"] != "Namespace"
    assert judged >= 20  # Services, Ingresses and routes of every shipped policy's fixtures

    def audit(store: KubeStore) -> Any:
        return audit_objects([Manifest(o, None) for o in store.snapshot()], policies, now=0.0)

    full, projected = audit(whole), audit(cut)

    assert [comparable(r) for r in projected.objects] == [comparable(r) for r in full.objects]
    assert projected.limits == full.limits
    assert projected.namespace_findings == full.namespace_findings
    assert any(f for r in full.objects for f in r.findings)  # the policies did find things
    # ...and the cut objects really are smaller.
    assert sum(len(repr(o)) for o in cut.snapshot()) < sum(len(repr(o)) for o in whole.snapshot())


def test_counters_and_key_indexes_answer_the_same_over_cut_objects() -> None:
    policies = load_policies(str(ROOT / "policies"))
    engine = Engine(policies)
    counters, indexes = engine.counters(), engine.key_indexes()
    assert counters and indexes
    memory = MemoryCluster(fixture_objects())
    cut = KubeStore()
    cut.set_field_reads(fields_read(policies.policies))
    cut.set_counters(counters)
    cut.set_key_indexes(indexes)
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for obj in fixture_objects():
        by_kind.setdefault(key_of_object(obj), []).append(obj)
    for kind, objs in by_kind.items():
        cut.replace(kind, copy.deepcopy(objs))  # a LIST: indexes built from its chunks
    assert_answers_as_memory(cut, memory, counters, indexes)


def assert_answers_as_memory(store: KubeStore, memory: MemoryCluster,
                             counters: list[Any], indexes: list[Any]) -> None:
    """``store`` counts and holds keys as the in-memory cluster of the fixture objects
    does, for every namespace and every key (and some are counted and held)."""
    namespaces = {str(o["metadata"]["name"]) for o in fixture_objects()
                  if o["kind"] == "Namespace"}
    namespaces |= {str(o["metadata"].get("namespace")) for o in fixture_objects()}
    counted = 0
    for counter in counters:
        for ns in sorted(namespaces):
            names = set(store.counted_names(ns, counter))
            assert names == set(memory.counted_names(ns, counter)), (counter.key, ns)
            counted += len(names)
    assert counted
    held = 0
    for index in indexes:
        for obj in fixture_objects():
            if key_of_object(obj) not in index.kinds:
                continue
            for key in index.keys_of(obj):
                answer = {k: set(v) for k, v in store.key_holders(index, key).items()}
                assert answer == {k: set(v) for k, v in memory.key_holders(index, key).items()}
                held += len(answer)
    assert held


# ---- reloads ----


def test_a_reload_reading_a_new_field_lists_again_and_a_narrower_one_does_not(
    tmp_path: Path, kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(namespace(name="shop"))
    kube_api.create(cluster_service("api", "shop", externalName="db.example.com"))
    type_only = fields_read(load(tmp_path, policy("a", "object.spec.type != 'x'")).policies)
    with_name = fields_read(load(tmp_path, policy(
        "b", "object.spec.type != 'x' && object.spec.externalName != 'y'")).policies)
    cluster = make_cluster()
    cluster.keep_fields(type_only)
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    [held] = [o for o in cluster.snapshot() if o["kind"] == "Service"]
    assert held["spec"] == {"type": "ClusterIP"}
    lists = len(kube_api.lists("services"))

    cluster.keep_fields(with_name)

    # Not synced (not ready, nothing judged from it) until the LIST with the new field.
    eventually(lambda: cluster.synced, what="the cache synced again with the new field")
    assert len(kube_api.lists("services")) == lists + 1
    [held] = [o for o in cluster.snapshot() if o["kind"] == "Service"]
    assert held["spec"] == {"type": "ClusterIP", "externalName": "db.example.com"}

    cluster.keep_fields(type_only)  # narrower: no LIST; the next one cuts to it

    assert cluster.synced
    assert len(kube_api.lists("services")) == lists + 1
    kube_api.compact()

    def relisted() -> bool:
        # A relist for its own reasons; expired again until seen, since the watch after the
        # last list may not be open yet (an expiry only ends the watches open at the time).
        # At least one relist: more on a loaded machine.
        kube_api.expire_watches()
        return len(kube_api.lists("services")) >= lists + 2

    eventually(relisted, what="a relist", timeout=60)
    eventually(lambda: [o["spec"] for o in cluster.snapshot() if o["kind"] == "Service"]
               == [{"type": "ClusterIP"}], what="the Service cut to the narrower fields",
               timeout=60)


def test_a_reload_that_needs_a_new_field_is_not_synced_until_it_has_it(
    tmp_path: Path, kube_api: KubeApi, make_cluster: MakeCluster
) -> None:
    kube_api.create(cluster_service("api", "shop", externalName="db.example.com"))
    type_only = fields_read(load(tmp_path, policy("a", "object.spec.type != 'x'")).policies)
    cluster = make_cluster()
    cluster.keep_fields(type_only)
    cluster.start()
    assert cluster.wait_synced(timeout=10)
    kube_api.fail("list", "services")  # the LIST the new field needs cannot be taken

    cluster.keep_fields(FieldReads({"Service": merge([("spec", "externalName")])}))

    eventually(lambda: cluster.state()["Service"]["errors"] >= 1, what="a failed relist")
    assert not cluster.synced
    assert not cluster.state()["Service"]["synced"]
    kube_api.clear_refusals()
    eventually(lambda: cluster.synced, what="synced once the LIST succeeds")
    [held] = [o for o in cluster.snapshot() if o["kind"] == "Service"]
    assert held["spec"] == {"externalName": "db.example.com"}


def test_the_canary_sample_keeps_objects_whole(tmp_path: Path) -> None:
    store = KubeStore(sample_size=2)
    store.set_field_reads(fields_read(load(tmp_path, policy("a", "true")).policies))
    for name in ("a", "b", "c"):
        store.upsert("Service", cluster_service(name, "shop", clusterIP="10.0.0.9"))

    sample = store.sample(10)

    assert [o["metadata"]["name"] for o in sample] == ["a", "b"]
    assert all(o["spec"]["clusterIP"] == "10.0.0.9" for o in sample)
    store.delete("Service", "shop", "a")
    store.upsert("Service", cluster_service("d", "shop"))
    assert [o["metadata"]["name"] for o in store.sample(10)] == ["b", "d"]


@dataclasses.dataclass
class CountingCounter:
    """Counts Services of one type, and how often it was asked (as a limit's where)."""

    value: str
    key: str = "type-counter"
    kind: str = "Service"
    projection: Any = dataclasses.field(
        default_factory=lambda: merge([("spec", "type")]))
    asked: int = 0

    def counts(self, obj: Mapping[str, Any]) -> bool:
        self.asked += 1
        return (obj.get("spec") or {}).get("type") == self.value


def test_a_list_asks_a_counter_once_per_distinct_value_of_what_it_reads(
    tmp_path: Path,
) -> None:
    policies = load(tmp_path, policy("a", "object.spec.type != 'x' && has(object.spec.ports)"))
    store = KubeStore()
    store.set_field_reads(fields_read(policies.policies))
    counter = CountingCounter("LoadBalancer")
    store.set_counters([counter])
    services = [cluster_service(f"s{i}", f"ns{i % 3}", type=("LoadBalancer" if i % 4 else
                                                              "ClusterIP")) for i in range(40)]
    services.append({"apiVersion": "v1", "kind": "Service",  # no spec at all
                     "metadata": {"name": "bare", "namespace": "ns0"}})

    store.replace("Service", services)

    assert counter.asked == 3  # LoadBalancer, ClusterIP, no spec
    for ns in ("ns0", "ns1", "ns2"):
        expected = {s["metadata"]["name"] for s in services
                    if s["metadata"]["namespace"] == ns
                    and s.get("spec", {}).get("type") == "LoadBalancer"}
        assert expected and set(store.counted_names(ns, counter)) == expected
    # A counter reading a field the records do not keep is asked about every object.
    wider = CountingCounter("LoadBalancer", key="wider",
                            projection=merge([("spec", "type"), ("spec", "clusterIP")]))
    store.replace("Service", [cluster_service(f"w{i}", "ns0", type="LoadBalancer")
                              for i in range(5)])
    store.add_counter(wider)
    assert wider.asked == 5
    store.replace("Service", services)
    # A counter registered at a reload is indexed from the records the same way.
    again = CountingCounter("LoadBalancer", key="registered-later")
    store.set_counters([counter, again])
    assert again.asked == 3
    assert {ns: set(store.counted_names(ns, again)) for ns in ("ns0", "ns1", "ns2")} == \
        {ns: set(store.counted_names(ns, counter)) for ns in ("ns0", "ns1", "ns2")}
