"""What ``serve --register-webhooks`` needs to know to keep its webhook configurations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: the server's settings load without the policy stack
    from webhook.registration.render import WebhookSettings

# On the Service the configurations point at: ``edgewarden uninstall`` sets it before it
# deletes them, and no replica registers again while it is there (see
# webhook/controllers/registration.py).
UNINSTALLING_ANNOTATION = "edgewarden.dev/uninstalling"


@dataclass(frozen=True)
class RegistrationSettings:
    webhooks: WebhookSettings
    # The CA(s) the API server must trust (PEM), read again on every pass so a rotated
    # bundle is registered; None: ``ca.crt`` beside the serving certificate.
    ca_bundle_file: Path | None = None
    interval_seconds: float = 10.0

    def bundle_file(self, cert_dir: Path | None, tls_cert: Path | None) -> Path | None:
        if self.ca_bundle_file is not None:
            return self.ca_bundle_file
        if cert_dir is not None:
            return cert_dir / "ca.crt"
        if tls_cert is not None:
            return tls_cert.parent / "ca.crt"
        return None
