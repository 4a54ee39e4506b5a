"""Host ownership in the cluster backends: the watch cache and the in-memory cluster answer
with one rule (overlap, grants held by Namespaces), whatever order objects come and go in."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubeapi import KubeApi
from tests.kubeapi.resources import DEFAULT_RESOURCES, Resource
from tests.support import api_client, eventually, namespace, write_kubeconfig
from webhook.cluster.kube import KubeCluster
from webhook.cluster.kube_store import KubeStore
from webhook.cluster.memory import MemoryCluster
from webhook.policy.blocks.keys import UniqueIndex
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.request import make_request

from .conftest import FAST

ROOT = Path(__file__).parents[2]
POLICY = ROOT / "policies" / "unique-ingress-hosts.yaml"
GRANTS = "edgewarden.dev/allowed-hostnames"
GATEWAY_API = "gateway.networking.k8s.io/v1"
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")

Object = dict[str, Any]


def ingress(name: str, ns: str, host: str, path: str = "/", kind: str = "Prefix") -> Object:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": kind,
                 "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}}


def route(name: str, ns: str, host: str, path: str | None = None) -> Object:
    rule: Object = {"backendRefs": [{"name": name, "port": 80}]}
    if path is not None:
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": path}}]
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"hostnames": [host], "rules": [rule]}}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policies(POLICY))


def only_index(engine: Engine) -> UniqueIndex:
    (index,) = engine.key_indexes()
    return index


# ---- through the watch cache ----------------------------------------------------------


@pytest.fixture
def api() -> Iterator[KubeApi]:
    with KubeApi(resources=(*DEFAULT_RESOURCES, HTTPROUTES)) as made:
        for name in ("shop", "other"):
            made.create(namespace(name=name))
        yield made


@pytest.fixture
def cluster(api: KubeApi, tmp_path: Path, engine: Engine) -> Iterator[KubeCluster]:
    config = write_kubeconfig(tmp_path / "kubeconfig", server=api.url, ca_pem=api.ca_pem)
    made = KubeCluster(api_client(config), settings=FAST)
    made.watch_kinds(engine.policies.kinds())
    made.register_key_indexes(engine.key_indexes())
    made.start()
    assert made.wait_synced(timeout=10)
    yield made
    made.stop()


def verdict(engine: Engine, cluster: KubeCluster, obj: Object) -> str:
    """"admitted", or the denial message."""
    decision = engine.evaluate(make_request("CREATE", obj), cluster)
    return "admitted" if decision.allowed else decision.deny_message()


def test_a_grant_reserves_its_host_as_soon_as_the_watch_shows_the_annotation(
    api: KubeApi, cluster: KubeCluster, engine: Engine
) -> None:
    attempt = ingress("pay", "other", "pay.example.com")
    assert verdict(engine, cluster, attempt) == "admitted"

    api.update(namespace(name="shop", annotations={GRANTS: "pay.example.com"}))
    eventually(lambda: "reserved for namespace shop" in verdict(engine, cluster, attempt),
               what="the watch cache reserving the granted host")
    assert verdict(engine, cluster, ingress("pay", "shop", "pay.example.com")) == "admitted"

    api.update(namespace(name="shop"))  # the platform team takes the grant back
    eventually(lambda: verdict(engine, cluster, attempt) == "admitted",
               what="the watch cache releasing the host")
    api.update(namespace(name="shop", annotations={GRANTS: "*.example.com"}))
    eventually(lambda: "reserved for namespace shop" in verdict(engine, cluster, attempt))
    api.delete("namespaces", "shop")
    eventually(lambda: verdict(engine, cluster, attempt) == "admitted",
               what="a deleted namespace's grants going with it")


def test_the_watch_cache_finds_what_overlaps_as_routes_come_and_go(
    api: KubeApi, cluster: KubeCluster, engine: Engine
) -> None:
    index = only_index(engine)
    api.create(ingress("tenants", "shop", "*.wild.example.com"))
    api.create(route("cart", "shop", "shop.example.com", "/cart"))

    def found(key: str) -> dict[str, set[tuple[str, str, str]]]:
        return {k: set(v) for k, v in cluster.key_holders(index, key).items()}

    eventually(lambda: found("a.b.wild.example.com Exact /x") == {
        "*.wild.example.com Prefix /": {("Ingress", "shop", "tenants")}})
    eventually(lambda: found("shop.example.com Prefix /cart/items") == {
        "shop.example.com PathPrefix /cart": {("HTTPRoute", "shop", "cart")}})
    assert found("shop.example.com Prefix /cartx") == {}
    assert found("wild.example.com") == {}
    assert "overlaps shop.example.com/cart" in verdict(
        engine, cluster, route("grab", "other", "shop.example.com"))

    # A route that moves its path gives the old one up; a deleted Ingress all it had.
    api.update(route("cart", "shop", "shop.example.com", "/basket"))
    eventually(lambda: found("shop.example.com Prefix /cart/items") == {})
    api.delete("ingresses", "tenants", namespace="shop")
    eventually(lambda: found("a.b.wild.example.com Exact /x") == {})
    assert verdict(engine, cluster, ingress("a", "other", "a.wild.example.com")) == "admitted"


# ---- both backends, one rule --------------------------------------------------------------

HOSTS = ["shop.example.com", "a.shop.example.com", "*.shop.example.com", "*.example.com",
         "pay.example.com", "b.a.shop.example.com"]
PATHS = ["/", "/a", "/a/b", "/ab"]
NAMESPACES = ["shop", "pay", "other"]


def random_object(rng: random.Random, name: str, ns: str) -> Object:
    host = rng.choice(HOSTS)
    if rng.random() < 0.5:
        return ingress(name, ns, host, rng.choice(PATHS), rng.choice(["Prefix", "Exact"]))
    return route(name, ns, host, rng.choice([None, *PATHS]))


def random_namespace(rng: random.Random, name: str) -> Object:
    if rng.random() < 0.4:
        return namespace(name=name)
    grants = rng.sample(["pay.example.com", "*.shop.example.com", "*", "shop.example.com"],
                        k=rng.randint(1, 2))
    return namespace(name=name, annotations={GRANTS: ", ".join(grants)})


def kind_of(obj: Object) -> str:
    return str(obj["kind"])


def test_the_watch_cache_and_the_in_memory_cluster_agree_on_every_answer(
    engine: Engine,
) -> None:
    index = only_index(engine)
    rng = random.Random(1919)
    store, memory = KubeStore(), MemoryCluster()
    store.set_key_indexes([index])
    memory.register_key_indexes([index])
    live: dict[tuple[str, str, str], Object] = {}
    compared = 0
    for step in range(300):
        roll = rng.random()
        if roll < 0.15:
            ns = random_namespace(rng, rng.choice(NAMESPACES))
            store.upsert("Namespace", ns)
            memory.add(ns)
        elif roll < 0.25 and live:
            kind, ns_name, name = rng.choice(sorted(live))
            del live[(kind, ns_name, name)]
            store.delete(kind, ns_name, name)
            memory.remove(kind, ns_name, name)
        elif roll < 0.3:
            # A relist: the watch cache swaps in every Namespace at once.
            namespaces = [random_namespace(rng, name) for name in NAMESPACES]
            store.replace("Namespace", namespaces)
            for ns in namespaces:
                memory.add(ns)
        else:
            ns_name = rng.choice(NAMESPACES)
            obj = random_object(rng, f"o{rng.randrange(8)}", ns_name)
            key = (kind_of(obj), ns_name, obj["metadata"]["name"])
            live[key] = obj
            store.upsert(kind_of(obj), obj)
            memory.add(obj)
        probe = random_object(rng, "probe", rng.choice(NAMESPACES))
        keys = index.evaluate(probe)
        assert keys
        for key in keys:
            cached = {k: set(v) for k, v in store.key_holders(index, key).items()}
            assert cached == {k: set(v) for k, v in memory.key_holders(index, key).items()}, \
                f"step {step}: {key}"
            compared += bool(cached)
        # ...and so are the engine's verdicts over both, message for message.
        request = make_request("CREATE", probe)
        assert engine.evaluate(request, _View(store)).deny_message() == \
            engine.evaluate(request, memory).deny_message()
    assert compared > 100


class _View:
    """The watch cache's store as a ClusterView (KubeCluster without the informers)."""

    def __init__(self, store: KubeStore) -> None:
        self._store = store
        self.synced = True

    def get_namespace(self, name: str) -> Any:
        return self._store.get_namespace(name)

    def counted_names(self, namespace: str, counter: Any) -> Any:
        return self._store.counted_names(namespace, counter)

    def key_holders(self, index: Any, key: str) -> Any:
        return self._store.key_holders(index, key)
