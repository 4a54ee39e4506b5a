"""The object's plain fields bound at once (engine/prebind.py) are the values the lazy
binding gives, and every other binding is left to it: for any object (nulls, lists, maps,
odd types, non-dict mappings), reading every binding through an activation that was
prebound gives what reading it through one that was not gives, or fails alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.review import parse_review
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.context import RequestContext
from webhook.policy.engine.evaluation import Engine
from webhook.policy.engine.prebind import prebinder
from webhook.policy.load.loader import load_policies
from webhook.policy.model.exceptions import NO_EXCEPTIONS
from webhook.policy.model.request import AdmissionRequest, make_request

REPO = Path(__file__).parents[2]

FIELDS = ["spec", "metadata", "type", "rules", "tls", "annotations", "name", "externalIPs"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 3),
                    st.sampled_from(["", "LoadBalancer", "a.example.com"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
        # A mapping that is not a dict: the prebinder leaves it to the lazy binding.
        st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3).map(MappingProxyType),
    ),
    max_leaves=14,
)
objects = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)
UNBOUND = object()


@pytest.fixture(scope="module")
def compiled() -> CompiledPolicies:
    return CompiledPolicies.compile(load_policies(REPO / "policies"))


def admitted(request: AdmissionRequest) -> AdmissionRequest:
    """As the server builds it: from the review's bytes, so it carries the body's facts."""
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {**request.raw, "object": request.object, "oldObject": None}}
    return parse_review(orjson.dumps(review)).request


def read_all(compiled: CompiledPolicies, request: AdmissionRequest, prebound: bool,
             body_facts: bool) -> dict[str, Any]:
    state = RequestContext(request, MemoryCluster(), compiled.bindings, compiled.memo,
                           NO_EXCEPTIONS, body_facts=body_facts,
                           prebind=compiled.prebinders.get(request.key) if prebound else None)
    activation = state.activation
    read: dict[str, Any] = {}
    for name, binding in compiled.bindings.items():
        if binding.variable not in ("object", "request"):
            continue
        try:
            read[name] = activation[name]
        except KeyError:
            read[name] = UNBOUND
    return read


def subject(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    api = {"Service": "v1", "Ingress": "networking.k8s.io/v1"}[kind]
    return {"apiVersion": api, "kind": kind, **fields}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["Service", "Ingress"]), fields=objects)
def test_prebound_values_are_the_lazy_ones(compiled: CompiledPolicies, kind: str,
                                           fields: dict[str, Any]) -> None:
    request = make_request("CREATE", subject(kind, fields), namespace="shop")
    assert read_all(compiled, request, True, False) == read_all(compiled, request, False, False)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["Service", "Ingress"]), fields=objects)
def test_prebound_values_are_the_lazy_ones_with_the_body_facts(
        compiled: CompiledPolicies, kind: str, fields: dict[str, Any]) -> None:
    """With the body's facts a list or map free of nulls is bound whole (and one holding
    a null is not): still what the lazy binding gives."""
    plain = {k: v for k, v in fields.items() if not isinstance(v, MappingProxyType)}
    try:
        request = admitted(make_request("CREATE", subject(kind, plain), namespace="shop"))
    except TypeError:
        return  # a mapping proxy deeper down: not JSON, no review carries it
    assert read_all(compiled, request, True, True) == read_all(compiled, request, False, True)


def test_the_shipped_kinds_bind_their_plain_fields_at_once(compiled: CompiledPolicies) -> None:
    """The prebinder does bind: a Service's type and has() tests are in the activation
    before any expression reads them; a list is not, without the body's facts."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]}}
    state = RequestContext(make_request("CREATE", service, namespace="shop"), MemoryCluster(),
                           compiled.bindings, compiled.memo, NO_EXCEPTIONS,
                           prebind=compiled.prebinders["Service"])
    bound = dict(state.activation)
    by_path = {(b.path, b.presence): name for name, b in compiled.bindings.items()
               if b.variable == "object"}
    assert bound[by_path[("spec", "type"), False]] == "LoadBalancer"
    assert bound[by_path[("spec", "type"), True]] is True
    assert bound[by_path[("spec", "externalIPs"), True]] is True
    assert by_path[("spec", "externalIPs"), False] not in bound  # walked for nulls: lazy
    assert state.activation[by_path[("spec", "externalIPs"), False]] == ["1.2.3.4"]

    # An Ingress from a review whose body holds no null: its rules are bound whole.
    ingress = admitted(make_request("CREATE", subject("Ingress", {
        "metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example.com"}]}}),
        namespace="shop"))
    state = RequestContext(ingress, MemoryCluster(), compiled.bindings, compiled.memo,
                           NO_EXCEPTIONS, body_facts=True,
                           prebind=compiled.prebinders["Ingress"])
    rules = by_path[("spec", "rules"), False]
    assert dict(state.activation)[rules] is ingress.object["spec"]["rules"]  # type: ignore[index]


def test_kinds_without_object_fields_have_no_prebinder(compiled: CompiledPolicies) -> None:
    assert prebinder([]) is None
    assert set(compiled.prebinders) <= set(compiled.by_kind)


def test_decisions_are_the_same_with_and_without_prebinding(
        compiled: CompiledPolicies) -> None:
    """The shipped policies decide every fixture Service and Ingress alike either way."""
    cluster = MemoryCluster()
    eager = Engine(compiled)
    lazy = Engine(dataclasses.replace(compiled, prebinders={}))
    judged = 0
    for path in sorted((REPO / "policies" / "fixtures").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not isinstance(document, dict) or document.get("kind") not in ("Service",
                                                                            "Ingress"):
                continue
            for namespace in ("shop", "payments", "team-a"):
                request = make_request("CREATE", document, namespace=namespace)
                assert eager.evaluate(request, cluster) == lazy.evaluate(request, cluster), path
                judged += 1
    assert judged > 20
