"""benchmarks/compiled_engine.py at a tiny size: mypyc compiles the engine's modules in a
copy, the copy runs them compiled, and both trees report every row; its default list is
setup.py's.

No timing is asserted: the figures are the script's output, not a test's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.compiled import ROOT, SCRIPT, compiled_engine, missing_compiler

pytestmark = pytest.mark.skipif(
    bool(missing_compiler()), reason="mypyc needs a C compiler (gcc) and Python's headers")


def test_a_tiny_run_compiles_the_engine_and_reports_every_row(tmp_path: Path) -> None:
    # Two modules, not setup.py's whole list: the script is what is tested here
    # (tests/policy/test_compiled_build.py compiles the shipped list).
    done = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "1", "--reviews", "300",
                           "--modules", "webhook/policy/engine/evaluation.py",
                           "webhook/policy/engine/context.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled in" in done.stderr
    rows = {match[0]: (float(match[1]), float(match[2]))
            for match in re.findall(r"^(\w[\w ]*?)\s+([\d.]+)\s+([\d.]+)\s+[+-]\d+%$",
                                    done.stdout, re.MULTILINE)}
    assert set(rows) == {"Services only", "Ingresses only", "100 policies"}
    assert all(pure > 0 and compiled > 0 for pure, compiled in rows.values())
    # The repository itself never holds a compiled module (it would shadow the source).
    assert not list((ROOT / "webhook").rglob("*.so"))


def test_a_module_mypyc_cannot_compile_stops_the_run_with_its_words(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "1", "--reviews", "300",
                           "--modules", "webhook/policy/engine/no_such_module.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode != 0
    assert "mypyc failed" in done.stderr and "no_such_module" in done.stderr
    assert "Traceback" not in done.stderr


def test_its_default_is_what_setup_py_compiles() -> None:
    modules = compiled_engine().shipped_modules()
    assert "webhook/policy/engine/evaluation.py" in modules
    assert all((ROOT / m).is_file() for m in modules)
