"""benchmarks/compiled_engine.py at a tiny size: mypyc compiles the engine's modules in a
copy, the copy runs them compiled, and both trees report every row; its default list is
setup.py's.

No timing is asserted: the figures are the script's output, not a test's.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "compiled_engine.py"

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None
    or not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists(),
    reason="mypyc needs a C compiler (gcc) and Python's headers",
)


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
    spec = importlib.util.spec_from_file_location("compiled_engine", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    modules = module.shipped_modules()
    assert "webhook/policy/engine/evaluation.py" in modules
    assert all((ROOT / m).is_file() for m in modules)
