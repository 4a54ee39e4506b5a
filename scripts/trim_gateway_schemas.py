#!/usr/bin/env python3
"""Generate the trimmed Gateway API schemas edgewarden ships for its static CEL checks.

The schemas come from the CustomResourceDefinitions of the pinned Go module
``sigs.k8s.io/gateway-api`` (tests/kube/gateway-api/go.mod; ``scripts/kube-binaries``
copies its ``config/crd`` to ~/.cache/edgewarden/kube/current/gateway-api-crds). Each
kind's ``openAPIV3Schema`` is trimmed to its shape (field names, types, list bounds) as
scripts/trim_k8s_schemas.py trims the Kubernetes ones; CRDs carry only ``type: object``
for ``metadata``, so the ObjectMeta of the packaged Service schema stands in. Writes
webhook/policy/schemas/gateway.networking.k8s.io.<version>.<Kind>.json and
gateway-api-source.json, so the package needs neither Go nor the CRDs at run time;
``--check`` exits 1 when the shipped copies differ from what this would write.

    .venv/bin/python scripts/trim_gateway_schemas.py [--crds DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "webhook" / "policy" / "schemas"
CRDS = Path.home() / ".cache" / "edgewarden" / "kube" / "current" / "gateway-api-crds" / "standard"
GROUP = "gateway.networking.k8s.io"
PREFIX = GROUP + "."
SOURCE = "gateway-api-source.json"
# kind -> (CRD file, version): the kinds policies may name by short name.
KINDS = {
    "Gateway": ("gateway.networking.k8s.io_gateways.yaml", "v1"),
    "HTTPRoute": ("gateway.networking.k8s.io_httproutes.yaml", "v1"),
    "GRPCRoute": ("gateway.networking.k8s.io_grpcroutes.yaml", "v1"),
    "TLSRoute": ("gateway.networking.k8s.io_tlsroutes.yaml", "v1"),
}
_KEEP = ("format", "maxItems", "maxLength", "maxProperties", "x-kubernetes-int-or-string")


def trim(node: dict[str, Any]) -> dict[str, Any]:
    """The shape of ``node``: type, properties, items, additionalProperties, bounds."""
    out: dict[str, Any] = {}
    if isinstance(node.get("type"), str):
        out["type"] = node["type"]
    for key in _KEEP:
        if key in node:
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {
            name: trim(child) for name, child in sorted(node["properties"].items())
        }
    if isinstance(node.get("items"), dict):
        out["items"] = trim(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = trim(node["additionalProperties"])
    return out


def _object_meta() -> dict[str, Any]:
    service = json.loads((OUT / "core.v1.Service.json").read_text())
    meta: dict[str, Any] = service["properties"]["metadata"]
    return meta


def _bundle_version(crd: dict[str, Any]) -> str:
    annotations = crd.get("metadata", {}).get("annotations", {})
    return str(annotations.get("gateway.networking.k8s.io/bundle-version", "unknown"))


def generate(crds: Path) -> dict[str, str]:
    """File name -> content of every schema to ship."""
    documents: dict[str, Any] = {}
    bundle = "unknown"
    for kind, (file, version) in KINDS.items():
        crd = yaml.safe_load((crds / file).read_text())
        bundle = _bundle_version(crd)
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
        schema = trim(served["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"] = _object_meta()
        documents[f"{PREFIX}{version}.{kind}.json"] = schema
    documents[SOURCE] = {
        "gateway-api": bundle,
        "channel": "standard",
        "generator": "scripts/trim_gateway_schemas.py",
    }
    return {name: json.dumps(doc, indent=1, sort_keys=True) + "\n"
            for name, doc in documents.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", type=Path, default=CRDS,
                        help="the standard-channel CRD folder (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    if not args.crds.is_dir():
        print(f"{args.crds}: no such folder (run scripts/kube-binaries)", file=sys.stderr)
        return 2
    wanted = generate(args.crds)
    if args.check:
        stale = [
            name
            for name, text in wanted.items()
            if not (OUT / name).is_file() or (OUT / name).read_text() != text
        ]
        extra = sorted(p.name for p in OUT.glob(PREFIX + "*.json") if p.name not in wanted)
        for name in stale + extra:
            print(f"{OUT / name} is not what {Path(__file__).name} generates", file=sys.stderr)
        return 1 if stale or extra else 0
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
