"""The admission tests' certificate fixture, shared (one CA per session)."""

from tests.admission.conftest import certificates

__all__ = ["certificates"]
