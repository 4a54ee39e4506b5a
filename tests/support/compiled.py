"""What the tests of the compiled build share: benchmarks/compiled_engine.py (it reads
setup.py's COMPILED list and makes a copy of the tree compiled as setup.py compiles it), and
whether this machine can compile at all."""

from __future__ import annotations

import functools
import importlib.util
import shutil
import sysconfig
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "compiled_engine.py"


@functools.cache
def compiled_engine() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compiled_engine", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped_module_names() -> list[str]:
    """setup.py's COMPILED, as module names."""
    paths: list[str] = compiled_engine().shipped_modules()
    return [p.removesuffix(".py").replace("/", ".") for p in paths]


def missing_compiler() -> list[str]:
    """What mypyc lacks here: a C compiler, Python's headers (none: it can compile)."""
    return [what for what, found in (
        ("gcc", shutil.which("gcc") is not None),
        ("Python's headers", (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()),
    ) if not found]
