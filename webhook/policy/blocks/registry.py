"""Every block a policy may hold, in the order they run: the one place blocks are listed.

The four built in come first. Other packages add blocks through the ``edgewarden.blocks``
entry-point group (each entry point names a :class:`~webhook.policy.blocks.protocol.Block`
subclass or instance), found on first use; :func:`register` adds one in code. The loader's
schema, the CRDs, the static checks and the engine all read this list, so a new block is
its own module plus one line here (or one entry point), and its documentation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from webhook.errors import EdgewardenError
from webhook.policy.blocks.limit import LimitBlock
from webhook.policy.blocks.mutations import MutationsBlock
from webhook.policy.blocks.protocol import Block, Slot, YamlPath
from webhook.policy.blocks.unique import UniqueBlock
from webhook.policy.blocks.validations import ValidationsBlock
from webhook.policy.model.policy import Policy

ENTRY_POINT_GROUP = "edgewarden.blocks"

# Validations, then the limit, then unique keys: the order the engine judged them in before
# blocks were plug-ins, so decisions and messages are unchanged. Mutations run in their own
# phase, before every validating block.
BUILT_IN: tuple[Block[Any], ...] = (ValidationsBlock(), LimitBlock(), UniqueBlock(),
                                    MutationsBlock())


class BlockRegistryError(EdgewardenError):
    """A plug-in block is not usable (does not load, not a Block, or a name taken)."""


_lock = threading.RLock()
_added: list[Block[Any]] = []  # through register(), in the order added
_found: tuple[Block[Any], ...] | None = None  # from entry points, read once
_current: tuple[Block[Any], ...] | None = None  # the list in force, rebuilt on a change


def blocks() -> tuple[Block[Any], ...]:
    """The blocks in force, in the order they run: the same tuple until the list changes,
    so callers may cache what they derive from it by identity."""
    global _current
    with _lock:
        if _current is None:
            _current = (*BUILT_IN, *_discovered(), *_added)
        return _current


def names() -> tuple[str, ...]:
    """The YAML keys of the blocks in force, in the order they run."""
    return tuple(block.name for block in blocks())


def register(block: Block[Any]) -> None:
    """Add ``block`` (for code that cannot ship an entry point). Refuses a taken name."""
    global _current
    with _lock:
        _check([block], taken={b.name for b in blocks()})
        _added.append(block)
        _current = None


def unregister(name: str) -> None:
    """Remove a block :func:`register` added (tests, embedding applications)."""
    global _current
    with _lock:
        _added[:] = [b for b in _added if b.name != name]
        _current = None


def rediscover() -> None:
    """Read the entry points again (after a package was installed in this process)."""
    global _found, _current
    with _lock:
        _found = None
        _current = None


def _discovered() -> tuple[Block[Any], ...]:
    global _found
    if _found is None:
        loaded: list[Block[Any]] = []
        for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                target = entry.load()
                block = target() if isinstance(target, type) else target
            except Exception as error:  # a broken plug-in names itself; no traceback
                raise BlockRegistryError(
                    f"block plug-in {entry.name!r} ({entry.value}) does not load: "
                    f"{type(error).__name__}"
                ) from None
            loaded.append(block)
        _check(loaded, taken={b.name for b in BUILT_IN})
        _found = tuple(loaded)
    return _found


def _check(candidates: Iterable[Any], taken: set[str]) -> None:
    for block in candidates:
        if not isinstance(block, Block):
            raise BlockRegistryError(
                f"block plug-in {type(block).__name__} is not a "
                "webhook.policy.blocks.protocol.Block"
            )
        if block.name in taken:
            raise BlockRegistryError(f"a block named {block.name!r} is already registered")
        taken.add(block.name)


def slots(policy: Policy) -> Iterator[Slot]:
    """Every expression of ``policy``, by YAML path: its matchConditions and variables, then
    each block's, in the registry's order."""
    for i, condition in enumerate(policy.match_conditions):
        yield Slot(("spec", "matchConditions", i, "expression"), condition.expression, "bool")
    for i, variable in enumerate(policy.variables):
        path: YamlPath = ("spec", "variables", i, "expression")
        yield Slot(path, variable.expression, None, variable.name)
    for block in blocks():
        data = block.data(policy)
        if data is not None:
            yield from block.slots(data)
