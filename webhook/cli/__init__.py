"""The ``edgewarden`` command. Thin: each subcommand module calls into the packages.

The command modules import the engine, the reports and the server inside the commands
that use them, not at the top: ``--help``, ``--version`` and every shell-completion TAB
start the program, and would otherwise wait for the CEL runtime to load.
"""

from __future__ import annotations

from webhook.cli import (  # noqa: F401  (each module registers its commands on ``app``)
    certs_commands,
    check_command,
    cluster_commands,
    diff_command,
    export_command,
    policy_commands,
    pre_commit_command,
    replay_command,
    serve_command,
    uninstall_command,
    version_command,
)
from webhook.cli.app import app, apply_no_color


def main() -> None:
    apply_no_color()
    app()
