"""How an answer reaches the socket (webhook/admission/http_protocol.py, docs/http.md):
its head and body in one write once the loop's step is over (the answers of requests that
arrived together written after all of them were judged), a streamed head without waiting
for the body, a held answer written before the connection closes, and the idle keep-alive
deadline the listener's sweep enforces in place of uvicorn's per-answer timer.

The protocol is driven in process through a transport that records its writes, so what is
checked is the writes themselves (over a real socket they would be merged or split by TCP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from webhook.admission.http_protocol import GuardedHttpProtocol
from webhook.admission.settings import API_SERVER_IDLE_SECONDS, ConnectionSettings

Message = dict[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]],
                Callable[[Message], Awaitable[None]]], Awaitable[None]]

BODY = b'{"kind":"AdmissionReview"}'
REQUEST = (b"POST /validate HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
ANSWER = b'{"allowed":true}'


class RecordingTransport(asyncio.Transport):
    """The writes a protocol makes, each kept whole; closed when told to. ``peer``: the
    client's address; ``events``, if given, is told of each write as ("written", peer)."""

    def __init__(self, events: list[tuple[str, str]] | None = None,
                 peer: str = "10.0.0.1") -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.events = events
        self.peer = peer

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise AssertionError("written after close")
        self.writes.append(bytes(data))
        if self.events is not None:
            self.events.append(("written", self.peer))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": (self.peer, 40000), "sockname": ("10.0.0.2", 8443)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Tracker:
    requests_in_flight = 0

    def established(self, connection: Any) -> None: ...

    def closed(self, connection: Any) -> None: ...

    def hit(self, limit: str, peer: str) -> None:
        raise AssertionError(f"no limit is hit here, but {limit} was")

    def admit_request(self) -> bool:
        self.requests_in_flight += 1
        return True

    def request_done(self) -> None:
        self.requests_in_flight -= 1


async def answer_at_once(scope: Message, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]})
    await send({"type": "http.response.body", "body": ANSWER})


def connect(app: App, settings: ConnectionSettings | None = None,
            transport: RecordingTransport | None = None,
            ) -> tuple[GuardedHttpProtocol, RecordingTransport]:
    config = uvicorn.Config(app, http="httptools", lifespan="off", log_config=None,
                            access_log=False, proxy_headers=False)
    config.load()
    protocol = GuardedHttpProtocol(config=config, server_state=ServerState(), app_state={},
                                   settings=settings or ConnectionSettings(), tracker=Tracker())
    transport = transport or RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def answered(app: App, request: bytes = REQUEST, times: int = 1) -> list[bytes]:
    """The writes of one connection that sends ``request`` ``times``, each answered in turn."""
    async def scenario() -> list[bytes]:
        protocol, transport = connect(app)
        for _ in range(times):
            protocol.data_received(request)
            await settle()
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(scenario())


def test_an_answer_goes_out_in_one_write_head_and_body_together() -> None:
    writes = answered(answer_at_once, times=3)  # again and again on one keep-alive connection
    assert len(writes) == 3, writes
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        head, _, body = write.partition(b"\r\n\r\n")
        assert b"content-length: %d" % len(ANSWER) in head
        assert body == ANSWER


