"""The ``edgewarden`` command. Thin: each subcommand module calls into the packages."""

from __future__ import annotations

from webhook.cli import (  # noqa: F401  (each module registers its commands on ``app``)
    certs_commands,
    cluster_commands,
    policy_commands,
    serve_command,
)
from webhook.cli.app import app


def main() -> None:
    app()
