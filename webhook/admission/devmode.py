"""``serve --dev``: a sample AdmissionReview on disk and the next steps printed for a human."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def sample_review() -> dict[str, Any]:
    """A LoadBalancer Service CREATE as the API server would send it."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}],
        },
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0f5c8a57-5c2e-4d8f-9a57-2b5d3e0b1c42",
            "kind": {"group": "", "version": "v1", "kind": "Service"},
            "resource": {"group": "", "version": "v1", "resource": "services"},
            "requestKind": {"group": "", "version": "v1", "kind": "Service"},
            "requestResource": {"group": "", "version": "v1", "resource": "services"},
            "name": "web",
            "namespace": "default",
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
    path = folder / "review.json"
    path.write_bytes(orjson.dumps(sample_review(), option=orjson.OPT_INDENT_2))
    return path


def next_steps(folder: Path, ca_file: Path, ca_bundle: str, port: int) -> str:
    review = write_sample_review(folder)
    url = f"https://localhost:{port}"
    return "\n".join([
        "edgewarden dev server",
        f"  CA certificate: {ca_file}",
        f"  caBundle (for a webhook configuration): {ca_bundle}",
        "Try it:",
        f"  curl --cacert {ca_file} -H 'Content-Type: application/json' "
        f"--data @{review} {url}/validate",
        f"  curl --cacert {ca_file} -H 'Content-Type: application/json' "
        f"--data @{review} {url}/mutate",
        f"  curl --cacert {ca_file} {url}/metrics",
    ])
