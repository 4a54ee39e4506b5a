"""The watch cache follows the kinds the policies name: Gateway API kinds included, a kind
whose CRD is not installed is no objects, a kind no policy names is not watched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import FAST
from tests.kubeapi import KubeApi
from tests.kubeapi.resources import DEFAULT_RESOURCES, Resource
from tests.support import api_client, eventually, namespace, service, write_kubeconfig
from tests.support.gateway import httproute
from webhook.cluster.kube import KubeCluster
from webhook.policy.model.kinds import SHORT_NAMES

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")


@pytest.fixture
def gateway_api() -> Iterator[KubeApi]:
    with KubeApi(resources=(*DEFAULT_RESOURCES, HTTPROUTES)) as api:
        yield api


def cluster_of(api: KubeApi, tmp_path: Path) -> KubeCluster:
    config = write_kubeconfig(tmp_path / "kubeconfig", server=api.url, ca_pem=api.ca_pem)
    return KubeCluster(api_client(config), settings=FAST)


def test_the_cache_watches_exactly_the_kinds_it_is_told(
    gateway_api: KubeApi, tmp_path: Path
) -> None:
    gateway_api.create(namespace(name="shop"))
    gateway_api.create(service(name="web", namespace="shop"))
    gateway_api.create(httproute(name="r1", namespace="shop", hostnames=["a.example.com"]))
    cluster = cluster_of(gateway_api, tmp_path)
    cluster.watch_kinds([SHORT_NAMES["HTTPRoute"]])
    cluster.start()
    try:
        assert cluster.wait_synced(timeout=10)
        assert sorted(cluster.state()) == ["HTTPRoute", "Namespace"]
        assert {o["kind"] for o in cluster.snapshot()} == {"Namespace", "HTTPRoute"}
        assert gateway_api.lists("services") == []
        # A reload that names Services starts their informer; HTTPRoutes are dropped.
        cluster.watch_kinds([SHORT_NAMES["Service"]])
        eventually(lambda: cluster.synced, timeout=10)
        assert sorted(cluster.state()) == ["Namespace", "Service"]
        eventually(lambda: {o["kind"] for o in cluster.snapshot()} == {"Namespace", "Service"},
                   timeout=10)
    finally:
        cluster.stop()


def test_a_kind_whose_crd_is_not_installed_is_synced_and_empty(
    kube_api: KubeApi, tmp_path: Path
) -> None:
    kube_api.create(namespace(name="shop"))
    cluster = cluster_of(kube_api, tmp_path)
    cluster.watch_kinds([SHORT_NAMES["Gateway"], SHORT_NAMES["Service"]])
    cluster.start()
    try:
        assert cluster.wait_synced(timeout=10)
        assert cluster.state()["Gateway"]["objects"] == 0
    finally:
        cluster.stop()


def test_a_kind_not_served_is_looked_for_again_quietly(
    kube_api: KubeApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without Gateway API, each Gateway kind is looked for again every few seconds for as
    # long as the server runs: one warning says so, the retries themselves say nothing.
    caplog.set_level(logging.INFO, logger="edgewarden.cluster")
    cluster = cluster_of(kube_api, tmp_path)
    cluster.watch_kinds([SHORT_NAMES["Gateway"]])
    cluster.start()
    try:
        assert cluster.wait_synced(timeout=10)
        # FAST backs off from 20 ms: many rounds of LIST and WATCH in this time.
        eventually(lambda: cluster.state()["Gateway"]["relists"] >= 3, timeout=10)
    finally:
        cluster.stop()
    lines = [r.getMessage() for r in caplog.records if "Gateway" in r.getMessage()]
    assert sum("does not serve Gateway" in line for line in lines) == 1
    assert not [line for line in lines if "watch expired" in line]


def test_a_live_audit_lists_the_kinds_the_policies_name_and_only_those(
    gateway_api: KubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    import webhook.cli  # noqa: F401  (registers every command on the app)
    from tests.support import use_kubeconfig
    from webhook.cli.app import app

    gateway_api.create(namespace(name="shop"))
    gateway_api.create(service(name="web", namespace="shop"))
    gateway_api.create(httproute(name="r1", namespace="shop"))  # no hostnames: a warning
    use_kubeconfig(monkeypatch, write_kubeconfig(tmp_path / "kubeconfig", server=gateway_api.url,
                                                 ca_pem=gateway_api.ca_pem))
    policies = Path(__file__).parent / "fixtures-policies.yaml"
    result = CliRunner().invoke(app, ["audit", "--policies", str(policies), "-o", "json"],
                                catch_exceptions=False)
    report = json.loads(result.stdout)
    found = {(r["resource"]["kind"], r["resource"]["name"]): [f["result"] for f in r["findings"]]
             for r in report["results"]}
    assert found == {("HTTPRoute", "r1"): ["warn"], ("Service", "web"): ["pass"]}
    assert gateway_api.lists("httproutes") and gateway_api.lists("services")
    assert gateway_api.lists("ingresses") == []  # no policy names Ingress
