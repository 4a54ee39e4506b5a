"""Self-managed certificates in the cluster: one Secret, the caBundle, renewal, CA roll.

Every replica runs :meth:`CertificateManager.sync_once` periodically (``serve
--manage-certs``) or once (``edgewarden certs bootstrap`` as an init container). There is no
leader: each replica computes the same next step from the Secret, and the API server's
optimistic concurrency picks one writer (a create that finds the Secret, or a replace with
a stale ``resourceVersion``, is a 409; the loser re-reads and adopts what the winner wrote).

The Secret (type ``kubernetes.io/tls``) holds ``tls.crt``/``tls.key`` (serving pair),
``ca.crt`` (every CA the webhook must trust now, i.e. the caBundle) and ``ca.key`` (the key
of the CA that signs new serving certificates). The CA roll, one step per sync:

1. the signing CA has less than a third of its life left: a new CA is made; ``ca.crt``
   becomes old + new, ``ca.key`` the new key; the serving certificate is unchanged;
2. the caBundle (old + new) is patched into both webhook configurations;
3. once every configuration carries it and it has been out for ``propagation_delay``, the
   serving certificate is re-issued by the new CA (clients trust both meanwhile);
4. once the new serving certificate has been out for ``old_ca_grace`` (every replica has
   reloaded it), the old CA leaves ``ca.crt`` and the caBundle.

A stale replica never rolls the caBundle back: configurations record the bundle's
generation (an annotation) and are patched only forward, conditionally on their
``resourceVersion``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from webhook.certs.files import (
    CA_CERT,
    CA_KEY,
    CERT_MODE,
    TLS_CERT,
    TLS_KEY,
    write_atomic,
    write_pair,
)
from webhook.certs.issue import (
    KeyPair,
    KeyType,
    dns_names_of,
    ip_addresses_of,
    is_signed_by,
    issue_ca,
    issue_serving,
    life_left_fraction,
    load_certificates,
    load_key_pair,
    service_dns_names,
    utcnow,
)
from webhook.certs.secretstate import (
    GENERATION,
    MANAGED_BY,
    CertState,
    current_namespace,
    parse_secret,
)
from webhook.cluster.cert_store import (
    CertStore,
    KubernetesCertStore,
    StoreConflict,
    StoredSecret,
    WebhookKind,
)
from webhook.errors import CertificateError
from webhook.registration.render import MUTATING_NAME, VALIDATING_NAME

log = logging.getLogger("edgewarden.certs")


@dataclass(frozen=True)
class ManagerSettings:
    namespace: str = "edgewarden"
    service: str = "edgewarden"
    secret_name: str = "edgewarden-tls"
    out_dir: Path | None = None
    webhook_configurations: tuple[tuple[WebhookKind, str], ...] = (
        ("validating", VALIDATING_NAME),
        ("mutating", MUTATING_NAME),
    )
    ca_days: int = 1825
    serving_days: int = 90
    key_type: KeyType = "ecdsa"
    # Extra DNS names or IP addresses in the serving certificate, for a server the API
    # server reaches by URL (outside the cluster) rather than through the Service.
    hosts_extra: tuple[str, ...] = ()
    renew_fraction: float = 1 / 3
    propagation_delay: datetime.timedelta = datetime.timedelta(minutes=2)
    old_ca_grace: datetime.timedelta = datetime.timedelta(minutes=15)


class CertificateManager:
    """Keeps the Secret, the local files and both caBundles in step (see the module doc)."""

    def __init__(
        self,
        api: CertStore | None = None,
        settings: ManagerSettings | None = None,
        *,
        cert_dir: Path | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        """``api`` defaults to the kubernetes client (in-cluster config, else kubeconfig);
        ``settings`` to this pod's namespace (service account) and the default names;
        ``cert_dir`` overrides ``settings.out_dir``."""
        if settings is None:
            settings = ManagerSettings(namespace=current_namespace())
        if cert_dir is not None:
            settings = replace(settings, out_dir=Path(cert_dir))
        self.api: CertStore = api if api is not None else KubernetesCertStore()
        self.settings = settings
        self.clock = clock
        self.state: CertState | None = None

    @property
    def not_after(self) -> datetime.datetime | None:
        return self.state.serving.not_after if self.state else None

    async def run(self, interval: float = 60.0) -> None:
        """Sync forever (cancel to stop); a failed sync is logged and retried next round."""
        while True:
            try:
                await asyncio.to_thread(self.sync_once)
            except Exception:
                log.exception("certificate sync failed; retrying in %ss", interval)
            await asyncio.sleep(interval)

    def sync_once(self) -> bool:
        """One round: read, maybe advance the Secret one step, publish, write files.

        Returns True when this replica wrote anything (Secret, a configuration, a file).
        """
        s = self.settings
        stored = self.api.read_secret(s.namespace, s.secret_name)
        wrote = False
        if stored is None:
            state, wrote = self._create(self._fresh(generation=1)), True
        elif CA_KEY not in stored.data:
            return self._external(stored)
        else:
            state, wrote = self._advance(stored)
        self.state = state
        published = self._publish(state)
        wrote = self._write_files(state) or wrote
        if wrote or published:
            log.info(
                "certificates in sync: bundle generation %d (%d CA), serving expires %s",
                state.generation,
                len(state.bundle),
                state.serving.not_after.isoformat(),
            )
        return wrote or published

    # --- the Secret ------------------------------------------------------------------

    def _create(self, state: CertState) -> CertState:
        s = self.settings
        try:
            self.api.create_secret(s.namespace, s.secret_name, state.to_secret(None))
            log.info("created Secret %s/%s", s.namespace, s.secret_name)
            return state
        except StoreConflict:  # another replica created it first: use theirs
            return self._reread()

    def _advance(self, stored: StoredSecret) -> tuple[CertState, bool]:
        s = self.settings
        try:
            state = parse_secret(stored)
        except CertificateError as error:
            if stored.labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
                raise CertificateError(
                    f"Secret {s.namespace}/{s.secret_name} is not usable and not managed by "
                    f"edgewarden, so it is left alone: {error}"
                ) from None
            log.error("Secret %s/%s is broken, re-issuing: %s", s.namespace, s.secret_name, error)
            state = None
        generation = int(stored.annotations.get(GENERATION, "0") or 0)
        wanted = self._fresh(generation + 1) if state is None else self._next_step(state)
        if wanted is None:
            assert state is not None  # a broken Secret always gets a fresh state
            return state, False
        try:
            self.api.replace_secret(
                s.namespace, s.secret_name, wanted.to_secret(stored.resource_version)
            )
        except StoreConflict:  # another replica took the same step first
            return self._reread(), False
        return wanted, True

    def _reread(self) -> CertState:
        s = self.settings
        stored = self.api.read_secret(s.namespace, s.secret_name)
        if stored is None:
            raise CertificateError(f"Secret {s.namespace}/{s.secret_name} vanished; retrying")
        return parse_secret(stored)

    def _fresh(self, generation: int) -> CertState:
        s, now = self.settings, self.clock()
        ca = issue_ca(days=s.ca_days, key_type=s.key_type, now=now)
        serving = self._issue(ca, now)
        return CertState((ca.cert,), ca, serving, generation, now, now)

    def _issue(self, ca: KeyPair, now: datetime.datetime) -> KeyPair:
        s = self.settings
        return issue_serving(
            ca,
            service=s.service,
            namespace=s.namespace,
            days=s.serving_days,
            key_type=s.key_type,
            hosts_extra=s.hosts_extra,
            now=now,
        )

    def _names_missing(self, serving: KeyPair) -> bool:
        """The serving certificate lacks a name it must carry (e.g. a host added since)."""
        s = self.settings
        wanted = {*service_dns_names(s.service, s.namespace), *s.hosts_extra}
        present = {*dns_names_of(serving.cert), *ip_addresses_of(serving.cert)}
        return not wanted <= present

    def _next_step(self, state: CertState) -> CertState | None:
        """The one change the Secret needs now, or None. Deterministic, so replicas agree."""
        s, now = self.settings, self.clock()
        alive = tuple(c for c in state.bundle if c.not_valid_after_utc > now)
        signing_fresh = life_left_fraction(state.signing.cert, now) >= s.renew_fraction
        if not signing_fresh:  # step 1: a new CA joins the bundle; nothing is served by it yet
            ca = issue_ca(days=s.ca_days, key_type=s.key_type, now=now)
            return replace(
                state,
                bundle=(*alive, ca.cert),
                signing=ca,
                generation=state.generation + 1,
                bundle_since=now,
            )
        if alive != state.bundle and is_signed_by(state.serving.cert, state.signing.cert):
            return replace(
                state,
                bundle=alive or (state.signing.cert,),
                generation=state.generation + 1,
                bundle_since=now,
            )
        serving = state.serving
        expired = serving.not_after <= now
        if not is_signed_by(serving.cert, state.signing.cert):
            # step 3: wait until the bundle with the new CA has reached the API servers
            published = now - state.bundle_since >= s.propagation_delay and self._published(state)
            if published or expired:
                return replace(state, serving=self._issue(state.signing, now), serving_since=now)
            return None
        if (
            expired
            or life_left_fraction(serving.cert, now) < s.renew_fraction
            or self._names_missing(serving)
        ):
            return replace(state, serving=self._issue(state.signing, now), serving_since=now)
        if len(state.bundle) > 1 and now - state.serving_since >= s.old_ca_grace:
            # step 4: every replica serves the new certificate; the old CA can go
            return replace(
                state,
                bundle=(state.signing.cert,),
                generation=state.generation + 1,
                bundle_since=now,
            )
        return None

    # --- the webhook configurations ---------------------------------------------------

    def _published(self, state: CertState) -> bool:
        """Every existing configuration carries this bundle (absent ones break nothing)."""
        for kind, name in self.settings.webhook_configurations:
            found = self.api.read_webhook_configuration(kind, name)
            if found is not None and _bundles(found) != {state.ca_bundle_b64}:
                return False
        return True

    def _publish(self, state: CertState) -> bool:
        wrote = False
        for kind, name in self.settings.webhook_configurations:
            found = self.api.read_webhook_configuration(kind, name)
            if found is None:
                log.debug("%s webhook configuration %s not found; not patched", kind, name)
                continue
            metadata = found.get("metadata") or {}
            theirs = int((metadata.get("annotations") or {}).get(GENERATION, "0") or 0)
            if theirs > state.generation:
                continue  # a newer bundle is out there: this replica is behind, never undo it
            if theirs == state.generation and _bundles(found) == {state.ca_bundle_b64}:
                continue
            webhooks = [dict(w) for w in found.get("webhooks") or []]
            for webhook in webhooks:
                webhook["clientConfig"] = {
                    **(webhook.get("clientConfig") or {}),
                    "caBundle": state.ca_bundle_b64,
                }
            patch = {
                "metadata": {
                    "resourceVersion": metadata.get("resourceVersion"),
                    "annotations": {GENERATION: str(state.generation)},
                },
                # A merge patch replaces the list whole; the resourceVersion precondition
                # makes sure it is the list we just read.
                "webhooks": webhooks,
            }
            try:
                self.api.patch_webhook_configuration(kind, name, patch)
            except StoreConflict:
                continue  # changed meanwhile; the next round looks again
            log.info(
                "patched caBundle of %s webhook configuration %s (generation %d)",
                kind,
                name,
                state.generation,
            )
            wrote = True
        return wrote

    # --- files -------------------------------------------------------------------------

    def _write_files(self, state: CertState) -> bool:
        out = self.settings.out_dir
        if out is None:
            return False
        if (
            _same(out / TLS_CERT, state.serving.cert_pem)
            and _same(out / TLS_KEY, state.serving.key_pem)
            and _same(out / CA_CERT, state.bundle_pem)
        ):
            return False
        try:
            write_atomic(out / CA_CERT, state.bundle_pem, CERT_MODE)
            write_pair(out / TLS_CERT, out / TLS_KEY, state.serving)
        except OSError as error:
            raise CertificateError(f"cannot write certificates into {out}: {error}") from None
        return True

    def _external(self, stored: StoredSecret) -> bool:
        """A Secret someone else manages (e.g. cert-manager): serve it, change nothing."""
        s = self.settings
        pair = load_key_pair(
            stored.data.get(TLS_CERT, b""),
            stored.data.get(TLS_KEY, b""),
            f"Secret {s.namespace}/{s.secret_name}",
        )
        bundle = tuple(load_certificates(stored.data.get(CA_CERT, pair.cert_pem)))
        now = self.clock()
        self.state = CertState(bundle, pair, pair, 0, now, now)
        log.info(
            "Secret %s/%s has no ca.key: managed elsewhere, only read", s.namespace, s.secret_name
        )
        return self._write_files(self.state)


def _bundles(configuration: dict[str, object]) -> set[str | None]:
    webhooks = configuration.get("webhooks") or []
    assert isinstance(webhooks, list)
    return {(w.get("clientConfig") or {}).get("caBundle") for w in webhooks}


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False
