"""Self-managed certificates against the Kubernetes API double: Secret, caBundle, renewal,
CA roll, and several replicas agreeing on one writer."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509

from tests.kubeapi import MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS, KubeApi
from tests.support.clock import FakeClock
from webhook.certs.bootstrap import GENERATION, CertificateManager, ManagerSettings, parse_secret
from webhook.certs.issue import (
    dns_names_of,
    fingerprint,
    ip_addresses_of,
    is_signed_by,
    issue_ca,
    issue_serving,
)
from webhook.cluster.cert_store import KubernetesCertStore, StoredSecret
from webhook.errors import CertificateError

NS, SECRET = "edgewarden", "edgewarden-tls"
WEBHOOKS = {"validating": VALIDATING_WEBHOOKS, "mutating": MUTATING_WEBHOOKS}



def manager(store, tmp_path: Path, clock: FakeClock, name: str = "replica-a") -> CertificateManager:
    settings = ManagerSettings(namespace=NS, service="edgewarden", out_dir=tmp_path / name)
    return CertificateManager(store, settings, clock=clock.utc)


def secret_state(kube_api: KubeApi):
    raw = kube_api.get("secrets", SECRET, namespace=NS)
    data = {k: base64.b64decode(v) for k, v in raw["data"].items()}
    return parse_secret(StoredSecret(data, raw["metadata"].get("annotations") or {}))


def published_cas(kube_api: KubeApi) -> dict[str, list[x509.Certificate]]:
    """The CAs each webhook configuration tells the API server to trust."""
    result = {}
    for kind, resource in WEBHOOKS.items():
        configs = kube_api.objects(resource)
        assert configs, f"the {kind} webhook configuration exists"
        for config in configs:
            bundles = {w["clientConfig"].get("caBundle") for w in config["webhooks"]}
            assert len(bundles) == 1
            result[kind] = x509.load_pem_x509_certificates(base64.b64decode(bundles.pop()))
    return result


def assert_api_server_trusts_what_is_served(kube_api: KubeApi, folder: Path) -> None:
    served = x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes())
    published = published_cas(kube_api)
    assert published, "some webhook configuration publishes a CA"
    for kind, cas in published.items():
        assert any(is_signed_by(served, ca) for ca in cas), f"{kind} caBundle misses the issuer"


def test_first_sync_creates_the_secret_writes_files_and_patches_both_ca_bundles(
    kube_api: KubeApi, store: KubernetesCertStore, tmp_path: Path
) -> None:
    clock = FakeClock()
    replica = manager(store, tmp_path, clock)
    assert replica.sync_once() is True

    raw = kube_api.get("secrets", SECRET, namespace=NS)
    assert raw["type"] == "kubernetes.io/tls"
    assert set(raw["data"]) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    folder = tmp_path / "replica-a"
    assert (folder / "tls.key").stat().st_mode & 0o777 == 0o600
    assert_api_server_trusts_what_is_served(kube_api, folder)
    assert set(published_cas(kube_api)) == {"validating", "mutating"}
    patches = kube_api.requests_for("patch")
    assert patches and all(r.content_type == "application/merge-patch+json" for r in patches)
    assert replica.not_after == secret_state(kube_api).serving.not_after


def test_a_second_sync_with_nothing_due_writes_nothing(kube_api, store, tmp_path) -> None:
    replica = manager(store, tmp_path, FakeClock())
    replica.sync_once()
    before = len(kube_api.writes())
    assert replica.sync_once() is False
    assert len(kube_api.writes()) == before


def test_extra_hosts_are_in_the_serving_certificate_and_added_ones_reissue_it(
    kube_api, store, tmp_path
) -> None:
    """A server the API server calls by URL (outside the cluster) must be named by its
    certificate; a host added later re-issues the certificate from the same CA."""
    clock = FakeClock()
    plain = manager(store, tmp_path, clock)
    plain.sync_once()
    first = secret_state(kube_api)
    assert ip_addresses_of(first.serving.cert) == []
    settings = ManagerSettings(namespace=NS, service="edgewarden", out_dir=tmp_path / "by-url",
                               hosts_extra=("127.0.0.1", "localhost"))
    by_url = CertificateManager(store, settings, clock=clock.utc)
    assert by_url.sync_once() is True
    reissued = secret_state(kube_api)
    assert ip_addresses_of(reissued.serving.cert) == ["127.0.0.1"]
    assert {"localhost", "edgewarden.edgewarden.svc"} <= set(dns_names_of(reissued.serving.cert))
    assert reissued.bundle == first.bundle  # same CA: the caBundle does not move
    assert by_url.sync_once() is False  # nothing more to do once the names are there
    assert_api_server_trusts_what_is_served(kube_api, tmp_path / "by-url")


def test_serving_certificate_is_renewed_when_a_third_of_its_life_is_left(
    kube_api, store, tmp_path
):
    clock = FakeClock()
    replica = manager(store, tmp_path, clock)
    replica.sync_once()
    first = secret_state(kube_api)
    clock.advance(days=55)  # 90-day certificate: 35 days left, more than a third
    assert replica.sync_once() is False
    clock.advance(days=6)  # 29 days left
    assert replica.sync_once() is True
    renewed = secret_state(kube_api)
    assert fingerprint(renewed.serving.cert) != fingerprint(first.serving.cert)
    assert renewed.bundle == first.bundle  # same CA: the caBundle does not move
    assert renewed.generation == first.generation
    assert_api_server_trusts_what_is_served(kube_api, tmp_path / "replica-a")


def test_ca_roll_publishes_old_and_new_ca_before_switching_the_serving_certificate(
    kube_api, store, tmp_path
) -> None:
    clock = FakeClock()
    replica = manager(store, tmp_path, clock)
    folder = tmp_path / "replica-a"
    replica.sync_once()
    old_ca = secret_state(kube_api).signing.cert
    # Keep the serving certificate young so only the CA is due.
    for _ in range(30):  # bounded: the 5-year CA is due after ~3.3 years
        clock.advance(days=60)
        replica.sync_once()
        if len(secret_state(kube_api).bundle) > 1:
            break
        assert_api_server_trusts_what_is_served(kube_api, folder)

    # Step 1 + 2: both CAs are trusted everywhere; the served certificate is still the old CA's.
    state = secret_state(kube_api)
    new_ca = state.signing.cert
    assert new_ca != old_ca and set(state.bundle) == {old_ca, new_ca}
    assert all(set(cas) == {old_ca, new_ca} for cas in published_cas(kube_api).values())
    assert is_signed_by(state.serving.cert, old_ca)
    assert_api_server_trusts_what_is_served(kube_api, folder)

    # Step 3 waits for the bundle to propagate, then re-issues from the new CA.
    clock.advance(seconds=30)
    replica.sync_once()
    assert is_signed_by(secret_state(kube_api).serving.cert, old_ca)
    clock.advance(minutes=3)
    assert replica.sync_once() is True
    assert is_signed_by(secret_state(kube_api).serving.cert, new_ca)
    assert_api_server_trusts_what_is_served(kube_api, folder)
    assert len(secret_state(kube_api).bundle) == 2  # replicas may still serve the old one

    # Step 4: after the grace period the old CA leaves the caBundle.
    clock.advance(minutes=16)
    assert replica.sync_once() is True
    assert secret_state(kube_api).bundle == (new_ca,)
    assert all(cas == [new_ca] for cas in published_cas(kube_api).values())
    assert_api_server_trusts_what_is_served(kube_api, folder)


def secret(secret_type: str, data: dict[str, str]) -> dict[str, object]:
    """The Secret as another tool wrote it."""
    metadata = {"name": SECRET, "namespace": NS}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": secret_type,
            "data": data}


class StaleOnce:
    """Wraps a store so the first read returns what an earlier read saw (a replica that
    read just before another one wrote)."""

    def __init__(self, store: KubernetesCertStore, stale: StoredSecret | None) -> None:
        self.store, self.stale, self.used = store, stale, False

    def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        if not self.used:
            self.used = True
            return self.stale
        return self.store.read_secret(namespace, name)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def test_two_replicas_creating_at_once_agree_on_one_secret(kube_api, store, tmp_path) -> None:
    clock = FakeClock()
    first = manager(store, tmp_path, clock, "replica-a")
    second = manager(StaleOnce(store, None), tmp_path, clock, "replica-b")  # saw no Secret
    first.sync_once()
    second.sync_once()  # its create meets 409 AlreadyExists, it adopts the stored Secret

    recent = [(r.method, r.path) for r in kube_api.requests[-12:]]
    assert ("POST", f"/api/v1/namespaces/{NS}/secrets") in recent
    a, b = tmp_path / "replica-a", tmp_path / "replica-b"
    for name in ("tls.crt", "tls.key", "ca.crt"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert_api_server_trusts_what_is_served(kube_api, b)


def test_a_renewal_race_has_one_writer_and_the_loser_adopts_its_result(
    kube_api, store, tmp_path
) -> None:
    clock = FakeClock()
    first = manager(store, tmp_path, clock, "replica-a")
    first.sync_once()
    clock.advance(days=61)
    stale = store.read_secret(NS, SECRET)  # replica-b reads...
    first.sync_once()  # ...replica-a renews and writes...
    second = manager(StaleOnce(store, stale), tmp_path, clock, "replica-b")
    puts_before = sum(1 for r in kube_api.requests if r.method == "PUT")
    second.sync_once()  # ...replica-b's PUT is a 409 Conflict; it re-reads

    assert sum(1 for r in kube_api.requests if r.method == "PUT") == puts_before + 1  # tried once
    assert (tmp_path / "replica-b" / "tls.crt").read_bytes() == (
        tmp_path / "replica-a" / "tls.crt"
    ).read_bytes()
    assert second.state is not None
    stored = secret_state(kube_api).serving.cert
    assert fingerprint(second.state.serving.cert) == fingerprint(stored)


def test_a_stale_replica_never_rolls_the_ca_bundle_back(kube_api, store, tmp_path) -> None:
    clock = FakeClock()
    replica = manager(store, tmp_path, clock)
    replica.sync_once()
    configs = [c for resource in WEBHOOKS.values() for c in kube_api.objects(resource)]
    assert configs, "the webhook configurations exist"
    for config in configs:  # a newer generation is already published
        config["metadata"]["annotations"] = {GENERATION: "99"}
        for webhook in config["webhooks"]:
            webhook["clientConfig"]["caBundle"] = "bmV3ZXI="
        kube_api.update(config)
    patches = sum(1 for r in kube_api.requests if r.method == "PATCH")
    replica.sync_once()
    assert sum(1 for r in kube_api.requests if r.method == "PATCH") == patches


def test_a_webhook_configuration_changed_meanwhile_is_patched_next_round(
    kube_api, store, tmp_path
) -> None:
    class Racing:
        """Someone edits the configuration between our GET and our PATCH, once."""

        def __init__(self) -> None:
            self.raced = False

        def read_webhook_configuration(self, kind, name):
            found = store.read_webhook_configuration(kind, name)
            if not self.raced and found is not None:
                self.raced = True
                kube_api.update(kube_api.get(WEBHOOKS[kind], name))  # bumps the version
            return found

        def __getattr__(self, attribute):
            return getattr(store, attribute)

    replica = manager(Racing(), tmp_path, FakeClock())
    replica.sync_once()  # one configuration answers 409 Conflict
    replica.sync_once()
    assert_api_server_trusts_what_is_served(kube_api, tmp_path / "replica-a")


def test_missing_webhook_configurations_are_skipped(store, kube_api, tmp_path) -> None:
    for resource in WEBHOOKS.values():
        for config in kube_api.objects(resource):
            kube_api.delete(resource, config["metadata"]["name"])
    replica = manager(store, tmp_path, FakeClock())
    assert replica.sync_once() is True
    assert (tmp_path / "replica-a" / "tls.crt").exists()


def test_a_broken_managed_secret_is_reissued(kube_api, store, tmp_path) -> None:
    replica = manager(store, tmp_path, FakeClock())
    replica.sync_once()
    broken = kube_api.get("secrets", SECRET, namespace=NS)
    broken["data"]["tls.key"] = base64.b64encode(b"garbage").decode()
    kube_api.update(broken)
    assert replica.sync_once() is True
    assert_api_server_trusts_what_is_served(kube_api, tmp_path / "replica-a")


def test_a_secret_managed_elsewhere_is_only_read(kube_api, store, tmp_path) -> None:
    ca = issue_ca()
    pair = issue_serving(ca, service="edgewarden", namespace=NS)
    enc = {
        k: base64.b64encode(v).decode()
        for k, v in {
            "tls.crt": pair.cert_pem,
            "tls.key": pair.key_pem,
            "ca.crt": ca.cert_pem,
        }.items()
    }
    kube_api.create(secret("kubernetes.io/tls", enc))
    replica = manager(store, tmp_path, FakeClock())
    replica.sync_once()
    assert kube_api.writes() == []
    assert (tmp_path / "replica-a" / "tls.crt").read_bytes() == pair.cert_pem


def test_an_unusable_foreign_secret_is_left_alone_with_a_clear_error(kube_api, store, tmp_path):
    kube_api.create(secret("Opaque", {"ca.key": base64.b64encode(b"nope").decode()}))
    with pytest.raises(CertificateError, match="not managed by edgewarden"):
        manager(store, tmp_path, FakeClock()).sync_once()
    assert kube_api.writes() == []


def test_an_unreachable_api_server_is_a_clear_error(tmp_path) -> None:
    from kubernetes import client

    configuration = client.Configuration(host="http://127.0.0.1:9")
    configuration.retries = 0
    store = KubernetesCertStore(client.ApiClient(configuration))
    with pytest.raises(CertificateError, match="cannot reach the Kubernetes API"):
        manager(store, tmp_path, FakeClock()).sync_once()
