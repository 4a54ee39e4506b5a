"""The serving certificate, reloaded in place when its files change.

How a swap stays invisible to clients: :attr:`ServingCertificate.ssl_context` is one
``SSLContext`` for the life of the server (uvicorn holds it in its listening socket). Its
``sni_callback`` runs inside every handshake, before the server picks a certificate, and
points that connection at the *current* inner context, a complete, already verified
cert+key pair. A reload builds a new inner context off to the side and swaps one reference:

* a handshake either sees the old pair or the new one, never a half-loaded context (loading
  a chain into a live context drops the old key before the new one is in, and keeps a
  certificate of the other key type around);
* connections already open keep the certificate they negotiated (OpenSSL copies it into
  the connection), so nothing in flight is cut;
* the outer context also gets the new chain loaded, for callers that copy it.

Change detection handles a mounted Secret: kubelet writes a new timestamped folder and
renames the ``..data`` symlink, so we compare the *resolved* files (inode, mtime, size)
and their content hash, and read each pair as one snapshot (stat before and after).

With a client CA (``serve --client-ca``) every context asks the client for a certificate
and verifies one it presents against that CA; a certificate that does not verify fails the
handshake. With ``require_client_certificate`` (``serve --client-ca`` with ``--probe-port``:
the kubelet probes a listener of its own) a client that presents none fails the handshake
too, before a byte of HTTP is read. Without it a client may still present none (kubelet's
HTTPS probes cannot present one): the admission endpoints refuse such a caller, the probes
do not. The CA file is watched and reloaded with the pair: verification uses the store of
the context the SNI callback picked, so a rotated CA applies to the next handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.certs.issue import fingerprint, load_certificates, load_key_pair, utcnow
from webhook.errors import CertificateError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("edgewarden.certs")

Signature = tuple[tuple[str, int, int, int, int], ...]


@dataclass(frozen=True)
class _Loaded:
    context: ssl.SSLContext
    not_after: datetime.datetime
    fingerprint: str
    digest: str
    signature: Signature


class ServingCertificate:
    """The server's certificate and key, hot-reloadable (see the module docstring)."""

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None = None,
                 *, require_client_certificate: bool = False) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.client_ca_file = Path(client_ca_file) if client_ca_file is not None else None
        # Only meaningful with a client CA: who would verify the certificate otherwise?
        self._require = require_client_certificate and client_ca_file is not None
        snapshot = None
        for _ in range(5):  # a rotation may be half-way through: take a consistent read
            snapshot = self._snapshot()
            if snapshot is not None:
                break
        if snapshot is None:
            raise CertificateError(
                f"{self.cert_file} and {self.key_file} keep changing while being read"
            )
        self._current = self._load(*snapshot)
        self._refused: Signature | None = None
        # The outer context decides whether a certificate is asked for (OpenSSL copies the
        # verify mode into each connection before the SNI callback switches contexts).
        self._context = _server_context(snapshot[3], self._require)
        _load_chain(self._context, snapshot[0], snapshot[1])
        self._context.sni_callback = self._select_context

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._context

    @property
    def not_after(self) -> datetime.datetime:
        return self._current.not_after

    @property
    def verifies_clients(self) -> bool:
        """A client certificate is asked for and verified (``--client-ca``)."""
        return self.client_ca_file is not None

    @property
    def requires_clients(self) -> bool:
        """A caller without a verified client certificate fails the TLS handshake."""
        return self._require

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate now served (hex), for logs and tests."""
        return self._current.fingerprint

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; True when the served pair was swapped.

        A broken or mismatched pair is refused: the current one stays, the refusal is logged
        once per change of the files (a half-written rotation completes at the next poll).
        """
        try:
            signature = _signature(*self._files())
        except OSError as error:
            log.warning("serving certificate files unreadable, keeping current: %s", error)
            return False
        if signature in (self._current.signature, self._refused):
            return False
        try:
            snapshot = self._snapshot()
        except CertificateError as error:
            # A file vanished or turned unreadable between the stat and the read (a rotation
            # in progress): keep serving, and read it again at the next poll.
            log.warning("serving certificate files unreadable, keeping current: %s", error)
            return False
        if snapshot is None:  # changed under our feet: read it at the next poll
            return False
        try:
            loaded = self._load(*snapshot)
        except CertificateError as error:
            self._refused = snapshot[2]
            log.error("new serving certificate refused, keeping the current one: %s", error)
            return False
        if loaded.digest == self._current.digest:
            self._current = loaded  # same content, new inode (e.g. rewritten): nothing to do
            return False
        if loaded.not_after <= utcnow():
            log.warning("new serving certificate already expired at %s", loaded.not_after)
        self._current = loaded
        with contextlib.suppress(ssl.SSLError, OSError):
            # Best effort for anyone copying the outer context: handshakes never use its
            # certificate, the callback switches them to the inner context first.
            _load_chain(self._context, snapshot[0], snapshot[1])
        log.info(
            "serving certificate reloaded: sha256 %s, expires %s",
            loaded.fingerprint,
            loaded.not_after.isoformat(),
        )
        return True

    # --- internals -------------------------------------------------------------------

    def _select_context(self, connection: Any, server_name: str | None, _: Any) -> None:
        # Runs in the handshake of every new connection, with or without SNI.
        connection.context = self._current.context

    def _files(self) -> tuple[Path, ...]:
        extra = (self.client_ca_file,) if self.client_ca_file is not None else ()
        return (self.cert_file, self.key_file, *extra)

    def _snapshot(self) -> tuple[bytes, bytes, Signature, bytes | None] | None:
        try:
            before = _signature(*self._files())
            cert_pem = self.cert_file.read_bytes()
            key_pem = self.key_file.read_bytes()
            ca_pem = self.client_ca_file.read_bytes() if self.client_ca_file else None
            after = _signature(*self._files())
        except OSError as error:
            raise CertificateError(f"cannot read the serving certificate: {error}") from None
        return (cert_pem, key_pem, after, ca_pem) if before == after else None

    def _load(
        self, cert_pem: bytes, key_pem: bytes, signature: Signature, ca_pem: bytes | None
    ) -> _Loaded:
        where = f"{self.cert_file} / {self.key_file}"
        pair = load_key_pair(cert_pem, key_pem, f"serving certificate {where}")
        if ca_pem is not None:
            load_certificates(ca_pem, f"client CA {self.client_ca_file}")  # PEM, or refuse
        context = _server_context(ca_pem, self._require)
        try:
            _load_chain(context, cert_pem, key_pem)
        except (ssl.SSLError, OSError) as error:
            raise CertificateError(f"{where}: OpenSSL refused the pair: {error}") from None
        digest = hashlib.sha256(cert_pem + b"\0" + key_pem + b"\0" + (ca_pem or b"")).hexdigest()
        return _Loaded(context, pair.not_after, fingerprint(pair.cert), digest, signature)


