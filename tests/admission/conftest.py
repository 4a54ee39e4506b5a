"""Fixtures for the server tests; the harness itself is in harness.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from webhook.certs.files import GeneratedCertificates

from .harness import RunningServer, base_settings, start_server


@pytest.fixture(scope="module")
def default_server(certificates: GeneratedCertificates,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The shipped default policies, enforcing, against the fixture cluster."""
    tmp = tmp_path_factory.mktemp("default-server")
    running = start_server(base_settings(certificates, tmp), certificates.ca_file)
    yield running
    running.stop()
