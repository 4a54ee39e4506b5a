"""``POST /mutate-policyexception``: the approver of a PolicyException is whoever wrote it.

The API server calls this mutating webhook for every CREATE and UPDATE of a PolicyException
(``failurePolicy: Fail``; webhook/registration/render.py renders it). It sets
``spec.approvedBy`` to the request's ``userInfo.username``, overwriting what the client
wrote, so the approver in warnings, audit annotations and reports is the identity the API
server authenticated, never free text:

* CREATE: the creating user;
* UPDATE that changes what the exception says (its spec, ``approvedBy`` aside): the updating
  user, who vouches for the new terms;
* UPDATE that leaves the spec alone (labels, annotations): the approver recorded before,
  restored if the client tried to change it.

It never denies for what an exception says (the CRD's schema and the loader do that), but
it warns, so ``kubectl`` prints it, when this server's rules would ignore the exception: off,
a namespace ``--exception-namespace`` does not name, a lifetime over
``--max-exception-days``. It denies only what it cannot record: a request without a user,
or an error of its own (fail closed, as the configuration's failurePolicy).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from webhook.admission.handlers import Answer
from webhook.admission.review import Review, build_response
from webhook.admission.state import ServerState
from webhook.errors import PolicyLoadError
from webhook.policy.load.documents import exception_from_object
from webhook.policy.load.schema import API_VERSION
from webhook.policy.model.exception_rules import ExceptionRules

log = logging.getLogger("edgewarden.server")

PATH = "/mutate-policyexception"
APPROVED_BY = "approvedBy"
_GROUP = API_VERSION.split("/")[0]


def approve(state: ServerState, review: Review) -> Answer:
    """The patch recording the approver of one PolicyException write."""
    request = review.request
    try:
        return _approve(state, review, state.exception_rules)
    except Exception as error:  # fail closed, and say only the error's type
        log.error("internal error recording the approver of uid %s (%s)",
                  request.uid, type(error).__name__)
        return Answer(build_response(
            request.uid, allowed=False, code=500, reason="InternalError",
            message=f"edgewarden could not record the approver of this PolicyException (uid "
                    f"{request.uid}, see the webhook's log)"), "error")


def _approve(state: ServerState, review: Review, rules: ExceptionRules) -> Answer:
    request = review.request
    obj = request.object
    if (request.group != _GROUP or request.kind != "PolicyException"
            or request.operation not in ("CREATE", "UPDATE") or obj is None):
        # Only PolicyException writes are sent here; anything else passes untouched.
        return Answer(build_response(request.uid, allowed=True), "allowed")
    username = request.user.username
    if not username:
        return Answer(build_response(
            request.uid, allowed=False, code=403, reason="Forbidden",
            message="a PolicyException needs an authenticated user to record as its approver "
                    "(request.userInfo.username is empty)"), "denied")
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        # Malformed: the CRD's schema refuses it after us; nothing to record on.
        return Answer(build_response(request.uid, allowed=True), "allowed")
    approver = username
    old_spec = (request.old_object or {}).get("spec") if request.operation == "UPDATE" else None
    if isinstance(old_spec, Mapping) and _terms(old_spec) == _terms(spec):
        recorded = old_spec.get(APPROVED_BY)
        if isinstance(recorded, str) and recorded:
            approver = recorded  # same terms: the approval stands, whoever relabels it
    patch: list[dict[str, Any]] = []
    if spec.get(APPROVED_BY) != approver:
        op = "replace" if APPROVED_BY in spec else "add"
        patch.append({"op": op, "path": f"/spec/{APPROVED_BY}", "value": approver})
    warnings = _warnings(state, request.namespace, obj, approver, rules)
    return Answer(build_response(request.uid, allowed=True, patch=patch or None,
                                 warnings=warnings), "patched" if patch else "allowed")


def _terms(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What an exception says, without who approved it."""
    return {key: value for key, value in spec.items() if key != APPROVED_BY}


def _warnings(state: ServerState, namespace: str, obj: Mapping[str, Any], approver: str,
              rules: ExceptionRules) -> list[str]:
    """Why this server would ignore the exception, if it would (kubectl prints it)."""
    metadata = obj.get("metadata")
    document = {**obj, "apiVersion": API_VERSION, "kind": "PolicyException",
                "metadata": {**(metadata if isinstance(metadata, Mapping) else {}),
                             "namespace": namespace},
                "spec": {**obj["spec"], APPROVED_BY: approver}}
    try:
        exception = exception_from_object(document)
    except PolicyLoadError:
        return []  # the CRD's schema, or the server's log once it is stored, says what
    now = state.clock()
    if exception.created_at is None:  # a CREATE: the API server stamps it right after us
        exception = dataclasses.replace(exception, created_at=now)
    reason = rules.refusal(exception, now)
    return [] if reason is None else [f"PolicyException {exception.ref} will exempt nothing: "
                                      f"{reason}"]
