"""Loading policy YAML into a :class:`PolicySet`, with file/line/field errors.

(Being implemented — signature is final.)
"""

from __future__ import annotations

from pathlib import Path

from webhook.policy.model import PolicySet


def load_policies(*paths: str | Path) -> PolicySet:
    """Load every policy document under ``paths`` (files, or folders of ``*.yaml``/``*.yml``
    excluding ``*.test.yaml`` suites). Raises PolicyLoadError listing every problem."""
    raise NotImplementedError
