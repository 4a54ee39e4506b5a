"""The API double itself, where no product test exercises it yet: it must answer as the real
API server does, or the tests built on it prove nothing."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kubeapi import SERVICE_ACCOUNT, KubeApi, Resource
from tests.support import api_client, eventually, namespace, service, write_kubeconfig

GATEWAYS = Resource("gateway.networking.k8s.io", "v1", "Gateway", "gateways")


@pytest.fixture
def core(kubeconfig: Path) -> Iterator[client.CoreV1Api]:
    with api_client(kubeconfig) as api:
        yield client.CoreV1Api(api)


def refused(call: Callable[..., object], *args: object, **kwargs: object) -> tuple[int, Any]:
    with pytest.raises(ApiException) as error:
        call(*args, **kwargs)
    return error.value.status, json.loads(error.value.body or "{}")


def raw(response: Any) -> Any:
    """The JSON the double sent (a call made with ``_preload_content=False``)."""
    return json.loads(response.data)


def config_map(name: str, resource_version: str | None = None, **data: str) -> client.V1ConfigMap:
    metadata = client.V1ObjectMeta(name=name, resource_version=resource_version)
    return client.V1ConfigMap(metadata=metadata, data=data)


def test_a_stale_update_is_a_conflict_and_a_current_one_bumps_the_version(
    kube_api: KubeApi, core: client.CoreV1Api
) -> None:
    created = raw(core.create_namespaced_config_map(
        "shop", config_map("settings", mode="a"), _preload_content=False))
    fresh = config_map("settings", created["metadata"]["resourceVersion"], mode="b")
    updated = raw(core.replace_namespaced_config_map(
        "settings", "shop", fresh, _preload_content=False))
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    code, status = refused(core.replace_namespaced_config_map, "settings", "shop", fresh)

    assert (code, status["reason"]) == (409, "Conflict")
    assert kube_api.get("configmaps", "settings", namespace="shop")["data"] == {"mode": "b"}
    code, status = refused(core.create_namespaced_config_map, "shop", config_map("settings"))
    assert (code, status["reason"]) == (409, "AlreadyExists")


def test_patches_merge_or_apply_and_a_strategic_merge_is_unsupported(
    kube_api: KubeApi, core: client.CoreV1Api
) -> None:
    kube_api.create(service(name="web", namespace="shop", labels={"app": "web"}))

    core.patch_namespaced_service("web", "shop", {"metadata": {"labels": {"app": None, "t": "1"}}},
                                  _content_type="application/merge-patch+json")
    core.patch_namespaced_service("web", "shop", [{"op": "replace", "path": "/spec/type",
                                                   "value": "NodePort"}],
                                  _content_type="application/json-patch+json")

    stored = kube_api.get("services", "web", namespace="shop")
    assert stored["metadata"]["labels"] == {"t": "1"} and stored["spec"]["type"] == "NodePort"
    code, _ = refused(core.patch_namespaced_service, "web", "shop", {"spec": {}},
                      _content_type="application/strategic-merge-patch+json")
    assert code == 415


def test_forbid_refuses_one_verb_on_one_resource_as_rbac_words_it(
    kube_api: KubeApi, core: client.CoreV1Api
) -> None:
    kube_api.create(namespace(name="shop"))
    kube_api.forbid("list", "secrets")

    code, status = refused(core.list_namespaced_secret, "shop")

    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        f'secrets is forbidden: User "{SERVICE_ACCOUNT}" cannot list resource "secrets" in '
        'API group "" in the namespace "shop"'
    )
    # Other verbs still work.
    assert raw(core.read_namespace("shop", _preload_content=False))["metadata"]["name"] == "shop"
    assert [r.verb for r in kube_api.requests] == ["list", "get"]


def test_delete_and_missing_objects(kube_api: KubeApi, core: client.CoreV1Api) -> None:
    kube_api.create(namespace(name="shop"))
    core.delete_namespace("shop")
    assert not kube_api.exists("namespaces", "shop")
    code, status = refused(core.read_namespace, "shop")
    assert (code, status["message"]) == (404, 'namespaces "shop" not found')


def test_a_watch_without_a_resource_version_starts_with_the_current_objects(
    kube_api: KubeApi, core: client.CoreV1Api
) -> None:
    kube_api.create(service(name="a", namespace="shop"))
    kube_api.create(service(name="b", namespace="blog"))

    response: Any = core.list_namespaced_service(
        "shop", watch=True, timeout_seconds=1, _preload_content=False
    )
    events = [json.loads(line) for line in response.read().splitlines()]

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_stalled_watches_hold_events_until_the_block_ends() -> None:
    with KubeApi(tls=False) as plain, socket.create_connection(_address(plain.url)) as sock:
        path = f"/api/v1/services?watch=true&resourceVersion={plain.revision}"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 200")
        while stream.readline() != b"\r\n":  # the headers
            pass
        with plain.stalled_watches():
            plain.create(service(name="late", namespace="shop"))
            # Absence can only be shown by waiting a little: nothing arrives while stalled.
            assert select.select([sock], [], [], 0.3)[0] == []
        int(stream.readline(), 16)  # the chunk size
        event = json.loads(stream.readline())
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "late")


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("://")[1].split(":")
    return host, int(port)


def test_a_new_kind_is_one_resource_line(kube_api: KubeApi, kubeconfig: Path) -> None:
    kube_api.add_resource(GATEWAYS)
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "infra"},
        "spec": {"gatewayClassName": "x"},
    }

    with api_client(kubeconfig) as api:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", "infra",
                                               "gateways", gateway)
        listed: Any = custom.list_cluster_custom_object(
            "gateway.networking.k8s.io", "v1", "gateways"
        )

    assert [g["metadata"]["name"] for g in listed["items"]] == ["edge"]
    assert kube_api.get("gateways", "edge", namespace="infra")["spec"] == {"gatewayClassName": "x"}


def test_plain_http_serves_the_same_api(tmp_path: Path) -> None:
    with KubeApi(tls=False) as plain:
        plain.create(namespace(name="shop"))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=plain.url)
        with api_client(kubeconfig) as api:
            core = client.CoreV1Api(api)
            items = eventually(lambda: raw(core.list_namespace(_preload_content=False))["items"])
    assert plain.url.startswith("http://127.0.0.1:")
    assert [n["metadata"]["name"] for n in items] == ["shop"]


# -- custom resources with the status subresource -----------------------------------------


def test_status_is_written_only_through_the_status_subresource(kubeconfig: Path) -> None:
    from tests.kubeapi import POLICIES

    with KubeApi(resources=(POLICIES,)) as api, api_client(
        write_kubeconfig(kubeconfig.with_name("crd"), server=api.url, ca_pem=api.ca_pem)
    ) as connection:
        custom = client.CustomObjectsApi(connection)
        group, version, plural = "edgewarden.dev", "v1alpha1", "policies"
        body = {"apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
                "metadata": {"name": "p"}, "spec": {"mode": "Warn"}, "status": {"x": 1}}
        created = raw(custom.create_cluster_custom_object(
            group, version, plural, body, _preload_content=False))
        assert created["metadata"]["generation"] == 1 and "status" not in created

        patched = raw(custom.patch_cluster_custom_object_status(
            group, version, plural, "p", {"status": {"ready": True}, "spec": {"mode": "Audit"}},
            _content_type="application/merge-patch+json", _preload_content=False))
        assert patched["status"] == {"ready": True}
        assert patched["spec"] == {"mode": "Warn"} and patched["metadata"]["generation"] == 1

        changed = raw(custom.patch_cluster_custom_object(
            group, version, plural, "p", {"spec": {"mode": "Audit"}, "status": {"ready": False}},
            _content_type="application/merge-patch+json", _preload_content=False))
        assert changed["metadata"]["generation"] == 2
        assert changed["status"] == {"ready": True}, "a write to the object keeps its status"


def test_a_list_honours_an_equality_label_selector(kube_api: KubeApi,
                                                    core: client.CoreV1Api) -> None:
    kube_api.create(service(name="mine", namespace="shop", labels={"owner": "me"}))
    kube_api.create(service(name="theirs", namespace="shop", labels={"owner": "them"}))
    listed = raw(core.list_namespaced_service("shop", label_selector="owner=me",
                                              _preload_content=False))
    assert [item["metadata"]["name"] for item in listed["items"]] == ["mine"]
