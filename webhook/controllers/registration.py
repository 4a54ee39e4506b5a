"""``serve --register-webhooks``: the server keeps its own webhook configurations.

What it writes, and when:

* only the replica that holds the leader Lease writes, and only while it is ready (policies
  loaded, caches synced, certificate valid: the same reasons /readyz gives), so the API
  server is never told to call a webhook that cannot answer yet. Replicas of different
  versions (a rolling update) therefore never take turns overwriting each other: the
  configurations follow the leader's policy set until the Lease moves;
* the documents are what ``edgewarden webhook-config`` renders for the loaded policies (and
  the shadow candidates, which must see their requests too), with the caBundle read from
  ``ca.crt`` beside the serving certificate, and labelled
  ``app.kubernetes.io/managed-by: edgewarden``;
* a pass runs when the policy set changes (a reload), when the CA file changes (rotation),
  when this replica becomes leader, and every ``interval`` seconds to repair drift. It reads
  both configurations and writes only what differs, with the resourceVersion it read (a
  conflict waits for the next pass): two passes with the same input write nothing;
* a configuration of that name without the label is someone else's (the chart's static
  mode, a GitOps repository): it is never touched, and the log says so once;
* with ``--manage-certs`` the caBundle of an existing configuration belongs to the
  certificate manager (webhook/certs/bootstrap.py rolls it forward through a CA rotation);
  registration sets it only when it creates the configuration.

Nothing is removed when the server stops. A pod stops on every rolling update, drain and
eviction; removing the configurations then would leave a window in which the cluster's
writes go unjudged, and a replica still running would put them back anyway. They are removed
by ``edgewarden uninstall`` (the chart's pre-delete hook), which first annotates the Service
``edgewarden.dev/uninstalling``: a replica that sees that annotation, or no Service at all
(unless it registers a URL), registers nothing, so none can put back what the uninstall
removed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from webhook.admission.state import ServerState
from webhook.certs.secretstate import GENERATION
from webhook.certs.settings import CertificateSettings
from webhook.cluster.cert_store import CertStore, StoredSecret
from webhook.cluster.cert_store import WebhookKind as CertWebhookKind
from webhook.cluster.object_api import ApiFailure, ObjectApi
from webhook.cluster.webhook_configurations import (
    KINDS,
    KubeCallError,
    WebhookConfigurationApi,
    WebhookKind,
)
from webhook.controllers.leader import LEASE_NAME
from webhook.controllers.uninstall import remove_after_last_replica
from webhook.errors import CertificateError, EdgewardenError, one_line
from webhook.policy.model.policy import PolicySet
from webhook.registration.render import OWNED_LABEL, owned, render
from webhook.registration.settings import UNINSTALLING_ANNOTATION, RegistrationSettings

log = logging.getLogger("edgewarden.registration")

# Fields the API server fills in when a webhook leaves them out, with the value it fills.
_API_DEFAULTS: dict[str, Any] = {"objectSelector": {}, "namespaceSelector": {}}
TICK_SECONDS = 1.0
# How often every replica reads the Service for the uninstall annotation;
# ``edgewarden uninstall`` waits well past it before it calls the cluster quiet.
GUARD_SECONDS = 3.0


@dataclass
class PassResult:
    """What one pass did: ``waiting`` says why it wrote nothing (not leading, not ready...)."""

    written: list[str]
    waiting: str | None = None


@dataclass(frozen=True)
class PausableObjectApi(ObjectApi):
    """Leader election's Lease API, which writes nothing while ``paused()`` (an uninstall is
    under way): the Lease the uninstall removes is not made again by a replica that has
    not stopped yet."""

    paused: Callable[[], bool] = lambda: False

    def _refuse(self) -> None:
        if self.paused():
            raise ApiFailure(0, "edgewarden is being uninstalled: the Lease is not written")

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self._refuse()
        return super().create(body)

    def replace(self, body: dict[str, Any]) -> dict[str, Any]:
        self._refuse()
        return super().replace(body)


class PausableCertStore:
    """The certificate manager's cluster API, which writes nothing while ``paused()``: the
    Secret an uninstall removes is not made again by a replica that has not stopped yet
    (its next sync fails, is logged, and is retried)."""

    def __init__(self, store: CertStore, paused: Callable[[], bool]) -> None:
        self.store = store
        self.paused = paused

    def _refuse(self) -> None:
        if self.paused():
            raise CertificateError("edgewarden is being uninstalled: certificates not written")

    def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        return self.store.read_secret(namespace, name)

    def create_secret(self, namespace: str, name: str, secret: StoredSecret) -> StoredSecret:
        self._refuse()
        return self.store.create_secret(namespace, name, secret)

    def replace_secret(self, namespace: str, name: str, secret: StoredSecret) -> StoredSecret:
        self._refuse()
        return self.store.replace_secret(namespace, name, secret)

    def read_webhook_configuration(self, kind: CertWebhookKind, name: str
                                   ) -> dict[str, Any] | None:
        return self.store.read_webhook_configuration(kind, name)

    def patch_webhook_configuration(self, kind: CertWebhookKind, name: str,
                                    patch: dict[str, Any]) -> None:
        self._refuse()
        self.store.patch_webhook_configuration(kind, name, patch)


def same_webhooks(found: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    """The API server's webhooks say what ``wanted`` says (it adds defaults we leave out)."""
    if len(found) != len(wanted):
        return False
    for theirs, ours in zip(found, wanted, strict=True):
        extra = {k: v for k, v in theirs.items()
                 if k not in ours and _API_DEFAULTS.get(k, object()) != v}
        if extra or any(theirs.get(k) != v for k, v in ours.items()):
            return False
    return True


