"""Reading manifests: multi-document YAML, Lists, empty documents, locations."""

from __future__ import annotations

import pytest

from webhook.errors import ManifestError
from webhook.offline.manifests import parse_manifests

MULTI = """\
---
# empty document above and below
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: a}
  - apiVersion: v1
    kind: Service
    metadata: {name: b}
---
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: c, namespace: web}
"""


def test_lists_are_flattened_and_empty_documents_skipped_with_lines() -> None:
    found = [
        (m.kind, m.name, m.location.document, m.location.line)
        for m in parse_manifests(MULTI, "chart.yaml")
    ]
    assert found == [
        ("Service", "a", 0, 7),
        ("Service", "b", 0, 10),
        ("Ingress", "c", 1, 15),
    ]


def test_namespace_is_read_from_metadata() -> None:
    [*_, ingress] = parse_manifests(MULTI, "chart.yaml")
    assert ingress.namespace == "web"


def test_a_list_item_that_is_not_an_object_is_located() -> None:
    with pytest.raises(ManifestError, match=r"x.yaml:3: list item is a string"):
        parse_manifests("kind: List\nitems:\n  - hello\n", "x.yaml")


def test_json_input_is_accepted() -> None:
    [service] = parse_manifests(
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j"}}', "s.json"
    )
    assert service.name == "j"
