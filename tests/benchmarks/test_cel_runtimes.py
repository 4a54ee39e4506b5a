"""benchmarks/cel_runtimes.py at tiny sizes: every part runs, and what it compares is right.

No timing is asserted: the figures are the script's output, not a test's.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A conformance file in cel-spec's text format, written here (the real ones come from a
# cel-spec checkout passed with --cel-spec): one pass, one expected error, one skipped case.
TEXTPROTO = r"""
name: "basic"
section {
  name: "smoke"
  test { name: "sum" expr: "1 + 2" value { int64_value: 3 } }
  test {
    name: "list"  # a comment
    expr: "['a', 'b\\n'] + [x]"
    bindings { key: "x" value { value { string_value: "c" } } }
    value { list_value { values { string_value: "a" } values { string_value: "b\n" }
                         values { string_value: "c" } } }
  }
  test {
    name: "overflow" expr: "9223372036854775807 + 1"
    eval_error { errors { message: "overflow" } }
  }
  test {
    name: "wrapper" expr: "google.protobuf.Int64Value{value: 1} == 1"
    value { bool_value: true }
  }
}
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cel_runtimes", ROOT / "benchmarks" / "cel_runtimes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cel_runtimes"] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_run_reports_every_part(bench: ModuleType, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "basic.textproto").write_text(TEXTPROTO, encoding="utf-8")
    code = bench.main(["--repeat", "1", "--cases", "1", "--sizes", "2,4",
                       "--cel-spec", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    found, _ = bench.runtimes()
    assert len(found) >= 2  # the Rust binding and the closures are always there
    for runtime in found:
        # Every expression of the shipped policies compiles in every runtime.
        assert re.search(re.escape(runtime.name) + r": \d+ expressions, 0 do not compile", out)
        assert f"{runtime.name} map: " in out
        # 3 cases run, 1 skipped (a protobuf wrapper), all passed.
        assert f"{runtime.name}: 100.0% of 3 run: basic 3/0/1" in out
    if "cel-expr-python): not installed" not in out:
        assert "cpp (cel-expr-python): " in out


def test_closures_agree_with_the_rust_binding_on_the_suites(bench: ModuleType) -> None:
    cases = bench.suite_cases(ROOT / "policies", 2)
    assert len(cases) > 17  # every suite contributed
    runtimes = [bench.RustRuntime(), bench.ClosureRuntime()]
    figures = bench.measure_suites(runtimes, cases, 1)
    closures = figures[bench.ClosureRuntime.name]
    assert closures.expressions >= 17 and not closures.compile_errors
    assert closures.compared >= len(cases)
    # Only a filter over a map may differ, by order: CEL leaves map order unspecified.
    assert all("another order" in line for line in closures.disagreements)


@pytest.mark.parametrize(("source", "expected"), [
    ("dyn(1) == dyn(1.0)", True),  # heterogeneous equality
    ("[1, 'a'] == [1, 'a']", True),
    ("{'a': 1} == {'a': 1.0}", True),
    ("1 == 'a'", False),
    ("-7 / 2", -3),  # truncates toward zero, as cel-go
    ("-7 % 2", -1),
    ("false && (1 / 0 == 1)", False),  # && absorbs an error on either side
    ("(1 / 0 == 1) || true", True),
    ("[1, 2, 3].exists(x, x / (x - 2) == 3)", True),  # exists absorbs the error at x = 2
    ("[1, 2, 3].map(x, x * 2).filter(x, x > 2)", [4, 6]),
    ("[1, 2].map(x, x > 1, x * 10)", [20]),
    ("'abc'.startsWith('a') && size('é') == 1", True),
])
def test_closure_semantics(bench: ModuleType, source: str, expected: Any) -> None:
    runtime = bench.ClosureRuntime()
    assert bench.same(runtime.evaluate(runtime.compile(source), {}), expected)


@pytest.mark.parametrize("source", [
    "9223372036854775807 + 1",  # int overflow is an error, not a big int
    "-9223372036854775807 - 2",
    "1 / 0",
    "{'a': 1}.b",
    "[1][3]",
    "1 + 1.0",  # no implicit conversion between int and double
    "true && 1",
    "[1, 2].all(x, x / 0 == 1)",
])
def test_closure_errors(bench: ModuleType, source: str) -> None:
    runtime = bench.ClosureRuntime()
    assert isinstance(runtime.evaluate(runtime.compile(source), {}), bench.Failed)


def test_textproto_parser(bench: ModuleType) -> None:
    data = bench.parse_textproto(TEXTPROTO)
    tests = data["section"][0]["test"]
    assert [t["name"][0] for t in tests] == [b"sum", b"list", b"overflow", b"wrapper"]
    assert bench.cel_value(tests[1]["value"][0]) == ["a", "b\n", "c"]
    assert bench._unquote(r"'\303\277\x41\u00e9'") == "ÿAé".encode()


def test_growth_tells_linear_from_quadratic(bench: ModuleType) -> None:
    assert bench.growth([1600, 6400], [1.0, 4.0]) == "n^1.0"
    assert bench.growth([1600, 6400], [1.0, 16.0]) == "n^2.0"
