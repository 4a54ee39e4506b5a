"""``diff --base REF``: the policy files as a git commit holds them, written to a folder.

``git archive REF -- PATH`` (the tree of the commit, not the index nor the working tree)
into a temporary folder the caller owns; the working tree is never touched, so a diff can
run in the middle of an edit. Paths are given as on the command line (relative to the
current folder, as git resolves them too) and must lie inside the repository.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from webhook.errors import EdgewardenError

GIT_TIMEOUT_SECONDS = 120


class GitError(EdgewardenError):
    """The repository or the ref cannot give the old policies."""


@dataclass(slots=True)
class BasePolicies:
    """The policy paths as they were at the ref, inside ``folder``; what did not exist there."""

    paths: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # repository paths absent at the ref


def policies_at(ref: str, paths: Sequence[Path], folder: Path) -> BasePolicies:
    """Write each of ``paths`` as commit ``ref`` has it under ``folder``."""
    if ref.startswith("-"):
        raise GitError(f"--base {ref!r}: a git ref cannot start with '-'")
    top = Path(_git("rev-parse", "--show-toplevel", what="--base needs a git repository "
                    "(run it in a checkout, or compare two folders: diff OLD NEW)").strip())
    _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
         what=f"--base {ref}: no such commit here (in CI, fetch it first: "
              "git fetch origin main, or actions/checkout with fetch-depth: 0)")
    base = BasePolicies()
    for path in paths:
        try:
            inside = path.resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            raise GitError(f"--policies {path}: outside the git repository {top}") from None
        inside = inside if inside != "." else ""
        archive = _archive(ref, inside, top)
        if archive is None:
            base.missing.append(inside or ".")
            continue
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            # filter="data" refuses links and paths leaving the folder (Python's safe mode).
            tar.extractall(folder, filter="data")
        base.paths.append(folder / inside if inside else folder)
    return base


def _archive(ref: str, inside: str, top: Path) -> bytes | None:
    """The tar of ``inside`` at ``ref``; None when the commit has no such path."""
    command = ["git", "archive", "--format=tar", ref, "--", inside or "."]
    try:
        result = subprocess.run(command, capture_output=True, check=False, cwd=top,
                                timeout=GIT_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"git archive failed: {error}") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        if "did not match any files" in message:
            return None
        raise GitError(f"git archive {ref} -- {inside or '.'} failed: "
                       f"{message.splitlines()[-1] if message else result.returncode}")
    return result.stdout


def _git(*args: str, what: str) -> str:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                                timeout=GIT_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise GitError(f"{what}; git is not installed") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"{what}: {error}") from None
    if result.returncode != 0:
        raise GitError(what)
    return result.stdout
