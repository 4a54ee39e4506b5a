"""The ``edgewarden`` command. Thin: each subcommand module calls into the packages."""

from __future__ import annotations

from webhook.cli import (  # noqa: F401  (each module registers its commands on ``app``)
    certs_commands,
    check_command,
    cluster_commands,
    policy_commands,
    serve_command,
    version_command,
)
from webhook.cli.app import app, apply_no_color


def main() -> None:
    apply_no_color()
    app()