def _server_context(client_ca_pem: bytes | None = None, require: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_ca_pem is None:
        context.verify_mode = ssl.CERT_NONE  # no --client-ca: callers are not asked
        return context
    try:
        context.load_verify_locations(cadata=client_ca_pem.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as error:
        raise CertificateError(f"OpenSSL refused the client CA: {error}") from None
    # REQUIRED when the probes have a listener of their own (--probe-port): nobody without
    # a certificate has business on this port. Otherwise OPTIONAL: a certificate presented
    # must verify, but probes present none; the admission endpoints refuse a caller
    # without one (app.py).
    context.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
    return context


def _load_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    with _private_files(cert_pem, key_pem) as (cert_path, key_path):
        context.load_cert_chain(cert_path, key_path)


def _signature(*paths: Path) -> Signature:
    result = []
    for path in paths:
        real = os.path.realpath(path)  # follows tls.crt -> ..data/tls.crt -> ..2024_x/tls.crt
        st = os.stat(real)
        result.append((real, st.st_ino, st.st_mtime_ns, st.st_size, st.st_dev))
    return tuple(result)


@contextlib.contextmanager
def _private_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Paths holding exactly the bytes we read (``load_cert_chain`` takes only paths), so the
    pair loaded is the pair verified even if the real files move again meanwhile. On Linux
    they live in memory (memfd), elsewhere in a private temporary folder."""
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create("edgewarden-cert"), os.memfd_create("edgewarden-key")]
        try:
            for fd, data in zip(fds, (cert_pem, key_pem), strict=True):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="edgewarden-tls-") as folder:
        cert_path, key_path = Path(folder, "tls.crt"), Path(folder, "tls.key")
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        yield str(cert_path), str(key_path)


async def watch_certificate(
    cert: ServingCertificate,
    interval: float = 2.0,
    on_reload: Callable[[ServingCertificate], None] | None = None,
) -> None:
    """Poll the files forever; cancel the task to stop. Runs the reload on the event loop's
    thread, which is also the thread that starts handshakes."""
    while True:
        await asyncio.sleep(interval)
        try:
            swapped = cert.reload_if_changed()
        except Exception:  # never let the watcher die: the old certificate keeps serving
            log.exception("serving certificate reload failed")
            continue
        if swapped and on_reload is not None:
            on_reload(cert)


def uvicorn_config(
    app: Any, host: str, port: int, cert: ServingCertificate, **kwargs: Any
) -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``cert.ssl_context`` (so reloads reach the listener).

    uvicorn 0.54 builds its SSLContext in ``Config.load()`` (called by ``Server.serve`` only
    when the config is not loaded yet), through ``ssl_context_factory`` when one is given:
    the factory hands it our long-lived context instead of one read once from the files.
    Loading the config early and then setting ``config.ssl = cert.ssl_context`` is
    equivalent; either way the listener holds ``cert.ssl_context``.
    """
    import uvicorn  # imported here: the CLI's offline commands need not load the server

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert.cert_file),
        ssl_keyfile=str(cert.key_file),
        ssl_context_factory=lambda _config, _default: cert.ssl_context,
        **kwargs,
    )
    return config
