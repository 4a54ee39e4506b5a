"""The "Examples:" section at the end of every command's ``--help``.

Each example is one shell line run from a checkout of the repository (the files it names,
such as ``policies/`` and ``examples/cluster-state.yaml``, are there), with an optional
comment. tests/cli/test_help_examples.py runs every example that can run offline.

The comment line above a command follows a small convention the test reads:

* ``exit N``: the example is meant to exit with N (e.g. a check that finds a denial);
* ``(needs a cluster)``, ``(serves until Ctrl-C)``, ``(needs a git checkout)``: never run
  by the test;
* ``(needs kubectl)``, ``(needs helm)``: run where that tool is installed.
"""

from __future__ import annotations

Example = str | tuple[str, str]  # a command, or (command, comment)


def examples(*items: Example) -> str:
    """The epilog text: ``Examples:``, then per example its ``# comment`` line (if any)
    and its ``$ command`` line; a comment on its own line keeps long commands readable."""
    lines = ["Examples:", ""]
    for item in items:
        command, comment = (item, "") if isinstance(item, str) else item
        # Rich markup would swallow [brackets]; examples never need them.
        if "[" in command or "[" in comment:
            raise ValueError(f"no [brackets] in help examples: {command}")
        if comment:
            lines.append(f"# {comment}")
        lines.append(f"$ {command}")
    return "\n".join(lines)
