"""The AdmissionReview v1 answer as types (admission.k8s.io/v1, as the API server reads it).

TypedDicts, not classes: the answer is built as plain dicts and serialised once by orjson;
these types let mypy and a reader see its shape. The request side has one type, the
engine's :class:`webhook.policy.request.AdmissionRequest`, which webhook/admission/
review.py parses the body into (checking each field it reads); the raw mapping it keeps
for CEL's ``request`` is the API server's, as sent.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"


class Status(TypedDict):
    """The metav1.Status of a denial; kubectl prints ``message``."""

    code: int
    message: str
    reason: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]  # base64 of the JSONPatch


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: str
    response: NotRequired[AdmissionResponse]
