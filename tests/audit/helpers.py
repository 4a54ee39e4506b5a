"""Helpers for the reporting tests: run the real command, point at the fixtures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from typer.testing import Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support.cli import run

FIXTURES = Path(__file__).parent / "fixtures"
POLICIES = str(FIXTURES / "policies")
RENDERED = str(FIXTURES / "shop-rendered.yaml")
CLUSTER = str(FIXTURES / "cluster-state.yaml")
SCHEMAS = Path(__file__).parents[2] / "webhook" / "offline" / "schemas"



def run_args(args: Sequence[str]) -> Result:
    return run(*args)
