"""User-facing errors: each carries a message a person can act on, never a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What every ``edgewarden`` command exits with (docs/cli.md has the table)."""

    OK = 0  # done, and nothing that fails was found
    FOUND = 1  # done, and it found what fails: a denial, a failing case, a broken policy
    USAGE = 2  # could not do the job: a bad flag, a missing or unreadable input, no context
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


def one_line(error: BaseException) -> str:
    """An exception for a log line or a status: its type and the first line of its message
    (cut at 300 characters), never a multi-line dump of a body or an object."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def file_line(file: str, line: int | None) -> str:
    """``file:line`` as editors and CI annotations read it, or just ``file`` without a line."""
    return f"{file}:{line}" if line is not None else file


class EdgewardenError(Exception):
    """Base of every error a user can hit; the CLI prints ``str(error)`` and exits non-zero."""


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong in a policy file, located precisely enough to fix it."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"{file_line(self.file, self.line)}: {self.field}: {self.message}"


class PolicyLoadError(EdgewardenError):
    """A policy set did not load; nothing of it is used."""

    def __init__(self, problems: list[PolicyProblem],
                 warnings: Sequence[PolicyProblem] = ()) -> None:
        self.problems = problems
        self.warnings = list(warnings)  # found in the same run, reported beside the problems
        super().__init__("\n".join(str(p) for p in problems))


class TestSuiteError(EdgewardenError):
    """A policy test suite file is malformed."""


class ManifestError(EdgewardenError):
    """An input manifest could not be read."""


class MissingContextError(EdgewardenError):
    """An input cannot be judged fairly as given: it is empty, or it lacks what a verdict
    depends on (the labels of a namespace). Refused rather than passed."""


class ClusterStateError(EdgewardenError):
    """A cluster-state file or the cluster connection is unusable."""


class CertificateError(EdgewardenError):
    """Certificates could not be created, read or rotated."""
