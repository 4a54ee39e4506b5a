"""The build: setuptools (pyproject.toml holds the metadata), and with EDGEWARDEN_COMPILE=1
the admission path's own modules compiled into C extensions by mypyc.

Compiled, the engine decides in 60-75 % of the time (benchmarks/compiled_engine.py), with
the same decisions (tests/policy/test_compiled_build.py runs the policy suites and the
differential test on the compiled build). The image is built compiled (scripts/image, the
Dockerfile's COMPILE=1); an editable install, and a wheel built without the variable (the
one published), stay pure Python.
"""

from __future__ import annotations

import os

from setuptools import setup

# The modules a decision spends its time in. Each compiles as it is written; what mypyc
# cannot make native stays out (the lazy activation, a dict subclass, lives in
# webhook/policy/engine/activation.py for that reason).
COMPILED = [
    "webhook/policy/engine/evaluation.py",
    "webhook/policy/engine/context.py",
    "webhook/policy/blocks/validations.py",
    "webhook/policy/blocks/limit.py",
    "webhook/policy/blocks/unique.py",
    "webhook/policy/blocks/keys.py",
    "webhook/policy/blocks/ownership.py",
    "webhook/policy/blocks/mutations.py",
    "webhook/policy/blocks/patches.py",
    "webhook/policy/model/hostpath.py",
    "webhook/policy/model/key_table.py",
]


def extensions() -> list[object]:
    if os.environ.get("EDGEWARDEN_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit("EDGEWARDEN_COMPILE=1 needs mypy (its mypyc) in the build "
                         "environment: pip install mypy, then build with "
                         "--no-build-isolation") from None

    # mypy's own defaults, not the project's [tool.mypy] (whose per-module sections for
    # modules outside this list would be reported unused and fail the build).
    return list(mypycify(["--config-file", os.devnull, *COMPILED], opt_level="3"))


setup(ext_modules=extensions())
