"""Where a document came from: a file and, when known, a line.

Its own module so that PolicyExceptions (exceptions.py) and decisions (decision.py) can name
where a policy or exception was read without importing the policy model.
"""

from __future__ import annotations

from dataclasses import dataclass

from webhook.errors import file_line


@dataclass(frozen=True, slots=True)
class SourceLocation:
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return file_line(self.file, self.line)
