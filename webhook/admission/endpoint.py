"""The admission endpoints (``/validate``, ``/mutate``, ``/mutate-policyexception``) as raw
ASGI callables, and the router that sends each request to one of them or to the FastAPI
app (webhook/admission/app.py says why they are raw).

A module of their own, apart from the FastAPI app: the image compiles this one with mypyc
(setup.py's COMPILED), and FastAPI reads its routes' signatures, which a compiled function
does not have.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from webhook.admission import handlers
from webhook.admission.review import Review, ReviewError, encode_review, parse_review
from webhook.admission.state import ServerState

log = logging.getLogger("edgewarden.server")

_JSON_HEADERS = [(b"content-type", b"application/json")]
MAX_STATUS_MESSAGE = 512
Handler = Callable[[ServerState, Review], handlers.Answer | Awaitable[handlers.Answer]]


class Router:
    """The server's ASGI app: an exact path of ``endpoints`` answers its request, anything
    else (and lifespan) goes to ``fallback``."""

    def __init__(self, state: ServerState, endpoints: Mapping[str, ASGIApp],
                 fallback: ASGIApp) -> None:
        self.state = state  # for tests and tools, not for handlers
        self.endpoints = dict(endpoints)
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.fallback(scope, receive, send)


class _ClientGone(Exception):
    """The connection closed before the body arrived: nobody to answer."""


class _BodyTooLarge(Exception):
    pass


class AdmissionEndpoint:
    def __init__(self, state: ServerState, name: str, handler: Handler) -> None:
        self.state = state
        self.name = name
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.state.require_client_certificate and not _client_certificate(scope):
            # --client-ca: only a caller whose certificate that CA signed may ask.
            if self.state.refusals is not None:
                client = scope.get("client") or ("unknown peer", 0)
                self.state.refusals.hit("client_certificate", f"{client[0]}:{client[1]}")
            self.state.metrics.tallies.count_request(self.name, "unauthenticated")
            await _send_status(send, 403, "Forbidden",
                               f"/{self.name} needs a client certificate signed by the "
                               "webhook's client CA (see docs/certs.md)")
            return
        if scope["method"] != "POST":
            await _send_status(send, 405, "MethodNotAllowed",
                               f"{scope['method']} is not allowed on /{self.name}: use POST",
                               extra_headers=[(b"allow", b"POST")])
            return
        content_type, content_length = _content_headers(scope)
        if content_type != b"application/json":
            await self._refuse(send, 415, "UnsupportedMediaType",
                               "Content-Type must be application/json (an AdmissionReview)")
            return
        limit = self.state.max_body_bytes
        if content_length is not None and content_length > limit:
            await self._refuse(send, 413, "RequestEntityTooLarge",
                               f"body of {content_length} bytes is over the {limit}-byte limit")
            return
        try:
            body = await _read_body(receive, limit)
        except _BodyTooLarge:
            await self._refuse(send, 413, "RequestEntityTooLarge",
                               f"body is over the {limit}-byte limit")
            return
        except _ClientGone:
            return
        await self._answer(body, send)

    async def _answer(self, body: bytes, send: Send) -> None:
        started = time.perf_counter()
        try:
            review = parse_review(body, judged_at=self.state.clock())
        except ReviewError as refused:
            await self._refuse(send, 400, "BadRequest", str(refused))
            return
        try:
            answered = self.handler(self.state, review)
            # Only a review that takes claims at the API server waits (claiming.py).
            answer = answered if isinstance(answered, handlers.Answer) else await answered
        except Exception as error:
            # Never a 500: the API server would apply the webhook's failurePolicy to an
            # error blindly; answering ourselves applies the policies' own. The log gets the
            # stack and the error type, never the body or the error text (it may quote it).
            log.error("internal error judging uid %s on /%s (%s):\n%s",
                      review.request.uid, self.name, type(error).__name__,
                      "".join(traceback.format_tb(error.__traceback__)))
            answer = handlers.Answer(
                handlers.failure_response(self.state, review, self.name), "error"
            )
        body = encode_review(review, answer.response)
        self.state.metrics.tallies.observe_decision(self.name, time.perf_counter() - started)
        self.state.metrics.tallies.count_request(self.name, answer.result)
        await send({"type": "http.response.start", "status": 200, "headers": [
            *_JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, send: Send, code: int, reason: str, message: str) -> None:
        self.state.metrics.tallies.count_request(self.name, "bad_request")
        # The reasons quote little of the input (review.quote); this bounds what slips by.
        await _send_status(send, code, reason, message[:MAX_STATUS_MESSAGE])


def _client_certificate(scope: Scope) -> str | None:
    """The verified client certificate's subject (the ASGI TLS extension), if any."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    name = tls.get("client_cert_name")
    return name if isinstance(name, str) and name else None


def _content_headers(scope: Scope) -> tuple[bytes | None, int | None]:
    content_type: bytes | None = None
    content_length: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            # "application/json; charset=utf-8" is JSON too; parameters do not matter.
            content_type = value.split(b";", 1)[0].strip().lower()
        elif name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                content_length = None
    return content_type, content_length


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, counted as it streams: a chunked or lying sender stops at ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send_status(
    send: Send, code: int, reason: str, message: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An HTTP error answered with a metav1.Status body, which the API server logs as is."""
    body = orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": message, "reason": reason, "code": code})
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()),
               *(extra_headers or [])]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
