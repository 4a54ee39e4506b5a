"""``edgewarden uninstall``: remove what edgewarden created in the cluster.

What it removes, in this order, and only objects edgewarden made (labelled
``app.kubernetes.io/managed-by: edgewarden``, or edgewarden's own fixed names):

1. it annotates the Service ``edgewarden.dev/uninstalling``: from then on no replica
   registers webhook configurations, and the leader writes no quota or report
   (webhook/controllers/registration.py reads the annotation every few seconds);
2. the ValidatingWebhookConfiguration ``edgewarden-validating`` and the
   MutatingWebhookConfiguration ``edgewarden-mutating``, when they carry the label (the
   chart's static mode installs them without it, and Helm removes those itself);
3. the ResourceQuotas ``edgewarden-loadbalancers`` (``serve --manage-quotas``) in every
   namespace, the PolicyReports and ClusterPolicyReports of the continuous audit, and the
   Claims (``serve --claims``) in edgewarden's namespace;
4. steps 2 and 3 again until nothing has come back for ``settle`` seconds, longer than a
   replica takes to see the annotation: a write already under way when the annotation
   landed is undone too;
5. the leader Lease ``edgewarden-leader`` and the Secret ``edgewarden-tls`` (only when it
   is labelled as edgewarden's: ``--manage-certs``). Replicas still running would make
   them again, so each replica that stops while the annotation is there removes them too.

Left alone: Events (they expire), the Policy and PolicyException objects and their CRDs
(the user's data; the chart keeps the CRDs), a cert-manager Certificate or Secret, and
anything without edgewarden's label. The writes refused while it runs: none. Deleting the
configurations first means the API server stops calling the webhook before its pods go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from webhook.cluster.claims import GROUP as CLAIM_GROUP
from webhook.cluster.claims import PLURAL as CLAIM_PLURAL
from webhook.cluster.claims import VERSION as CLAIM_VERSION
from webhook.cluster.webhook_configurations import (
    KINDS,
    KubeCallError,
    RestApi,
    WebhookConfigurationApi,
    WebhookKind,
)
from webhook.controllers.leader import LEASE_NAME
from webhook.offline.quota import QUOTA_NAME
from webhook.registration.render import NAMES, OWNED_LABEL, owned
from webhook.registration.settings import UNINSTALLING_ANNOTATION

log = logging.getLogger("edgewarden.uninstall")

SELECTOR = ",".join(f"{key}={value}" for key, value in OWNED_LABEL.items())
SECRET_NAME = "edgewarden-tls"
_REPORTS = "/apis/wgpolicyk8s.io/v1alpha2"
# kind, the cluster-wide list, one object's path
LABELLED = (
    ("ResourceQuota", "/api/v1/resourcequotas",
     "/api/v1/namespaces/{namespace}/resourcequotas/{name}"),
    ("PolicyReport", f"{_REPORTS}/policyreports",
     _REPORTS + "/namespaces/{namespace}/policyreports/{name}"),
    ("ClusterPolicyReport", f"{_REPORTS}/clusterpolicyreports",
     _REPORTS + "/clusterpolicyreports/{name}"),
    # serve --claims: the Claim objects, in edgewarden's namespace only.
    ("Claim", f"/apis/{CLAIM_GROUP}/{CLAIM_VERSION}/namespaces/{{own}}/{CLAIM_PLURAL}",
     f"/apis/{CLAIM_GROUP}/{CLAIM_VERSION}/namespaces/{{namespace}}/{CLAIM_PLURAL}/{{name}}"),
)


@dataclass
class Removed:
    """What was removed, as ``Kind namespace/name`` lines, in order."""

    objects: list[str] = field(default_factory=list)
    service_marked: bool = False


def _delete(rest: RestApi, path: str, uid: str | None) -> bool:
    body: dict[str, object] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if uid:
        body["preconditions"] = {"uid": uid}
    try:
        return rest.call("DELETE", path, body=body) is not None
    except KubeCallError as error:
        if error.status == 409:  # replaced by another object meanwhile: not ours
            return False
        raise


def remove_configurations(api: WebhookConfigurationApi, removed: Removed,
                          names: Mapping[WebhookKind, str] = NAMES) -> int:
    count = 0
    for kind, name in names.items():
        found = api.get(kind, name)
        if found is None or not owned(found):
            continue
        if api.delete(kind, name, uid=(found.get("metadata") or {}).get("uid")):
            removed.objects.append(f"{KINDS[kind]} {name}")
            count += 1
    return count


def remove_labelled(rest: RestApi, removed: Removed, own: str) -> int:
    """Managed quotas and the audit's reports in every namespace, claims in ``own``."""
    count = 0
    for kind, listed, item_path in LABELLED:
        for item in rest.list(listed.format(own=own), SELECTOR):
            metadata = item.get("metadata") or {}
            name, namespace = metadata.get("name", ""), metadata.get("namespace", "")
            if kind == "ResourceQuota" and name != QUOTA_NAME:
                continue
            path = item_path.format(namespace=namespace, name=name)
            if _delete(rest, path, metadata.get("uid")):
                removed.objects.append(f"{kind} {namespace + '/' if namespace else ''}{name}")
                count += 1
    return count


def remove_after_last_replica(rest: RestApi, namespace: str,
                              removed: Removed | None = None, *, lease_name: str = LEASE_NAME,
                              secret_name: str = SECRET_NAME) -> None:
    """The leader Lease, and the certificate Secret when edgewarden manages it."""
    removed = removed if removed is not None else Removed()
    lease = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease_name}"
    if _delete(rest, lease, None):
        removed.objects.append(f"Lease {namespace}/{lease_name}")
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/{secret_name}"
    secret = rest.call("GET", secret_path)
    uid = (secret.get("metadata") or {}).get("uid") if secret is not None else None
    if secret is not None and owned(secret) and _delete(rest, secret_path, uid):
        removed.objects.append(f"Secret {namespace}/{secret_name}")


def uninstall(rest: RestApi, *, namespace: str, service: str, settle: float = 10.0,
              timeout: float = 120.0, sleep: Callable[[float], None] = time.sleep,
              monotonic: Callable[[], float] = time.monotonic,
              names: Mapping[WebhookKind, str] = NAMES, lease_name: str = LEASE_NAME,
              secret_name: str = SECRET_NAME) -> Removed:
    """Steps 1 to 5 of the module's docstring; raises KubeCallError when a call fails (an
    unfinished uninstall is safe to run again)."""
    api = WebhookConfigurationApi(rest)
    removed = Removed()
    removed.service_marked = api.annotate_service(
        namespace, service, {UNINSTALLING_ANNOTATION: "true"})
    start = quiet_since = monotonic()
    while True:
        if (remove_configurations(api, removed, names)
                + remove_labelled(rest, removed, namespace)):
            quiet_since = monotonic()
        now = monotonic()
        if now - quiet_since >= settle:
            break
        if now - start >= timeout:
            raise KubeCallError(0, f"objects kept coming back for {timeout:.0f} s: is a "
                                   "replica without the uninstall annotation's check running?")
        sleep(1.0)
    remove_after_last_replica(rest, namespace, removed, lease_name=lease_name,
                              secret_name=secret_name)
    return removed

