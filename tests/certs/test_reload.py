"""ServingCertificate.reload_if_changed: swaps good pairs, refuses bad ones, keeps serving."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from tests.support import eventually, eventually_async
from webhook.certs.files import write_atomic, write_pair
from webhook.certs.issue import fingerprint, issue_ca, issue_serving
from webhook.certs.tls import ServingCertificate, watch_certificate

from .tlsserver import client_context, fetch_fingerprint, serve_tls


@pytest.fixture()
def ca():
    return issue_ca()


def served(ca, key_type="ecdsa"):
    return issue_serving(ca, service="edgewarden", namespace="edgewarden", key_type=key_type)


@pytest.fixture()
def folder(tmp_path: Path, ca) -> Path:
    write_pair(tmp_path / "tls.crt", tmp_path / "tls.key", served(ca))
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    return tmp_path


def test_unchanged_files_are_not_reloaded(folder: Path) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    assert cert.reload_if_changed() is False


def test_a_new_pair_is_swapped_in_and_not_after_follows(folder: Path, ca) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    context = cert.ssl_context
    new = served(ca)
    write_pair(folder / "tls.crt", folder / "tls.key", new)
    assert cert.reload_if_changed() is True
    assert cert.fingerprint == fingerprint(new.cert)
    assert cert.not_after == new.not_after
    assert cert.ssl_context is context  # the listener keeps the same object


def test_rewriting_the_same_content_is_not_a_reload(folder: Path) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    data = (folder / "tls.crt").read_bytes()
    write_atomic(folder / "tls.crt", data, 0o644)  # new inode, same bytes
    assert cert.reload_if_changed() is False


def test_a_key_file_unreadable_mid_rotation_keeps_serving_and_is_read_again(
    folder: Path, ca
) -> None:
    # The stat succeeds but the read fails (here: the key path is briefly a directory).
    # This used to raise UnboundLocalError out of reload_if_changed.
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    before = cert.fingerprint
    new = served(ca)
    (folder / "tls.key").unlink()
    (folder / "tls.key").mkdir()
    assert cert.reload_if_changed() is False
    assert cert.fingerprint == before
    (folder / "tls.key").rmdir()
    write_pair(folder / "tls.crt", folder / "tls.key", new)
    assert cert.reload_if_changed() is True
    assert cert.fingerprint == fingerprint(new.cert)


def test_a_mismatched_pair_is_refused_and_the_old_one_kept(folder: Path, ca, caplog) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    before = cert.fingerprint
    write_atomic(folder / "tls.crt", served(ca).cert_pem, 0o644)  # key not updated
    with caplog.at_level(logging.ERROR, "edgewarden.certs"):
        assert cert.reload_if_changed() is False
        assert cert.reload_if_changed() is False  # logged once per change, not per poll
    assert cert.fingerprint == before
    assert len([r for r in caplog.records if "refused" in r.message]) == 1


def test_a_half_finished_rotation_completes_at_the_next_poll(folder: Path, ca) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    new = served(ca)
    write_atomic(folder / "tls.key", new.key_pem, 0o600)  # key first, cert not yet
    assert cert.reload_if_changed() is False
    write_atomic(folder / "tls.crt", new.cert_pem, 0o644)
    assert cert.reload_if_changed() is True
    assert cert.fingerprint == fingerprint(new.cert)


def test_garbage_and_vanished_files_keep_the_current_certificate(folder: Path) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    before = cert.fingerprint
    (folder / "tls.crt").write_bytes(b"not a certificate")
    assert cert.reload_if_changed() is False
    os.unlink(folder / "tls.crt")
    assert cert.reload_if_changed() is False
    assert cert.fingerprint == before


def test_switching_key_type_serves_only_the_new_certificate(folder: Path, ca) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    new = served(ca, key_type="rsa")
    with serve_tls(cert) as server:
        write_pair(folder / "tls.crt", folder / "tls.key", new)
        eventually(lambda: cert.fingerprint == fingerprint(new.cert), what="the watcher's reload")
        # Whatever signature algorithms the client offers, the old ECDSA pair is gone.
        assert fetch_fingerprint(server.port, client_context(folder / "ca.crt")) == fingerprint(
            new.cert
        )


def test_watch_certificate_calls_back_on_reload(folder: Path, ca) -> None:
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    seen: list[str] = []

    async def scenario() -> None:
        task = asyncio.create_task(
            watch_certificate(cert, 0.01, on_reload=lambda c: seen.append(c.fingerprint))
        )
        write_pair(folder / "tls.crt", folder / "tls.key", served(ca))
        await eventually_async(lambda: seen, what="the reload callback")
        task.cancel()

    asyncio.run(scenario())
    assert seen == [cert.fingerprint]
