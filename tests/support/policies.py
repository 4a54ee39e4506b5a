"""Policies from YAML text, loaded the one way the product loads them: from a file."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet


def policies_from_yaml(text: str) -> PolicySet:
    """Write ``text`` (dedented) to a scratch ``policy.yaml`` and load it with load_policies."""
    with tempfile.TemporaryDirectory(prefix="edgewarden-policy-") as folder:
        file = Path(folder) / "policy.yaml"
        file.write_text(textwrap.dedent(text))
        return load_policies(file)
