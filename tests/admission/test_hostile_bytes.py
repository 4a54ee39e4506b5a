"""Hostile bytes at the HTTP edge: a 400 quotes a short prefix, never the input; what a
caller controls cannot forge a log line; object content stays out of the server's log."""

from __future__ import annotations

import logging

import orjson
import pytest

from .harness import RunningServer, load_object, make_review

MEGABYTE = 1_048_576
FORGED = "2026-01-01 00:00:00,000 ERROR edgewarden.server: FORGED"
SECRET = "s3cr3t-annotation-value"


def _status_message(server: RunningServer, body: object) -> str:
    response = server.post("/validate", orjson.dumps(body))
    assert response.status_code == 400
    assert len(response.content) < 1024, "the answer echoes the input"
    message: str = response.json()["message"]
    return message


@pytest.mark.parametrize("field", ["kind", "apiVersion"])
def test_a_400_quotes_only_a_short_prefix_of_a_huge_string(
    default_server: RunningServer, field: str
) -> None:
    """Before: a 1 MB kind came back whole in the 400 (and in the API server's log)."""
    review = make_review("CREATE", "dev", load_object("services/clusterip.yaml"))
    review[field] = "A" * MEGABYTE

    message = _status_message(default_server, review)

    assert f"{field} is 'AAAA" in message
    assert f"({MEGABYTE} characters)" in message


def test_a_400_names_the_type_of_a_huge_non_string(default_server: RunningServer) -> None:
    review = make_review("CREATE", "dev", load_object("services/clusterip.yaml"))
    review["kind"] = ["x" * 1000] * 1000

    assert "kind is a JSON array" in _status_message(default_server, review)


@pytest.mark.parametrize("uid", ["u" * MEGABYTE, f"uid\n{FORGED}", "uid\x1b[2J"])
def test_a_uid_that_is_no_uid_is_refused_without_echoing_it(
    default_server: RunningServer, uid: str
) -> None:
    review = make_review("CREATE", "dev", load_object("services/clusterip.yaml"))
    review["request"]["uid"] = uid

    message = _status_message(default_server, review)

    assert "request.uid" in message and "is not a UID" in message
    assert "\n" not in message and FORGED not in message.replace("\\n", "\n").split("\n")[0]


class _ExplodingEngine:
    def evaluate(self, request: object, cluster: object) -> None:
        raise RuntimeError(f"boom: {SECRET}")


def test_what_the_caller_sends_cannot_forge_a_log_line_or_reach_the_log(
    default_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A newline in request.name (or the uid) must not start a line of its own in the
    server's log, and no object content (an annotation value) may appear there."""
    caplog.set_level(logging.DEBUG)
    crafted = load_object("services/nodeport.yaml")
    crafted["metadata"]["name"] = f"web\n{FORGED}"
    crafted["metadata"]["annotations"] = {"note": SECRET}
    denied = make_review("CREATE", "payments", crafted)  # a production NodePort: denied
    denied["request"]["name"] = crafted["metadata"]["name"]
    assert default_server.review("/validate", denied)["allowed"] is False

    loaded = default_server.runtime.state.policies
    assert loaded is not None
    engine = loaded.engine
    loaded.engine = _ExplodingEngine()  # type: ignore[assignment]
    try:
        failing = make_review("CREATE", "dev", crafted)
        failing["request"]["name"] = crafted["metadata"]["name"]
        assert default_server.review("/validate", failing)["allowed"] is False
        # The internal-error line names the uid: one with a newline must not get that far.
        failing = make_review("CREATE", "dev", crafted)
        failing["request"]["uid"] = f"uid\n{FORGED}"
        default_server.post("/validate", orjson.dumps(failing))  # refused: 400 (above)
    finally:
        loaded.engine = engine

    lines = [line for record in caplog.records for line in record.getMessage().split("\n")]
    assert any("denied" in line for line in lines), "the denial was logged"
    assert not [line for line in lines if line.startswith(FORGED)]
    assert not [line for line in lines if SECRET in line]
