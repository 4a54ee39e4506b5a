"""The build: setuptools (pyproject.toml holds the metadata), and with EDGEWARDEN_COMPILE=1
the admission path's own modules compiled into C extensions by mypyc.

Compiled, the engine decides in 45-70 % of the time (benchmarks/compiled_engine.py), with
the same decisions (tests/policy/test_compiled_build.py runs the policy suites and the
differential test on the compiled build). The image is built compiled (scripts/image, the
Dockerfile's COMPILE=1); an editable install, and a wheel built without the variable (the
one published), stay pure Python.
"""

from __future__ import annotations

import os

from setuptools import setup

# The modules a request spends its time in: the engine and its blocks, the CEL runtime's
# operators, and the admission layer that parses a review and writes the answer. Each
# compiles as it is written; what mypyc cannot make native stays out: classes that subclass
# a built-in type (the lazy activation, a dict subclass, in webhook/policy/engine/activation.py;
# the CEL errors in webhook/policy/cel/errors.py, for RuntimeError; UInt, an int, in
# cel/runtime/values.py),
# functions the CEL type checker reads signatures from (cel/library, cel/functions.py,
# runtime/builtins.py), FastAPI's routes (admission/app.py, whose signatures FastAPI reads:
# the raw endpoints live in admission/endpoint.py for that),
# and msgspec structs (cluster/list_pages.py). engine/compiled.py, and engine/budget.py
# beside evaluation.py, crash mypyc (a segfault in its code generation); engine/bindings.py
# and prebind.py compile but made a request no cheaper, so they stay out.
# A class made per request gets a written __init__ (model/request.py says why).
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
    "webhook/policy/model/request.py",
    "webhook/policy/model/decision.py",
    "webhook/policy/model/nulls.py",
    "webhook/policy/cel/expression.py",
    "webhook/policy/cel/runtime/operators.py",
    "webhook/policy/cel/runtime/steps.py",
    "webhook/admission/review.py",
    "webhook/admission/endpoint.py",
    "webhook/admission/wire.py",
    "webhook/admission/handlers.py",
    "webhook/admission/decisionlog.py",
    "webhook/admission/tallies.py",
    "webhook/cluster/reservations.py",
]

# mypy's own defaults, not the project's [tool.mypy] (whose per-module sections for modules
# outside this list would be reported unused and fail the build); and a library without
# type stubs is read as untyped, not an error: the build stage installs mypy alone, not the
# test extras' stubs (types-PyYAML), and the compiled modules call no such library.
# (benchmarks/compiled_engine.py reads both lists, to compile as this does.)
MYPYC_FLAGS = ["--ignore-missing-imports"]


def extensions() -> list[object]:
    if os.environ.get("EDGEWARDEN_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit("EDGEWARDEN_COMPILE=1 needs mypy (its mypyc) in the build "
                         "environment: pip install mypy, then build with "
                         "--no-build-isolation") from None

    return list(mypycify(["--config-file", os.devnull, *MYPYC_FLAGS, *COMPILED], opt_level="3"))


setup(ext_modules=extensions())
