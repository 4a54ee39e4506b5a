"""(placeholder: commands registered here)."""

from webhook.cli.app import app  # noqa: F401
