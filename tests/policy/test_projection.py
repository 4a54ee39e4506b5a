"""Projections hand CEL only the fields expressions read, and never change a result."""

from __future__ import annotations

import cel
import pytest

from webhook.policy.cel.projection import merge, project, selected_paths

INGRESS = {
    "metadata": {"name": "shop", "labels": {"app": "shop"}, "annotations": {"a": "b"}},
    "spec": {
        "ingressClassName": "nginx",
        "rules": [
            {"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix"}]}},
            {"http": {"paths": []}},
        ],
        "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}, {"secretName": "default"}],
    },
}

EXPRESSIONS = [
    "object.spec.ingressClassName == 'nginx'",
    "has(object.metadata.annotations) && 'a' in object.metadata.annotations",
    "size(object.metadata.annotations) == 1",
    "object.spec.rules.all(r, !has(r.host) "
    "|| object.spec.tls.exists(t, has(t.hosts) && r.host in t.hosts))",
    "object.spec.rules.exists(r, true)",
    "object.spec.rules.filter(r, has(r.host)).map(x, x.http.paths.size()) == [1]",
    "object.spec.rules.map(r, r) == object.spec.rules",
    "object.metadata.labels.exists(k, k == 'app')",
    "object.exists(k, k == 'spec')",
    "object.spec.tls.filter(t, !has(t.hosts)).size() == 1",
    "object.spec.rules != null && size(object.spec.rules) == 2",
    "has(object.spec.defaultBackend)",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_projected_object_gives_the_same_result(expression: str) -> None:
    program = cel.compile(expression)
    projection = merge(selected_paths(expression).get("object", [()]))
    projected = project(INGRESS, projection)
    assert program.execute({"object": projected}) == program.execute({"object": INGRESS})


def test_only_selected_fields_are_kept() -> None:
    expression = "object.spec.rules.all(r, r.host != '')"
    projected = project(INGRESS, merge(selected_paths(expression)["object"]))
    assert projected == {"spec": {"rules": [{"host": "a.example.com"}, {}]}}


def test_a_bare_use_keeps_the_whole_object() -> None:
    assert merge(selected_paths("size(object) > 0")["object"]) is None


def test_words_inside_string_literals_only_widen_a_projection() -> None:
    paths = selected_paths("object.spec.type == 'object.metadata'")["object"]
    assert ("spec", "type") in paths
