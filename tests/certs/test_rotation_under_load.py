"""Rotating the certificate files under continuous HTTPS load fails no request.

Clients trust the old and the new CA (as the caBundle does during a CA roll) and verify the
hostname; they open a new connection per request or keep one alive across the swap.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import eventually
from webhook.certs.files import write_pair
from webhook.certs.issue import fingerprint, issue_ca, issue_serving
from webhook.certs.tls import ServingCertificate

from .tlsserver import (
    PinnedHTTPSConnection,
    client_context,
    fetch_fingerprint,
    get_ok,
    serve_tls,
)

NEW_CONNECTION_CLIENTS = 6
KEEP_ALIVE_CLIENTS = 2
BEFORE_SWAP = 150
AFTER_SWAP = 250
DEADLINE = 90.0  # seconds; a safety bound, never an expectation


def _pair(ca_common_name: str):
    ca = issue_ca(common_name=ca_common_name)
    return ca, issue_serving(ca, service="edgewarden", namespace="edgewarden")


def _swap_by_atomic_rename(folder: Path, new) -> None:
    write_pair(folder / "tls.crt", folder / "tls.key", new)


def _kubelet_layout(folder: Path, first) -> None:
    """tls.crt -> ..data/tls.crt, ..data -> ..2024_01 (a Secret volume, as kubelet writes it)."""
    version = folder / "..v1"
    write_pair(version / "tls.crt", version / "tls.key", first)
    os.symlink("..v1", folder / "..data")
    for name in ("tls.crt", "tls.key"):
        os.symlink(f"..data/{name}", folder / name)


def _swap_by_kubelet_symlink(folder: Path, new) -> None:
    version = folder / "..v2"
    write_pair(version / "tls.crt", version / "tls.key", new)
    os.symlink("..v2", folder / "..data_tmp")
    os.replace(folder / "..data_tmp", folder / "..data")  # the one atomic step kubelet takes


class Load:
    """Clients hammering the server until told to stop; every failure is kept."""

    def __init__(self, port: int, context) -> None:
        self.port, self.context = port, context
        self.lock = threading.Lock()
        self.done = 0
        self.failures: list[str] = []
        self.fingerprints: set[str] = set()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._new_connections, daemon=True)
            for _ in range(NEW_CONNECTION_CLIENTS)
        ] + [
            threading.Thread(target=self._keep_alive, daemon=True)
            for _ in range(KEEP_ALIVE_CLIENTS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def count(self) -> int:
        with self.lock:
            return self.done

    def wait_for(self, predicate: Callable[[], bool], deadline: float) -> None:
        """Until ``predicate`` holds; a failed request ends the wait at once."""

        def progress() -> bool:
            assert not self.failures, self.failures[:3]
            return predicate()

        left = max(deadline - time.monotonic(), 0.0)
        eventually(progress, timeout=left, what="the load to make progress")

    def _record(self, fp: str | None, error: Exception | None = None) -> None:
        with self.lock:
            if error is not None:
                self.failures.append(repr(error))
            else:
                self.done += 1
                if fp:
                    self.fingerprints.add(fp)

    def _new_connections(self) -> None:
        while not self.stop.is_set():
            try:
                self._record(fetch_fingerprint(self.port, self.context))
            except Exception as error:
                self._record(None, error)

    def _keep_alive(self) -> None:
        while not self.stop.is_set():
            connection = PinnedHTTPSConnection(self.port, self.context)
            try:
                for _ in range(25):
                    if self.stop.is_set():
                        break
                    get_ok(connection)
                    self._record(None)
            except Exception as error:
                self._record(None, error)
            finally:
                connection.close()


@pytest.mark.parametrize(
    ("style", "new_ca"),
    [("atomic-rename", False), ("kubelet-symlink", False), ("kubelet-symlink", True)],
    ids=["atomic-rename-renewal", "kubelet-symlink-renewal", "kubelet-symlink-new-ca"],
)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_rotation_under_load_fails_no_request(
    tmp_path: Path, style: str, new_ca: bool, loop: str
) -> None:
    old_ca, old = _pair("old")
    signer = issue_ca(common_name="new") if new_ca else old_ca
    new = issue_serving(signer, service="edgewarden", namespace="edgewarden")
    (tmp_path / "old-ca.crt").write_bytes(old_ca.cert_pem)
    (tmp_path / "new-ca.crt").write_bytes(signer.cert_pem)
    folder = tmp_path / "mounted"
    if style == "atomic-rename":
        write_pair(folder / "tls.crt", folder / "tls.key", old)
        swap = _swap_by_atomic_rename
    else:
        _kubelet_layout(folder, old)
        swap = _swap_by_kubelet_symlink
    cert = ServingCertificate(folder / "tls.crt", folder / "tls.key")
    old_fp, new_fp = fingerprint(old.cert), fingerprint(new.cert)
    assert cert.fingerprint == old_fp
    trusted = client_context(tmp_path / "old-ca.crt", tmp_path / "new-ca.crt")
    deadline = time.monotonic() + DEADLINE

    with serve_tls(cert, loop=loop) as server:
        held = PinnedHTTPSConnection(server.port, trusted)  # opened before the swap
        assert get_ok(held) == old_fp
        load = Load(server.port, trusted)
        load.start()
        try:
            load.wait_for(lambda: load.count() >= BEFORE_SWAP, deadline)
            swap(folder, new)
            load.wait_for(lambda: cert.fingerprint == new_fp, deadline)
            swapped_at = load.count()
            load.wait_for(lambda: load.count() >= swapped_at + AFTER_SWAP, deadline)
        finally:
            load.finish()
        after_fp = fetch_fingerprint(server.port, trusted)
        held_fp = get_ok(held)  # the connection from before the swap still works
        held.close()

    # Shown with `pytest -s`: the figures behind "zero failed requests".
    print(
        f"\n{style} new_ca={new_ca} {loop}: {load.count()} requests, "
        f"{len(load.failures)} failed, swap seen after {swapped_at}"
    )
    assert load.failures == []
    assert load.count() >= BEFORE_SWAP + AFTER_SWAP
    assert load.fingerprints == {old_fp, new_fp}  # new connections saw both, nothing else
    assert after_fp == new_fp
    assert held_fp == old_fp  # in-flight connections keep the certificate they negotiated
