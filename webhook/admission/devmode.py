"""``serve --dev``: a small cluster, two sample AdmissionReviews on disk, and the next steps
printed for a human: one review the default policies allow (a LoadBalancer Service in
``default``, which ``/mutate`` makes internal) and one they deny (a NodePort Service in
``shop``, a namespace the dev cluster labels ``environment: production``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

PRODUCTION_NAMESPACE = "shop"
CLUSTER_FILE = "cluster.yaml"
ALLOW_REVIEW = "review.json"
DENY_REVIEW = "review-deny.json"
_CLUSTER_HEADER = """\
# The in-memory cluster of `edgewarden serve --dev`, rewritten at every start (pass
# --cluster-state FILE to serve your own). `shop` is production, so the sample review
# review-deny.json (a NodePort Service there) is denied by deny-nodeport-in-production.
"""


def dev_cluster() -> list[dict[str, Any]]:
    """The Namespaces the dev server knows: ``default`` and the production ``shop``."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": PRODUCTION_NAMESPACE, "labels": {"environment": "production"}},
        },
    ]


def write_dev_cluster(folder: Path) -> Path:
    """The dev cluster as a cluster-state file (so a user can read what the server knows)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLUSTER_FILE
    path.write_text(_CLUSTER_HEADER + yaml.safe_dump_all(dev_cluster(), sort_keys=False))
    return path


def _service(name: str, namespace: str, service_type: str, port: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"type": service_type, "selector": {"app": name}, "ports": [port]},
    }


def sample_review() -> dict[str, Any]:
    """A LoadBalancer Service CREATE as the API server would send it: allowed, patched."""
    port = {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
    return _review(_service("web", "default", "LoadBalancer", port),
                   "0f5c8a57-5c2e-4d8f-9a57-2b5d3e0b1c42")


def sample_deny_review() -> dict[str, Any]:
    """A NodePort Service CREATE in the production namespace: denied."""
    port = {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}
    return _review(_service("shop-admin", PRODUCTION_NAMESPACE, "NodePort", port),
                   "6d1f3b9e-2a47-4c55-8e0b-7f9a2c4d1e63")


def _review(service: dict[str, Any], uid: str) -> dict[str, Any]:
    name = service["metadata"]["name"]
    namespace = service["metadata"]["namespace"]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Service"},
            "resource": {"group": "", "version": "v1", "resource": "services"},
            "requestKind": {"group": "", "version": "v1", "kind": "Service"},
            "requestResource": {"group": "", "version": "v1", "resource": "services"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters",
                                                                    "system:authenticated"]},
            "object": service,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def write_sample_review(folder: Path) -> Path:
    path = folder / ALLOW_REVIEW
    path.write_bytes(orjson.dumps(sample_review(), option=orjson.OPT_INDENT_2))
    return path


def write_sample_deny_review(folder: Path) -> Path:
    path = folder / DENY_REVIEW
    path.write_bytes(orjson.dumps(sample_deny_review(), option=orjson.OPT_INDENT_2))
    return path


def next_steps(
    folder: Path, ca_file: Path, ca_bundle: str, port: int, cluster_file: Path | None = None
) -> str:
    """What to print: the CA, and curl lines that work as printed (one allow, one deny)."""
    review = write_sample_review(folder)
    denied = write_sample_deny_review(folder)
    url = f"https://localhost:{port}"
    post = f"curl --cacert {ca_file} -H 'Content-Type: application/json' --data"
    cluster = (
        f"the dev cluster ({cluster_file}) labels namespace {PRODUCTION_NAMESPACE} "
        "environment=production"
        if cluster_file is not None
        else f"denied where your --cluster-state labels {PRODUCTION_NAMESPACE} "
        "environment=production"
    )
    return "\n".join([
        "edgewarden dev server",
        f"  CA certificate: {ca_file}",
        f"  caBundle (for a webhook configuration): {ca_bundle}",
        "Try it: a LoadBalancer Service in default (allowed), a NodePort Service in "
        f"{PRODUCTION_NAMESPACE} (denied: {cluster}), the patch /mutate adds, the metrics:",
        f"  {post} @{review} {url}/validate",
        f"  {post} @{denied} {url}/validate",
        f"  {post} @{review} {url}/mutate",
        f"  curl --cacert {ca_file} {url}/metrics",
    ])
