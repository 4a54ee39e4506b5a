"""The build the image ships decides as the working tree does: setup.py's modules compiled
by mypyc, in a copy of the repository (benchmarks/compiled_engine.py makes it as setup.py
does), pass the shipped policies' suites, the differential test and the admission layer's
tests over TLS.

mypyc checks at run time what Python only annotates (a value of another type than declared
raises TypeError), so an input the annotations did not foresee fails here, in the paths the
differential test drives with nulls and odd types, before it fails in the image. The
image's own suites (tests/image) run the image as the API server's webhook.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.compiled import ROOT, compiled_engine, missing_compiler

EXAMPLES = "1000"  # the differential test's cases here (10,000 in the working tree's run)
# The admission layer's compiled modules (review parsing, the handlers, the decision log,
# reservations) through the server over TLS: any JSON shape and hostile bytes in a review,
# each mode, the default policies, concurrent claims, shadow sets, no reference cycle.
ADMISSION_TESTS = [f"tests/admission/{name}.py" for name in (
    "test_any_json_shape", "test_bad_input", "test_hostile_bytes", "test_review",
    "test_modes", "test_default_policies", "test_one_semantics", "test_squatting",
    "test_shadow", "test_reference_cycles", "test_no_values_in_logs",
    "test_response_writes")]


def test_the_compiled_build_passes_the_suites_the_differential_and_the_admission_tests(
        tmp_path: Path) -> None:
    missing = missing_compiler()
    if missing:
        reason = f"mypyc needs {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs them: their absence is a broken machine
        pytest.skip(reason)
    builder = compiled_engine()
    tree = tmp_path / "tree"
    # compiled_copy checks that the copy imports every listed module compiled.
    builder.compiled_copy(tree, builder.shipped_modules(),
                          parts=("webhook", "policies", "tests", "pyproject.toml"))
    cli = [sys.executable, "-c", "import sys; from webhook.cli import main; sys.exit(main())"]
    suites = subprocess.run([*cli, "test", "policies"], cwd=tree, capture_output=True,
                            text=True, timeout=600, check=False)
    assert suites.returncode == 0, suites.stdout[-3000:] + suites.stderr[-3000:]
    differential = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "tests/differential"],
        cwd=tree, capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "EDGEWARDEN_DIFFERENTIAL_EXAMPLES": EXAMPLES})
    assert differential.returncode == 0, differential.stdout[-5000:]
    assert "1 passed" in differential.stdout
    admission = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *ADMISSION_TESTS],
        cwd=tree, capture_output=True, text=True, timeout=900, check=False)
    assert admission.returncode == 0, admission.stdout[-5000:]
    assert " passed" in admission.stdout and "skipped" not in admission.stdout


def test_a_compiled_function_binds_each_except_name_to_one_exception_type() -> None:
    """mypyc types an ``except ... as NAME`` variable by its first handler: a later handler
    of the same function that binds the same name to another type raises TypeError
    ("ReviewError object expected; got TypeError") instead of running. So the handler meant
    for the unforeseen (an internal error answered by the failurePolicy) would itself fail,
    and the API server would get a 500. Each name, one type, in every compiled module."""
    reused = []
    for path in compiled_engine().shipped_modules():
        tree = ast.parse((ROOT / path).read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            types: dict[str, set[str]] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.ExceptHandler) and node.name:
                    caught = ast.unparse(node.type) if node.type else "BaseException"
                    types.setdefault(node.name, set()).add(caught)
            reused += [f"{path}:{function.lineno} {function.name}(): {name} is "
                       f"{' and '.join(sorted(caught))}"
                       for name, caught in types.items() if len(caught) > 1]
    assert not reused, "give each its own name:\n" + "\n".join(reused)
