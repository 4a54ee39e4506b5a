"""LIST pages decoded to the fields the cache keeps (webhook/cluster/list_pages.py): the
records, counts and keys are those of the whole objects, whatever the objects hold."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.kubeapi import KubeApi
from tests.support import namespace, service
from webhook.cluster import list_pages
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_store import KubeStore
from webhook.cluster.list_pages import PageDecoder
from webhook.cluster.memory import MemoryCluster
from webhook.cluster.records import Shape
from webhook.policy.cel.projection import merge
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.load.reads import fields_read
from webhook.policy.model.kinds import key_of_object

from .conftest import FAST
from .test_cache_projection import (
    SHAPED,
    assert_answers_as_memory,
    cluster_service,
    fixture_objects,
)

ROOT = Path(__file__).resolve().parents[2]
MakeCluster = Callable[..., KubeCluster]


def page(items: list[Any]) -> bytes:
    return orjson.dumps({"kind": "ServiceList", "apiVersion": "v1",
                         "metadata": {"resourceVersion": "9", "continue": "token"},
                         "items": items})


def test_a_page_is_decoded_to_the_projection_past_the_whole_sample() -> None:
    services = [cluster_service(f"s{i}", "shop", type="LoadBalancer") for i in range(4)]
    decode = PageDecoder(SHAPED, whole_first=2)

    first, second, third = (decode(page(services[:2])), decode(page(services[2:])),
                            decode(page(services[:1])))

    assert first["items"] == services[:2]  # the sample: whole
    for decoded in (second, third):
        assert decoded["metadata"] == {"resourceVersion": "9", "continue": "token"}
        for item in decoded["items"]:
            assert set(item) == {"metadata", "spec"}  # no status, no kind
            assert "managedFields" not in item["metadata"]
            assert set(item["spec"]) == {"type", "ports"}  # only what SHAPED keeps
    assert second["items"][0]["metadata"] == {"name": "s2", "namespace": "shop"}
    assert decode.decoded == 5 and decode.whole_pages == 0


def test_the_page_holding_the_samples_end_is_whole_only_up_to_it() -> None:
    services = [cluster_service(f"s{i}", "shop", type="LoadBalancer") for i in range(5)]
    decode = PageDecoder(SHAPED, whole_first=3)

    first, second = decode(page(services[:2])), decode(page(services[2:]))

    assert first["items"] == services[:2]
    assert second["metadata"] == {"resourceVersion": "9", "continue": "token"}
    assert second["items"][0] == services[2]  # the sample's last object: whole
    for item in second["items"][1:]:
        assert set(item) == {"metadata", "spec"} and set(item["spec"]) == {"type", "ports"}
    assert [i["metadata"]["name"] for i in second["items"]] == ["s2", "s3", "s4"]
    assert decode.decoded == 5 and decode.whole_pages == 0


def test_a_malformed_object_past_the_sample_has_its_page_decoded_whole() -> None:
    good = cluster_service("good", "shop", type="LoadBalancer")
    odd = copy.deepcopy(good)
    odd["spec"] = "not a map"
    decode = PageDecoder(SHAPED, whole_first=1)

    assert decode(page([good, odd]))["items"] == [good, odd]
    assert decode.whole_pages == 1


def test_without_a_projection_every_page_is_whole() -> None:
    services = [cluster_service("s", "shop", type="LoadBalancer")]
    assert PageDecoder(None)(page(services))["items"] == services


def test_a_malformed_object_has_its_page_decoded_whole() -> None:
    good = cluster_service("good", "shop", type="LoadBalancer")
    odd = copy.deepcopy(good)
    odd["spec"] = "not a map"
    decode = PageDecoder(SHAPED)

    decoded = decode(page([good, odd]))

    assert decoded["items"] == [good, odd]
    assert decode.whole_pages == 1


# Objects of any shape around the projection's fields: maps, lists, scalars and nulls where
# the projection expects maps, and fields it does not name.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                     st.text(max_size=4))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y", "port", "name", "ingress"]), inner, max_size=3)),
    max_leaves=8)


def _node(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(_json, st.dictionaries(st.sampled_from(keys), _json, max_size=len(keys)))


_objects = st.fixed_dictionaries(
    {"metadata": st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=3), "namespace": st.sampled_from(["a", "b"])},
        optional={"labels": st.dictionaries(st.text(max_size=2), st.text(max_size=2)),
                  "managedFields": _json, "uid": _json})},
    optional={"spec": _node(["type", "ports", "tls", "clusterIP"]),
              "status": _node(["loadBalancer"]), "extra": _json})


@settings(max_examples=300, deadline=None)
@given(st.lists(_objects, min_size=1, max_size=4))
def test_records_of_a_decoded_page_are_those_of_the_whole_objects(objects: list[Any]) -> None:
    shape = Shape("Service", "v1", SHAPED)
    decoded = PageDecoder(SHAPED)(page(objects))["items"]

    assert [shape.materialize(shape.record(item)) for item in decoded] == \
        [shape.materialize(shape.record(obj)) for obj in objects]


def _listed(store: KubeStore, kind: str, objects: list[Mapping[str, Any]]) -> None:
    """A LIST as the informer takes it: pages of bytes, each decoded by the sync."""
    sync = store.begin_list(kind)
    for start in range(0, len(objects), 3):
        sync.add(sync.decode(page(list(objects[start:start + 3])))["items"])
    sync.finish()


def test_counters_and_key_indexes_answer_the_same_over_decoded_pages() -> None:
    policies = load_policies(str(ROOT / "policies"))
    engine = Engine(policies)
    counters, indexes = engine.counters(), engine.key_indexes()
    memory = MemoryCluster(fixture_objects())
    store = KubeStore(sample_size=0)
    store.set_field_reads(fields_read(policies.policies))
    store.set_counters(counters)
    store.set_key_indexes(indexes)
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for obj in fixture_objects():
        by_kind.setdefault(key_of_object(obj), []).append(obj)
    projected = 0
    for kind, objs in by_kind.items():
        decoder = store.begin_list(kind).decode
        projected += decoder(page(list(objs)))["items"] != objs
        _listed(store, kind, copy.deepcopy(objs))
    assert projected  # some kinds' pages really were decoded to their projection

    assert_answers_as_memory(store, memory, counters, indexes)


class WideCounter:
    """Counts by a field no policy reads: the records do not keep it."""

    key = "by-cluster-ip"
    kind = "Service"
    projection = merge([("spec", "clusterIP")])

    def counts(self, obj: Mapping[str, Any]) -> bool:
        return (obj.get("spec") or {}).get("clusterIP") == "None"


def test_a_counter_reading_beyond_the_records_has_the_pages_decoded_whole(
    tmp_path: Path,
) -> None:
    store = KubeStore(sample_size=0)
    store.set_field_reads(fields_read(load_policies(str(ROOT / "policies")).policies))
    store.set_counters([WideCounter()])
    headless = [cluster_service(f"h{i}", "shop", clusterIP="None") for i in range(4)]

    assert store.begin_list("Service").decode(page(headless))["items"] == headless
    _listed(store, "Service", headless)
    assert set(store.counted_names("shop", WideCounter())) == {f"h{i}" for i in range(4)}


def test_the_informer_lists_pages_decoded_to_the_projection(
    kube_api: KubeApi, make_cluster: MakeCluster, monkeypatch: Any
) -> None:
    projected_pages: list[int] = []

    class Counting(PageDecoder):
        def __call__(self, data: bytes) -> dict[str, Any]:
            decoded = super().__call__(data)
            items = decoded.get("items") or []
            projected_pages.extend(1 for i in items[:1] if "resourceVersion" not in i["metadata"])
            return decoded

    monkeypatch.setattr(list_pages, "PageDecoder", Counting)
    monkeypatch.setattr("webhook.cluster.kube_store.PageDecoder", Counting)
    kube_api.create(namespace(name="shop"))
    for index in range(7):
        kube_api.create(service(name=f"s{index}", namespace="shop",
                                type="LoadBalancer" if index % 2 else "ClusterIP"))
    policies = load_policies(str(ROOT / "policies"))
    engine = Engine(policies)
    cluster = make_cluster(replace(FAST, page_size=2), sample_size=1)
    cluster.keep_fields(fields_read(policies.policies))
    cluster.register_counters(engine.counters())
    cluster.start()
    assert cluster.wait_synced(timeout=10)

    assert len(projected_pages) == 3  # pages 2-4 of Services; the first holds the sample
    held = {o["metadata"]["name"]: o for o in cluster.snapshot() if o["kind"] == "Service"}
    assert set(held) == {f"s{i}" for i in range(7)}
    assert all(o["spec"]["type"] == ("LoadBalancer" if int(n[1]) % 2 else "ClusterIP")
               for n, o in held.items())
    lb_counters = [c for c in engine.counters() if c.kind == "Service"]
    assert lb_counters
    counted = set().union(*(cluster.counted_names("shop", c) for c in lb_counters))
    assert counted == {"s1", "s3", "s5"}


def test_the_continue_token_is_read_without_decoding_the_page() -> None:
    assert list_pages.continue_token(page([{"metadata": {"name": "a"}}])) == "token"
    last = orjson.dumps({"kind": "ServiceList", "metadata": {"resourceVersion": "9"},
                         "items": [{"metadata": {"name": "a"}}]})
    assert list_pages.continue_token(last) is None
    empty = orjson.dumps({"metadata": {"continue": ""}, "items": []})
    assert list_pages.continue_token(empty) is None
    items_first = orjson.dumps({"items": [{"metadata": {"continue": "not-this"}}],
                                "metadata": {"continue": "t2", "remainingItemCount": 3}})
    assert list_pages.continue_token(items_first) == "t2"


def test_a_body_that_is_no_list_page_gives_no_token_or_the_decoding_error() -> None:
    assert list_pages.continue_token(b'{"metadata": "odd", "items": []}') is None
    assert list_pages.continue_token(b'{"metadata": {"continue": 7}}') is None
    assert list_pages.continue_token(b"[1, 2]") is None
    with pytest.raises(orjson.JSONDecodeError):  # as decoding the page would
        list_pages.continue_token(b"<html>not json</html>")


def test_the_next_page_is_asked_for_before_the_one_before_is_decoded(
    kube_api: KubeApi, make_cluster: MakeCluster, monkeypatch: Any
) -> None:
    lists_seen_while_decoding: list[int] = []

    class Slow(PageDecoder):
        def __call__(self, data: bytes) -> dict[str, Any]:
            if not lists_seen_while_decoding:
                # The first page: the API server is asked for the second meanwhile.
                deadline = time.monotonic() + 5
                while len(kube_api.lists("services")) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
            lists_seen_while_decoding.append(len(kube_api.lists("services")))
            return super().__call__(data)

    monkeypatch.setattr("webhook.cluster.kube_store.PageDecoder", Slow)
    kube_api.create(namespace(name="shop"))
    for index in range(5):
        kube_api.create(service(name=f"s{index}", namespace="shop"))
    cluster = make_cluster(replace(FAST, page_size=2), sample_size=1)
    cluster.start()
    assert cluster.wait_synced(timeout=15)

    assert lists_seen_while_decoding[0] >= 2
    held = {o["metadata"]["name"] for o in cluster.snapshot() if o["kind"] == "Service"}
    assert held == {f"s{i}" for i in range(5)}
