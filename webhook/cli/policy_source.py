"""Which policies a command runs without ``--policies``: ./policies, else the packaged defaults.

The default policies ship inside the package (``webhook/defaults/policies``, a copy of the
repository's ``policies/`` kept by ``deploy/sync-policies.py``), so ``pip install
edgewarden`` followed by ``edgewarden check -f x.yaml`` works anywhere. A ``./policies``
folder still wins, as it always did: in a repository of one's own policies nothing changes.
Using the packaged set is announced on stderr, so nobody mistakes it for their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import webhook
from webhook.cli.app import err_console
from webhook.errors import EdgewardenError

LOCAL_POLICIES = Path("policies")


def packaged_policies() -> Path:
    """The default policies, suites and fixtures installed with the package."""
    folder = Path(webhook.__file__).resolve().parent / "defaults" / "policies"
    if not folder.is_dir():
        raise EdgewardenError(
            f"the packaged default policies are missing ({folder}): reinstall edgewarden, "
            "or pass --policies FILE|DIR"
        )
    return folder


def policy_paths(given: Sequence[Path] | None) -> list[Path]:
    """``given`` when there is any, else ./policies when it exists, else the packaged set."""
    if given:
        return list(given)
    if LOCAL_POLICIES.exists():
        return [LOCAL_POLICIES]
    folder = packaged_policies()
    err_console.print(
        f"note: no ./policies here; using the packaged default policies ({folder}). "
        "`edgewarden policies export DIR` writes them out to adapt.",
        highlight=False,
    )
    return [folder]
