#!/usr/bin/env python3
"""Generate the trimmed Kubernetes schemas edgewarden ships for its static CEL checks.

kubernetes-validate (a test dependency, ~100 MB) bundles the OpenAPI schemas of every
Kubernetes version as JSON Schema. The loader needs only the shape of the kinds policies
read (field names, types, list bounds), so this keeps exactly that: each $ref resolved in
place, descriptions, enums and patch metadata dropped. Writes
webhook/policy/schemas/<group>.<version>.<Kind>.json; ``--check`` exits 1 when the
shipped copies differ from what this would write (a test runs it).

    .venv/bin/python scripts/trim_k8s_schemas.py [--version 1.37.0] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "webhook" / "policy" / "schemas"
VERSION = "1.37.0"

# (group, version, kind) -> the definition it comes from.
KINDS = {
    ("", "v1", "Service"): "io.k8s.api.core.v1.Service",
    ("networking.k8s.io", "v1", "Ingress"): "io.k8s.api.networking.v1.Ingress",
    ("", "v1", "Namespace"): "io.k8s.api.core.v1.Namespace",
}
_KEEP = ("format", "maxItems", "maxLength", "maxProperties")


def file_name(group: str, version: str, kind: str) -> str:
    return f"{group or 'core'}.{version}.{kind}.json"


def _definitions(version: str) -> dict[str, Any]:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    data = json.loads((base / f"v{version}-local" / "_definitions.json").read_text())
    definitions: dict[str, Any] = data["$defs"]
    return definitions


def trim(node: dict[str, Any], definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """The shape of ``node``: type, properties, items, additionalProperties, bounds."""
    ref = node.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:  # recursive types (none in the kinds above) stay open
            return {}
        return trim(definitions[name], definitions, (*seen, name))
    if "oneOf" in node:
        kinds = {_type_of(choice) for choice in node["oneOf"]}
        if kinds == {"string", "integer"}:
            return {"x-kubernetes-int-or-string": True}
        return {}
    out: dict[str, Any] = {}
    kind = _type_of(node)
    if kind:
        out["type"] = kind
    for key in _KEEP:
        if key in node:
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {
            name: trim(child, definitions, seen)
            for name, child in sorted(node["properties"].items())
        }
    if "items" in node:
        out["items"] = trim(node["items"], definitions, seen)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = trim(node["additionalProperties"], definitions, seen)
    return out


def _type_of(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else ""
    return kind or ""


def admission_request(definitions: dict[str, Any]) -> dict[str, Any]:
    """What CEL sees as ``request`` (admission.k8s.io/v1 AdmissionRequest, without the
    objects, as in ValidatingAdmissionPolicy). Not in the OpenAPI documents: written here."""
    gvk = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("group", "version", "kind")},
    }
    gvr = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("group", "version", "resource")},
    }
    strings = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "dryRun": {"type": "boolean"},
            "kind": gvk,
            "name": strings,
            "namespace": strings,
            "operation": strings,
            "options": {"type": "object"},
            "requestKind": gvk,
            "requestResource": gvr,
            "requestSubResource": strings,
            "resource": gvr,
            "subResource": strings,
            "uid": strings,
            "userInfo": trim(definitions["io.k8s.api.authentication.v1.UserInfo"], definitions),
        },
    }


def generate(version: str) -> dict[str, str]:
    """File name -> content of every schema to ship."""
    definitions = _definitions(version)
    documents = {
        file_name(*gvk): trim(definitions[name], definitions) for gvk, name in KINDS.items()
    }
    documents[file_name("admission.k8s.io", "v1", "AdmissionRequest")] = admission_request(
        definitions
    )
    documents["SOURCE"] = {"kubernetes": version, "generator": "scripts/trim_k8s_schemas.py"}
    return {
        (name if name != "SOURCE" else "source.json"): json.dumps(doc, indent=1, sort_keys=True)
        + "\n"
        for name, doc in documents.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", default=VERSION, help="Kubernetes version (default %(default)s)"
    )
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    wanted = generate(args.version)
    if args.check:
        stale = [
            name
            for name, text in wanted.items()
            if not (OUT / name).is_file() or (OUT / name).read_text() != text
        ]
        # The Gateway API schemas are scripts/trim_gateway_schemas.py's.
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in wanted
                       and not p.name.startswith(("gateway.networking.k8s.io.", "gateway-api-")))
        for name in stale + extra:
            print(f"{OUT / name} is not what {Path(__file__).name} generates", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
