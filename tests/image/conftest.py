"""The image tests: the image built by scripts/image, run with buildah, against the real
API server of tests/kube where a test asks for ``kube_control_plane``."""

from __future__ import annotations

import pytest

from tests.kube.fixtures import kube_control_plane

from .images import Image, locate

__all__ = ["image", "kube_control_plane"]


@pytest.fixture(scope="session")
def image() -> Image:
    return locate()
