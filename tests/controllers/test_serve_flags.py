"""The serve flags of this layer: durations as Kubernetes users write them."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.cli.app import app
from webhook.cli.serve_command import parse_duration, serve_exception_rules


@pytest.mark.parametrize(("text", "seconds"), [
    ("5m", 300.0), ("90s", 90.0), ("1h30m", 5400.0), ("0", 0.0), ("1.5m", 90.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--audit-interval") == seconds


@pytest.mark.parametrize("text", ["5", "soon", "5 m", "m5", "-1m"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text, "--audit-interval")


def test_serve_says_which_flag_is_wrong() -> None:
    result = CliRunner().invoke(app, ["serve", "--dev", "--audit-interval", "often"])
    assert result.exit_code == 2
    assert "--audit-interval" in result.output and "'often' is not a duration" in result.output


def test_exceptions_are_off_unless_enabled_and_then_only_in_named_namespaces() -> None:
    closed = serve_exception_rules(False, [], 90)
    assert not closed.enabled and closed.namespaces == frozenset()
    opened = serve_exception_rules(True, ["policy-exceptions", "platform"], 30)
    assert opened.enabled and opened.namespaces == frozenset({"policy-exceptions", "platform"})
    assert opened.max_days == 30


@pytest.mark.parametrize(("args", "complaint"), [
    (["--enable-exceptions"], "name the namespaces PolicyExceptions may live in"),
    (["--exception-namespace", "platform"], "has no effect while PolicyExceptions are off"),
    (["--enable-exceptions", "--exception-namespace", "p", "--max-exception-days", "0"],
     "--max-exception-days"),
])
def test_serve_refuses_exception_flags_that_cannot_mean_what_they_say(
        args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--dev", *args])
    assert result.exit_code == 2
    assert complaint in " ".join(result.output.replace("│", " ").split())
