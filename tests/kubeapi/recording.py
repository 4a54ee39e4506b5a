"""The requests the double received, kept for assertions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    params: dict[str, str]  # the query, last value of each parameter
    verb: str | None  # get, list, watch, create, update, patch, delete; None: no such route
    plural: str | None
    namespace: str | None
    name: str | None
    content_type: str
    body: Any = field(default=None, compare=False)

    @property
    def watch(self) -> bool:
        return self.verb == "watch"

    @property
    def resource_version(self) -> str | None:
        return self.params.get("resourceVersion")
