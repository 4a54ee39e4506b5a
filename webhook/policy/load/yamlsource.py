"""YAML reading that remembers where every value came from, so errors can name a line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from webhook.errors import PolicyProblem

try:  # the C loader is several times faster; fall back where libyaml is absent
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class LocatedDocument:
    """One YAML document: its data, the line it starts on, and the line of each path."""

    data: Any
    line: int
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int:
        """Line of ``path``, or of its nearest ancestor that exists."""
        for length in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:length]))
            if found is not None:
                return found
        return self.line


def read_documents(text: str) -> Iterator[LocatedDocument]:
    """Every non-empty document of a multi-document YAML text, with line numbers (1-based)."""
    loader = SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Path_, int] = {}
            data = _construct(loader, node, (), lines)
            if data is None:
                continue
            yield LocatedDocument(data=data, line=node.start_mark.line + 1, lines=lines)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or str(error)
        raise YamlSyntaxError(f"YAML syntax error: {problem}", line) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"YAML error: {error}", None) from None
    except RecursionError:  # libyaml nests up to 1,000 levels; reading them here recurses
        raise YamlSyntaxError("YAML nested too deep to read", None) from None
    finally:
        loader.dispose()


def _construct(loader: Any, node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise YamlSyntaxError(
                    "a mapping key must be a scalar", key_node.start_mark.line + 1
                )
            if key in result:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            result[key] = _construct(loader, value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def documents_or_problem(
    text: str, file: str, problems: list[PolicyProblem]
) -> list[LocatedDocument]:
    """The documents of ``text``; a YAML syntax error is a problem of ``file`` (no documents)."""
    try:
        return list(read_documents(text))
    except YamlSyntaxError as error:
        problems.append(PolicyProblem(file, error.line, "<document>", str(error)))
        return []
