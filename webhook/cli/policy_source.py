"""Which policies a command runs without ``--policies``: ./policies, else the packaged defaults.

The default policies ship inside the package (``webhook/defaults/policies``, a copy of the
repository's ``policies/`` kept by ``deploy/sync-policies.py``), so ``pip install
edgewarden`` followed by ``edgewarden check -f x.yaml`` works anywhere. A ``./policies``
folder still wins, as it always did: in a repository of one's own policies nothing changes.
Using the packaged set is announced on stderr, so nobody mistakes it for their own; so is a
./policies that lacks some of the defaults, since a repository that only meant to add a
policy would otherwise silently lose every default. ``--with-defaults`` loads the packaged
policies beside the chosen ones; a policy of the same name in the chosen files wins.
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


def policy_paths(given: Sequence[Path] | None, *, with_defaults: bool | None = None) -> list[Path]:
    """``given`` when there is any, else ./policies when it exists, else the packaged set;
    with ``with_defaults`` the packaged policies the chosen files lack are added.

    ``with_defaults=None`` is for commands without ``--with-defaults``: their note on a
    ./policies without the defaults points elsewhere.
    """
    if given or LOCAL_POLICIES.exists():
        chosen = list(given) if given else [LOCAL_POLICIES]
        if with_defaults:
            return chosen + [file for file, _ in _defaults_missing(chosen)]
        if not given:
            _note_defaults_not_loaded(with_defaults is not None)
        return chosen
    folder = packaged_policies()
    err_console.print(
        f"note: no ./policies here; using the packaged default policies ({folder}). "
        "`edgewarden policies export DIR` writes them out to adapt.",
        highlight=False,
    )
    return [folder]


def _note_defaults_not_loaded(offers_flag: bool) -> None:
    missing = [name for _, names in _defaults_missing([LOCAL_POLICIES]) for name in names]
    if not missing:
        return  # ./policies carries every default (an export of them, or this repository)
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    how = ("--with-defaults adds them" if offers_flag
           else "`edgewarden policies export DIR` writes them out to copy in")
    err_console.print(
        f"note: using ./policies; {len(missing)} packaged default policies are not loaded "
        f"({shown}): {how}.",
        highlight=False, markup=False,
    )


def _defaults_missing(chosen: Sequence[Path]) -> list[tuple[Path, list[str]]]:
    """Each packaged policy file none of whose policies is named in ``chosen``'s files, with
    its policy names. Names are read leniently: a file that does not parse here is the
    loader's to report, with its line."""
    from webhook.policy.load.loader import policy_files  # lazy: --help needs none of it

    present: set[str] = set()
    for path in chosen:
        try:
            files = policy_files(path)
        except EdgewardenError:
            continue  # a missing path: loading reports it
        for file in files:
            present |= set(_policy_names(file))
    missing = []
    for file in policy_files(packaged_policies()):
        names = _policy_names(file)
        if names and not present.intersection(names):
            missing.append((file, names))
    return missing


def _policy_names(file: Path) -> list[str]:
    import yaml

    try:
        documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    return [
        str(document["metadata"]["name"])
        for document in documents
        if isinstance(document, dict) and document.get("kind") == "Policy"
        and isinstance(document.get("metadata"), dict) and document["metadata"].get("name")
    ]
