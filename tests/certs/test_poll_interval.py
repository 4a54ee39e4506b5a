"""What docs/certs.md promises about certificate reloads is what `serve` does."""

from __future__ import annotations

from pathlib import Path

from webhook.certs.settings import CertificateSettings

DOCS = Path(__file__).parents[2] / "docs" / "certs.md"


def test_serve_polls_the_certificate_files_as_often_as_the_docs_say() -> None:
    """Before: the docs said every 2 s while serve polled every 10 s."""
    seconds = CertificateSettings().poll_seconds

    assert f"`serve` polls every {seconds:g} s" in DOCS.read_text()
