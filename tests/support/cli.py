"""``run``: the ``edgewarden`` command as a user runs it, in this process.

Exceptions escaping a command fail the test (``catch_exceptions=False``): a user must
never see a traceback, so a test must never hide one.
"""

from __future__ import annotations

from collections.abc import Mapping

from typer.testing import CliRunner, Result

from webhook.cli import app


def run(*args: str, stdin: str | None = None, env: Mapping[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin, env=env, catch_exceptions=False)
