"""Reading what an AdmissionReview response asks the API server to do."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson


def patch_of(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSONPatch of an AdmissionReview ``response`` (empty when there is none)."""
    if "patch" not in response:
        return []
    assert response.get("patchType") == "JSONPatch", response
    patch: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return patch
