"""The serve flags of this layer: durations as Kubernetes users write them."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.cli.app import app
from webhook.cli.serve_command import parse_duration


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
