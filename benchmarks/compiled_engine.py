"""What mypyc's compilation buys the engine: benchmarks/engine.py on the pure-Python tree
and on a copy whose admission-path modules mypyc compiled, in alternating rounds.

The image ships them compiled (setup.py's COMPILED list, the default here; an editable
install and a plain wheel stay pure Python). The copy lives in a temporary folder: the
repository never holds a compiled module (one there would shadow its source, and edits to
the .py would silently stop counting). Needs a C compiler and Python's headers (gcc and the
interpreter's include folder) and mypy (the dev extras). Run from the repository root::

    .venv/bin/python benchmarks/compiled_engine.py [--rounds 3] [--reviews 20000]
    .venv/bin/python benchmarks/compiled_engine.py --modules webhook/policy/engine/evaluation.py

Figures only: nothing here asserts. Each figure is the median over the rounds of
engine.py's median; the rounds alternate pure and compiled, so load from elsewhere on the
machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("  Services only", "  Ingresses only", "100 policies")


def shipped_modules() -> list[str]:
    """setup.py's COMPILED: the modules the image ships compiled."""
    return _setup_list("COMPILED")


def mypyc_flags() -> list[str]:
    """setup.py's MYPYC_FLAGS: how it runs mypyc, beside mypy's own defaults."""
    return _setup_list("MYPYC_FLAGS")


def _setup_list(name: str) -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            values = ast.literal_eval(node.value)
            assert isinstance(values, list)
            return [str(v) for v in values]
    raise SystemExit(f"setup.py has no {name} list")


def compiled_copy(folder: Path, modules: list[str],
                  parts: tuple[str, ...] = ("webhook", "policies", "benchmarks")) -> float:
    """Copy ``parts`` of the repository into ``folder`` and compile ``modules`` there as
    setup.py does; seconds."""
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "results", "build")
    for part in parts:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, folder / part, ignore=ignore)
        else:
            shutil.copy2(ROOT / part, folder / part)
    started = time.monotonic()
    # mypy's own defaults, as setup.py compiles: not the project's [tool.mypy].
    done = subprocess.run([sys.executable, "-m", "mypyc", "--config-file", os.devnull,
                           *mypyc_flags(), *modules],
                          cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"mypyc failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    elapsed = time.monotonic() - started
    names = [m.removesuffix(".py").replace("/", ".") for m in modules]
    probe = ("import importlib, sys\n"
             f"for name in {names!r}:\n"
             "    path = importlib.import_module(name).__file__\n"
             "    assert path.endswith('.so'), f'{name} was not compiled: {path}'\n")
    check = subprocess.run([sys.executable, "-c", probe], cwd=folder, capture_output=True,
                           text=True, check=False)
    if check.returncode != 0:
        sys.exit(f"the compiled copy does not import its compiled modules:\n{check.stderr}")
    return elapsed


def edgewarden_command(tree: Path, script: Path) -> str:
    """Write ``script``, an executable that runs ``edgewarden`` from ``tree`` (its webhook
    package first on the path) with this Python, and return its path."""
    script.write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -c \"import sys; sys.path.insert(0, {str(tree)!r}); "
        "sys.argv[0] = 'edgewarden'; from webhook.cli import main; sys.exit(main())\" \"$@\"\n")
    script.chmod(0o755)
    return str(script)


def engine_round(tree: Path, reviews: int, out: Path) -> dict[str, dict[str, float]]:
    subprocess.run([sys.executable, str(tree / "benchmarks" / "engine.py"), "--reviews",
                    str(reviews), "--json", str(out)], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)
    figures: dict[str, dict[str, float]] = json.loads(out.read_text())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", nargs="+", default=None,
                        help="the modules to compile (paths from the repository root; "
                             "default: setup.py's COMPILED, what the image ships)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=20000)
    args = parser.parse_args()
    if args.modules is None:
        args.modules = shipped_modules()
    with tempfile.TemporaryDirectory(prefix="edgewarden-mypyc-") as name:
        folder = Path(name)
        print(f"compiling {', '.join(args.modules)} with mypyc...", file=sys.stderr)
        seconds = compiled_copy(folder / "tree", args.modules)
        print(f"compiled in {seconds:.0f} s", file=sys.stderr)
        medians: dict[str, dict[str, list[float]]] = {"pure": {}, "compiled": {}}
        for index in range(args.rounds):
            for label, tree in (("pure", ROOT), ("compiled", folder / "tree")):
                print(f"round {index + 1}/{args.rounds}: {label}", file=sys.stderr)
                figures = engine_round(tree, args.reviews, folder / f"{label}.json")
                for row in ROWS:
                    medians[label].setdefault(row, []).append(figures[row]["median_us"])
    print(f"engine median µs, median of {args.rounds} alternating rounds "
          f"({args.reviews:,} reviews each; compiled: {', '.join(args.modules)})")
    print(f"{'':<18} {'pure':>8} {'compiled':>9} {'change':>8}")
    for row in ROWS:
        pure = statistics.median(medians["pure"][row])
        compiled = statistics.median(medians["compiled"][row])
        print(f"{row.strip():<18} {pure:>8.1f} {compiled:>9.1f} {compiled / pure - 1:>+8.0%}")


if __name__ == "__main__":
    main()