class WebhookRegistration:
    def __init__(self, state: ServerState, certificates: CertificateSettings,
                 settings: RegistrationSettings, api: WebhookConfigurationApi, *,
                 leading: Callable[[], bool], lease_name: str = LEASE_NAME) -> None:
        self.state = state
        self.secret_name = certificates.secret_name
        self.lease_name = lease_name
        self.settings = settings
        self.api = api
        self.leading = leading
        self.bundle_file = settings.bundle_file(certificates.directory, certificates.tls_cert)
        self.keep_bundle = certificates.manage
        self.last: PassResult | None = None
        self.last_error: str | None = None
        self._foreign_logged: set[str] = set()
        # From the Service (read every GUARD_SECONDS by every replica): an uninstall is
        # under way; then nothing is registered, and the leader's other writers pause.
        self.uninstalling = False
        self.service_found = True

    # --- what to register ------------------------------------------------------------

    def policy_set(self) -> PolicySet | None:
        """The served policies and the shadow candidates (they judge the same requests)."""
        loaded = self.state.policies
        if loaded is None:
            return None
        policies = loaded.engine.policies.policies
        if loaded.shadow is not None:
            policies = (*policies, *loaded.shadow.policies.policies)
        return PolicySet(policies)

    def ca_bundle(self) -> str | None:
        """base64 of the CA file, or None when there is none (yet)."""
        if self.bundle_file is None:
            return None
        try:
            return base64.b64encode(self.bundle_file.read_bytes()).decode("ascii")
        except OSError:
            return None

    def wanted(self, policies: PolicySet, bundle: str) -> dict[WebhookKind, dict[str, Any]]:
        settings = replace(self.settings.webhooks, ca_bundle_b64=bundle)
        documents = render(policies, settings, owned=True)
        return {("mutating" if d["kind"] == KINDS["mutating"] else "validating"): d
                for d in documents}

    def refresh_guard(self) -> None:
        """Read the Service: is an uninstall under way? (Once it was, a Service that is then
        gone means the uninstall goes on.)"""
        webhooks = self.settings.webhooks
        service = self.api.service(webhooks.namespace, webhooks.service)
        self.service_found = service is not None
        if service is None:
            return
        annotations = (service.get("metadata") or {}).get("annotations") or {}
        self.uninstalling = UNINSTALLING_ANNOTATION in annotations

    def why_not(self) -> str | None:
        """Why this replica must not write now, or None."""
        if not self.leading():
            return "not the leader"
        reasons = self.state.not_ready()
        if reasons:
            return "not ready: " + "; ".join(reasons)
        self.refresh_guard()
        if self.uninstalling:
            return "edgewarden is being uninstalled"
        webhooks = self.settings.webhooks
        # Reached through the Service, every call would fail without it; by URL (a server
        # outside the cluster) the Service is optional.
        if not self.service_found and webhooks.url is None:
            return f"Service {webhooks.namespace}/{webhooks.service} not found"
        return None

    # --- one pass ---------------------------------------------------------------------

    def sync_once(self) -> PassResult:
        """Bring both configurations in line with what this replica serves (blocking)."""
        waiting = self.why_not()
        policies = self.policy_set()
        bundle = self.ca_bundle()
        if waiting is None and policies is None:
            waiting = "no policy set loaded"
        if waiting is None and bundle is None:
            waiting = f"no CA bundle at {self.bundle_file} (--ca-bundle)"
        if waiting is not None:
            return PassResult([], waiting)
        assert policies is not None and bundle is not None
        wanted = self.wanted(policies, bundle)
        written = []
        for kind, name in self.settings.webhooks.names().items():
            if self._sync(kind, name, wanted.get(kind)):
                written.append(name)
        return PassResult(written)

    def _sync(self, kind: WebhookKind, name: str, document: dict[str, Any] | None) -> bool:
        found = self.api.get(kind, name)
        if found is None:
            if document is None:
                return False
            if self.keep_bundle:
                document = self._with_generation(document)
            if self.api.create(kind, document) is None:
                return False  # created meanwhile by someone: the next pass looks at it
            log.info("registered %s %s", KINDS[kind], name)
            return True
        if not owned(found):
            if name not in self._foreign_logged:
                self._foreign_logged.add(name)
                log.warning("%s %s exists without the label %s: installed by someone else, "
                            "left alone", KINDS[kind], name,
                            ",".join(f"{k}={v}" for k, v in OWNED_LABEL.items()))
            return False
        self._foreign_logged.discard(name)
        metadata = found.get("metadata") or {}
        if document is None:  # no policy needs this configuration any more
            if self.api.delete(kind, name, uid=metadata.get("uid")):
                log.info("removed %s %s: no loaded policy needs it", KINDS[kind], name)
                return True
            return False
        webhooks = [dict(w) for w in document["webhooks"]]
        if self.keep_bundle:
            self._keep_bundles(webhooks, found)
        ours = document["metadata"]
        labels = metadata.get("labels") or {}
        annotations = metadata.get("annotations") or {}
        if (same_webhooks(found.get("webhooks") or [], webhooks)
                and ours.get("labels", {}).items() <= labels.items()
                and ours.get("annotations", {}).items() <= annotations.items()):
            return False
        body = {
            **document,
            "metadata": {
                "name": name,
                "resourceVersion": metadata.get("resourceVersion"),
                "labels": {**labels, **ours.get("labels", {})},
                "annotations": {**annotations, **ours.get("annotations", {})},
            },
            "webhooks": webhooks,
        }
        if self.api.replace(kind, body) is None:
            return False  # changed (or deleted) since read: the next pass reads again
        log.info("updated %s %s", KINDS[kind], name)
        return True

    def _with_generation(self, document: dict[str, Any]) -> dict[str, Any]:
        """With ``--manage-certs``: the caBundle generation of the certificate Secret (the
        CA file is written from it), as the certificate manager records it on the
        configurations, so it does not patch what was just created to say the same."""
        namespace = self.settings.webhooks.namespace
        secret_name = self.secret_name
        secret = self.api.rest.call("GET",
                                    f"/api/v1/namespaces/{namespace}/secrets/{secret_name}")
        generation = ((secret or {}).get("metadata") or {}).get("annotations", {}).get(
            GENERATION)
        if not generation:
            return document
        metadata = document["metadata"]
        annotations = {**metadata.get("annotations", {}), GENERATION: generation}
        return {**document, "metadata": {**metadata, "annotations": annotations}}

    @staticmethod
    def _keep_bundles(webhooks: list[dict[str, Any]], found: dict[str, Any]) -> None:
        """The certificate manager's caBundle stays where it set one."""
        bundles = {w.get("name"): (w.get("clientConfig") or {}).get("caBundle")
                   for w in found.get("webhooks") or []}
        for webhook in webhooks:
            bundle = bundles.get(webhook["name"])
            if bundle:
                webhook["clientConfig"] = {**webhook["clientConfig"], "caBundle": bundle}

    # --- the loop ---------------------------------------------------------------------

    def _inputs(self) -> tuple[Any, ...]:
        """What a pass depends on, cheaply: a change runs a pass before the interval."""
        bundle = self.ca_bundle() or ""
        return (id(self.state.policies), self.leading(), self.uninstalling,
                hashlib.sha256(bundle.encode()).hexdigest(), not self.state.not_ready())

    async def run(self) -> None:
        """Forever (cancel to stop): a pass on every change of input, and every interval.
        A failing pass is logged and retried at the next tick; it never makes the pod
        unready (the configurations already registered keep working)."""
        last_inputs: tuple[Any, ...] | None = None
        last_pass = last_guard = -float("inf")
        while True:
            now = time.monotonic()
            try:
                if now - last_guard >= GUARD_SECONDS:
                    last_guard = now
                    await asyncio.to_thread(self.refresh_guard)
                inputs = self._inputs()
                due = now - last_pass >= self.settings.interval_seconds
                if inputs != last_inputs or due or self.last_error is not None:
                    result = await asyncio.to_thread(self.sync_once)
                    changed = self.last is None or result.waiting != self.last.waiting
                    if changed and result.waiting is not None:
                        log.info("webhook registration waits: %s", result.waiting)
                    self.last, self.last_error = result, None
                    last_inputs, last_pass = inputs, time.monotonic()
            except (KubeCallError, EdgewardenError, OSError) as error:
                message = one_line(error)
                if message != self.last_error:
                    log.error("webhook registration failed (retrying): %s", message)
                self.last_error = message
                await asyncio.sleep(min(self.settings.interval_seconds, 5.0))
                continue
            await asyncio.sleep(TICK_SECONDS)

    def on_stop(self) -> None:
        """When the server stops during an uninstall: remove what only a running replica
        would have put back (its Lease, and the managed certificate Secret). On any other
        stop nothing is removed (see the module's docstring)."""
        if not self.uninstalling:
            return
        try:
            remove_after_last_replica(self.api.rest, self.settings.webhooks.namespace,
                                      lease_name=self.lease_name,
                                      secret_name=self.secret_name)
        except (KubeCallError, EdgewardenError) as error:
            log.warning("uninstall: could not remove the Lease or Secret: %s", one_line(error))

    def status(self) -> dict[str, Any]:
        """For /readyz's details (never a reason to be unready)."""
        status: dict[str, Any] = {"enabled": True}
        if self.last is not None and self.last.waiting is not None:
            status["waiting"] = self.last.waiting
        if self.last_error is not None:
            status["error"] = self.last_error
        return status

