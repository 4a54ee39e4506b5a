"""A CA and a serving certificate for 127.0.0.1, made once per test run, for the double's TLS.

Issued by edgewarden's own certificate code, as the other test servers' certificates are.
"""

from __future__ import annotations

import functools
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from webhook.certs.issue import issue_ca, issue_serving


@dataclass(frozen=True)
class ServingTLS:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:  # the ssl module loads files only
            cert, key = Path(folder) / "tls.crt", Path(folder) / "tls.key"
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


@functools.cache
def serving_tls() -> ServingTLS:
    ca = issue_ca(common_name="kubeapi-double-ca")
    pair = issue_serving(
        ca, service="kubernetes", namespace="default", hosts_extra=("127.0.0.1", "localhost")
    )
    return ServingTLS(ca_pem=ca.cert_pem, cert_pem=pair.cert_pem, key_pem=pair.key_pem)
