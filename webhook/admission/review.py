"""AdmissionReview v1 in and out: bytes -> AdmissionRequest, Decision -> response bytes.

The body is parsed exactly once, with orjson, into plain dicts; no schema library runs on
the hot path (the engine reads the object as a mapping anyway). Only the fields the
API server always sends are checked, each failure naming what is wrong so a 400 can say so.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from webhook.admission import wire
from webhook.policy.model.request import NO_USER, AdmissionRequest, BodyFacts, UserInfo

# An auditAnnotations key is prefixed by the API server with the webhook's name and a "/",
# and the whole must be a qualified name; a key that is not a valid name part (<= 63
# characters of [A-Za-z0-9_.-], alphanumeric at both ends) is dropped with only a log line
# in the API server. We repair keys here so every annotation arrives.
_QUALIFIED_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_INVALID_KEY_CHARACTERS = re.compile(r"[^-A-Za-z0-9_.]")


# A 400 says what is wrong, quoting at most this much of what was sent: a reason, not an
# echo (a 1 MB ``kind`` must not come back, nor land in the API server's log).
MAX_QUOTED = 64
# The API server sends a UUID; anything far longer, or with control characters, is not
# one and would only carry an attacker's text into answers and logs.
MAX_UID_LENGTH = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ReviewError(ValueError):
    """The body is not an AdmissionReview we can answer; ``str()`` is the 400 reason."""


def quote(value: object) -> str:
    """A short, escaped rendering of untrusted ``value`` for a message: a string's first
    MAX_QUOTED characters (repr-escaped), or only the type of anything else."""
    if not isinstance(value, str):
        return "null" if value is None else f"a JSON {_json_type(value)}"
    if len(value) <= MAX_QUOTED:
        return repr(value)
    return f"{value[:MAX_QUOTED]!r}… ({len(value)} characters)"


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else type(value).__name__


@dataclass(slots=True, init=False)
class Review:
    """A parsed AdmissionReview: the envelope to echo back, and the typed request.

    (A written ``__init__`` and Final fields, not a frozen dataclass: made once per admission,
    see UserInfo in webhook/policy/model/request.py.)"""

    api_version: Final[str]
    kind: Final[str]
    request: Final[AdmissionRequest]

    def __init__(self, api_version: str, kind: str, request: AdmissionRequest) -> None:
        self.api_version = api_version
        self.kind = kind
        self.request = request


def parse_review(body: bytes, *, judged_at: float | None = None) -> Review:
    """Parse an AdmissionReview v1 body; raise ReviewError with a reason a person can act on.

    ``judged_at`` is the server's clock when the review arrived (PolicyException expiry is
    judged against it)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson says where (line, column), never what: no input is quoted.
        raise ReviewError(f"body is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise ReviewError("body is not a JSON object (expected an AdmissionReview)")
    kind = document.get("kind")
    if kind != wire.KIND:
        raise ReviewError(f"kind is {quote(kind)}, expected {wire.KIND!r}")
    api_version = document.get("apiVersion")
    if api_version != wire.API_VERSION:
        raise ReviewError(
            f"apiVersion is {quote(api_version)}, expected {wire.API_VERSION!r}")
    raw = document.get("request")
    if not isinstance(raw, dict):
        raise ReviewError("AdmissionReview has no request object")
    request = request_from_raw(raw, judged_at=judged_at,
                               facts=BodyFacts(body, document, raw))
    return Review(api_version, kind, request)


def request_from_raw(raw: dict[str, Any], *, judged_at: float | None = None,
                     facts: BodyFacts | None = None) -> AdmissionRequest:
    """Build the engine's typed request from the review's ``request`` mapping."""
    uid = raw.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing or not a string")
    if len(uid) > MAX_UID_LENGTH or _CONTROL.search(uid):
        raise ReviewError(f"request.uid {quote(uid)} is not a UID (at most "
                          f"{MAX_UID_LENGTH} characters, no control characters)")
    operation = raw.get("operation")
    if not isinstance(operation, str) or not operation:
        raise ReviewError("request.operation is missing or not a string")
    kind = _mapping(raw, "kind")
    resource = _mapping(raw, "resource")
    obj = _optional_object(raw, "object")
    old_object = _optional_object(raw, "oldObject")
    user_raw = raw.get("userInfo")
    user = NO_USER
    if isinstance(user_raw, dict):
        groups = user_raw.get("groups")
        user = UserInfo(
            username=str(user_raw.get("username") or ""),
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            uid=str(user_raw.get("uid") or ""),
        )
    return AdmissionRequest(
        uid=uid,
        kind=str(kind.get("kind") or ""),
        group=str(kind.get("group") or ""),
        version=str(kind.get("version") or ""),
        resource=str(resource.get("resource") or ""),
        namespace=str(raw.get("namespace") or ""),
        name=str(raw.get("name") or ""),
        operation=operation,
        object=obj,
        old_object=old_object,
        user=user,
        dry_run=raw.get("dryRun") is True,
        raw=raw,
        judged_at=judged_at,
        facts=facts,
    )


def _mapping(raw: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = raw.get(field)
    if not isinstance(value, dict):
        raise ReviewError(f"request.{field} is missing or not an object")
    return value


def _optional_object(raw: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"request.{field} is not an object")
    return value


def audit_annotation_key(name: str) -> str:
    """A policy name made into a key the API server accepts (see _QUALIFIED_NAME_PART)."""
    if len(name) <= 63 and _QUALIFIED_NAME_PART.match(name):
        return name
    key = _INVALID_KEY_CHARACTERS.sub("-", name)[:63].strip("-_.")
    return key or "policy"


def build_response(
    uid: str,
    *,
    allowed: bool,
    message: str | None = None,
    code: int = 403,
    reason: str = "Forbidden",
    warnings: Sequence[str] = (),
    audit_annotations: Mapping[str, str] | None = None,
    patch: Sequence[Mapping[str, Any]] | None = None,
) -> wire.AdmissionResponse:
    """The ``response`` of an AdmissionReview answer."""
    response: wire.AdmissionResponse = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "message": message or "denied", "reason": reason}
    if warnings:
        response["warnings"] = list(warnings)
    if audit_annotations:
        response["auditAnnotations"] = {
            audit_annotation_key(key): value for key, value in audit_annotations.items()
        }
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(list(patch))).decode("ascii")
    return response


def encode_review(review: Review | None, response: wire.AdmissionResponse) -> bytes:
    """The answer's bytes, echoing the review's apiVersion and kind."""
    answer: wire.AdmissionReview = {
        "apiVersion": review.api_version if review else wire.API_VERSION,
        "kind": review.kind if review else wire.KIND,
        "response": response,
    }
    return orjson.dumps(answer)

