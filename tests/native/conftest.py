"""The real API server for the CEL reference tests (tests/native/test_*_reference.py); the
other tests here need none. Each pytest process starts its own control plane."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.fixtures import kube_control_plane  # noqa: F401  (the session fixture)

from .reference import Reference


@pytest.fixture(scope="session")
def reference(kube_control_plane: Any) -> Reference:  # noqa: F811
    return Reference(kube_control_plane)