def test_requests_that_arrive_together_are_all_judged_before_any_answer_is_written() -> None:
    """Under load, several requests arrive in one turn of the loop: each answer waits for the
    end of the step, so the judgments run one after another, then the writes (their TLS
    and socket work) one after another."""
    events: list[tuple[str, str]] = []

    async def judging(scope: Message, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        events.append(("judged", scope["client"][0]))
        await answer_at_once(scope, _nothing_more, send)

    async def scenario() -> list[bytes]:
        connections = []
        for peer in ("10.0.0.1", "10.0.0.3", "10.0.0.5"):
            connections.append(connect(judging, transport=RecordingTransport(events, peer)))
        for protocol, _ in connections:
            protocol.data_received(REQUEST)
        await settle()
        for protocol, _ in connections:
            protocol.connection_lost(None)
        return [write for _, transport in connections for write in transport.writes]

    writes = asyncio.run(scenario())
    peers = ["10.0.0.1", "10.0.0.3", "10.0.0.5"]
    assert events == [("judged", peer) for peer in peers] + [("written", peer) for peer in peers]
    assert all(write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(ANSWER)
               for write in writes), writes


async def _nothing_more() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_an_answer_held_when_the_server_shuts_down_is_written_before_the_close() -> None:
    """uvicorn's shutdown closes a connection whose answer is complete at once: an answer
    still held to the end of the step goes out first."""
    connection: list[GuardedHttpProtocol] = []

    async def answer_then_shut_down(scope: Message, receive: Any, send: Any) -> None:
        await answer_at_once(scope, receive, send)
        connection[0].shutdown()  # in the same step: the answer is complete, still held

    async def scenario() -> tuple[list[bytes], bool]:
        protocol, transport = connect(answer_then_shut_down)
        connection.append(protocol)
        protocol.data_received(REQUEST)
        await settle()
        protocol.connection_lost(None)
        return transport.writes, transport.closed

    writes, closed = asyncio.run(scenario())
    assert closed
    assert len(writes) == 1 and writes[0].endswith(ANSWER), writes


def test_what_is_written_with_the_head_in_one_step_goes_out_in_that_one_write() -> None:
    async def two_chunks(scope: Message, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    writes = answered(two_chunks)
    assert len(writes) == 1, writes
    assert writes[0].endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


def test_a_head_sent_before_a_slow_body_is_not_held_back() -> None:
    """An application that sends its head and then waits (a streamed answer) has the head
    on the wire meanwhile: it is held only for the rest of the loop's step."""
    release = asyncio.Event()

    async def streaming(scope: Message, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await release.wait()
        await send({"type": "http.response.body", "body": b"done"})

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        protocol, transport = connect(streaming)
        protocol.data_received(REQUEST)
        await settle()
        before = list(transport.writes)
        release.set()
        await settle()
        protocol.connection_lost(None)
        return before, transport.writes

    before, after = asyncio.run(scenario())
    assert len(before) == 1, before
    assert before[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert before[0].endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert after[1:] == [b"4\r\ndone\r\n0\r\n\r\n"]


def test_an_answer_to_head_is_written_without_a_body() -> None:
    writes = answered(answer_at_once, b"HEAD /healthz HTTP/1.1\r\nHost: e\r\n\r\n")
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")


def test_an_idle_connection_is_closed_by_the_sweep_after_the_idle_timeout() -> None:
    settings = ConnectionSettings(idle_timeout=50.0, header_timeout=5.0)

    async def scenario() -> list[str]:
        protocol, transport = connect(answer_at_once, settings)
        seen = []
        for _ in range(2):  # each answer starts the idle time again
            protocol.data_received(REQUEST)
            await settle()
            answered = protocol.loop.time()
            # Past the header timeout but within the idle one: an idle connection stays open.
            protocol.check_deadline(answered + 10.0)
            seen.append("closed" if transport.closed else "open")
        protocol.check_deadline(answered + 51.0)
        seen.append("closed" if transport.closed else "open")
        protocol.connection_lost(None)
        return seen

    assert asyncio.run(scenario()) == ["open", "open", "closed"]


def test_a_request_started_after_a_pause_still_has_its_header_deadline() -> None:
    settings = ConnectionSettings(idle_timeout=50.0, header_timeout=5.0)
    hits: list[str] = []

    class Counting(Tracker):
        def hit(self, limit: str, peer: str) -> None:
            hits.append(limit)

    async def scenario() -> bytes:
        protocol, transport = connect(answer_at_once, settings)
        protocol.tracker = Counting()
        protocol.data_received(REQUEST)
        await settle()
        protocol.data_received(REQUEST[:10])  # and then nothing more
        protocol.check_deadline(protocol.loop.time() + 6.0)
        await settle()
        protocol.connection_lost(None)
        return transport.writes[-1]

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 408 ")
    assert hits == ["header_timeout"]


def test_the_idle_timeout_outlives_the_api_servers_own() -> None:
    """The API server closes pooled connections idle for 90 s; were ours shorter, a review
    it sends on one we are closing would meet EOF, which it does not retry (a POST), and
    its failurePolicy would decide instead of the policies."""
    assert ConnectionSettings().idle_timeout > API_SERVER_IDLE_SECONDS

