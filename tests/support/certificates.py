"""The ``certificates`` fixture: one CA and a serving certificate for
``edgewarden.edgewarden.svc`` and nothing else (tests/admission checks that the harness
really verifies that name, so 127.0.0.1 is deliberately not in it). Registered for every
folder by tests/conftest.py."""

from __future__ import annotations

import pytest

from webhook.certs.files import GeneratedCertificates, generate_certificates

SERVICE = "edgewarden"
NAMESPACE = "edgewarden"


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCertificates:
    return generate_certificates(tmp_path_factory.mktemp("certs"), service=SERVICE,
                                 namespace=NAMESPACE)
