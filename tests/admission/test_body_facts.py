"""What a review's bytes tell the engine (AdmissionRequest.facts: null_free, max_items):
always true of the parsed request, asked only for the kinds whose policies walk much, and
never a different decision than walking the object."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.review import parse_review
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.nulls import holds_null
from webhook.policy.model.request import AdmissionRequest, make_request

from .harness import load_review

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _review_bytes(operation: str, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                  namespace: str) -> bytes:
    """The review as the API server sends it: both objects present, null when absent."""
    offline = make_request(operation, obj, old, namespace=namespace)
    request = {**offline.raw, "object": obj, "oldObject": old, "options": None}
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "request": request})


def _largest_collection(value: Any) -> int:
    pending, largest = [value], 0
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            largest = max(largest, len(current))
            pending.extend(current.values())
        elif isinstance(current, list):
            largest = max(largest, len(current))
            pending.extend(current)
    return largest


def test_a_create_as_the_api_server_sends_it_is_null_free() -> None:
    # The captured review carries "oldObject": null (and no other null): that is the
    # envelope's, not a null inside the object.
    request = parse_review(orjson.dumps(load_review("nodeport-create-payments.json"))).request
    assert request.old_object is None and request.facts is not None
    assert request.facts.null_free is True
    assert request.facts.max_items >= _largest_collection(request.raw)


@pytest.mark.parametrize("where", [
    ("metadata", "annotations"),
    ("spec", "ports", 0, "name"),
])
def test_a_null_inside_the_object_is_told(where: tuple[str | int, ...]) -> None:
    obj = yaml.safe_load((FIXTURES / "services" / "loadbalancer.yaml").read_text())
    target: Any = obj
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = None
    facts = parse_review(_review_bytes("CREATE", obj, None, "payments")).request.facts
    assert facts is not None and facts.null_free is False


def test_null_written_inside_a_string_makes_the_body_say_nothing() -> None:
    obj = yaml.safe_load((FIXTURES / "services" / "clusterip.yaml").read_text())
    obj["metadata"]["annotations"] = {"note": "null and void"}
    facts = parse_review(_review_bytes("CREATE", obj, None, "dev")).request.facts
    assert facts is not None and facts.null_free is False


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner,
                                                              max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=6), _JSON, max_size=6),
       old=st.none() | st.dictionaries(st.text(max_size=6), _JSON, max_size=6))
def test_what_the_bytes_tell_is_true_of_any_object(obj: dict[str, Any],
                                                   old: dict[str, Any] | None) -> None:
    document = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u", "operation": "UPDATE" if old else "CREATE",
                            "kind": {"kind": "Service", "version": "v1"},
                            "resource": {"resource": "services", "version": "v1"},
                            "namespace": "dev", "object": obj, "oldObject": old}}
    facts = parse_review(orjson.dumps(document)).request.facts
    assert facts is not None
    if facts.null_free:
        assert not holds_null(obj)
        assert old is None or not holds_null(old)
    assert facts.max_items >= _largest_collection(document)


# ---- the engine decides the same with and without them ----------------------------------


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policies(ROOT / "policies"))


@pytest.fixture(scope="module")
def cluster() -> MemoryCluster:
    cluster = MemoryCluster()
    for name, labels in (("payments", {"environment": "production"}), ("dev", {})):
        cluster.add({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name, "labels": labels}})
    return cluster


def _objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for folder in ("services", "ingresses"):
        for path in sorted((FIXTURES / folder).glob("*.yaml")):
            found.append((f"{folder}/{path.stem}", yaml.safe_load(path.read_text())))
    return found


def _variants(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The object as written; with nulls where policies read; grown past the sizes the
    cost estimates assume (over 100 items), which the engine must still walk."""
    nulls = copy.deepcopy(obj)
    nulls["metadata"]["annotations"] = None
    nulls["metadata"].setdefault("labels", {})["team"] = None
    if obj["kind"] == "Ingress":
        nulls["spec"]["tls"] = None
        nulls["spec"]["rules"].append({"host": None, "http": None})
    else:
        nulls["spec"]["externalIPs"] = None
    grown = copy.deepcopy(obj)
    if obj["kind"] == "Ingress":
        rule = grown["spec"]["rules"][0]
        grown["spec"]["rules"] = [{**rule, "host": f"h{i}.example.com"} for i in range(150)]
    else:
        grown["spec"]["ports"] = [{"name": f"p{i}", "port": 1000 + i, "protocol": "TCP"}
                                  for i in range(150)]
    return [("as written", obj), ("with nulls", nulls), ("grown", grown)]


def _cases() -> list[Any]:
    cases = []
    for name, obj in _objects():
        for variant, shaped in _variants(obj):
            for namespace in ("payments", "dev"):
                cases.append(pytest.param(shaped, namespace, variant,
                                          id=f"{name}-{variant}-{namespace}"))
    return cases


def _told_nothing(request: AdmissionRequest) -> AdmissionRequest:
    return dataclasses.replace(request, facts=None)


@pytest.mark.parametrize("obj, namespace, variant", _cases())
def test_the_engine_decides_alike_with_and_without_the_facts(
    engine: Engine, cluster: MemoryCluster, obj: dict[str, Any], namespace: str, variant: str
) -> None:
    old = copy.deepcopy(obj)
    old["metadata"].setdefault("labels", {})["revision"] = "1"
    for operation, previous in (("CREATE", None), ("UPDATE", old)):
        request = parse_review(_review_bytes(operation, obj, previous, namespace)).request
        facts = request.facts
        assert facts is not None
        if variant == "as written" and operation == "CREATE":  # the shortcuts can be taken
            assert facts.null_free and facts.max_items <= 100
            facts = parse_review(_review_bytes(operation, obj, previous, namespace)).request.facts
        request = dataclasses.replace(request, facts=facts)
        told = engine.evaluate(request, cluster)
        walked = engine.evaluate(_told_nothing(request), cluster)
        assert told == walked
        # Asked for the kinds a unique block indexes (their policies walk lists), only.
        assert facts is not None and facts.searched is (obj["kind"] == "Ingress")
