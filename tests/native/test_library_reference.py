"""Kubernetes' CEL libraries, edgewarden beside the real API server: every expression of
tests/native/library/*.yaml is evaluated by edgewarden and by a ValidatingAdmissionPolicy
(tests/native/reference.py), and both must compute the same value or both fail.

Error wording is compared where it can be: edgewarden's messages never quote a value of the
object (docs/native.md "Error messages"), the API server's often do, so a shared failure is
an agreement; every error pair is printed for the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from webhook.policy.cel.expression import (
    EXTENSION_FUNCTIONS,
    CelCompileError,
    CelEvaluationError,
    compile_expression,
)
from webhook.policy.cel.library import FUNCTIONS as KUBERNETES_FUNCTIONS

from .reference import Reference

LIBRARY = Path(__file__).parent / "library"
FILES = sorted(LIBRARY.glob("*.yaml"))
OBJECT_DATA = {"host": "example.com", "port": "8080", "empty": ""}
# Where edgewarden knowingly differs (docs/native.md "Where edgewarden differs"): a quantity
# is carried as its exact amount, so Kubernetes' internal form (an int64 with a negative
# scale, or an arbitrary-precision decimal), which decides isInteger/asInteger, is lost.
DEVIATIONS = {
    "quantity('1.5Gi').isInteger()": "Kubernetes holds 1.5Gi as a decimal: not an int64",
    "quantity('100m').add(quantity('900m')).asInteger()":
        "Kubernetes holds the sum as 1000 with scale -3: no int64 without reducing it",
}
# The syntax the rewrite turns into internal calls, by the name of the call.
SPELLED = {"_optional_select": ".?", "_optional_index": "[?", "_cidr_ip": ".ip()",
           "_optional_elements": ", ?", "_optional_entries": ", ?'",
           "_pairs": ", v, ", "_pairs_to_map": "transformMap(",
           "_merge_entries": "transformMapEntry("}


def cases(path: Path) -> list[str]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, list) and loaded, f"{path.name}: a list of expressions"
    return [str(item) for item in loaded]


def ours(expression: str, obj: dict[str, Any]) -> tuple[Any, str | None]:
    """edgewarden's value of ``expression``, or its error message."""
    try:
        compiled = compile_expression(expression, allowed=frozenset({"object"}))
    except CelCompileError as error:
        return None, f"compile: {error}"
    context = cel.Context()
    context.add_variable("object", obj)
    for function in compiled.functions:
        context.add_function(function, EXTENSION_FUNCTIONS[function])
    try:
        return compiled.evaluate(context), None
    except CelEvaluationError as error:
        return None, str(error)


def configmap() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n"}, "data": dict(OBJECT_DATA)}


def test_every_library_file_has_enough_cases() -> None:
    assert FILES, "tests/native/library holds the cases"
    for path in FILES:
        assert len(cases(path)) >= 3, path.name


def test_every_kubernetes_function_has_three_cases_or_more() -> None:
    every = [case for path in FILES for case in cases(path)]
    assert set(DEVIATIONS) <= set(every)
    assert KUBERNETES_FUNCTIONS
    thin = []
    for name in KUBERNETES_FUNCTIONS:
        spelled = SPELLED.get(name, name.rpartition(".")[2] + "(")
        if name.startswith("format.") and name != "format.named":
            spelled = f"{name}()"
        count = sum(spelled in case for case in every)
        if count < 3:
            thin.append(f"{name}: {count}")
    assert not thin, thin


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_edgewarden_computes_what_the_api_server_computes(reference: Reference,
                                                          path: Path) -> None:
    expressions = cases(path)
    computed = [ours(e, configmap()) for e in expressions]
    answers = reference.evaluate([(e, value, error is not None)
                                  for e, (value, error) in zip(expressions, computed, strict=True)],
                                 OBJECT_DATA)
    assert len(answers) == len(expressions)
    differences = []
    for expression, (value, error), answer in zip(expressions, computed, answers, strict=True):
        if answer.error is not None or error is not None:
            print(f"{expression}\n  edgewarden: {error}\n  API server: {answer.error}")
        if expression in DEVIATIONS:
            assert not answer.agrees, f"{expression} now agrees: take it out of DEVIATIONS"
            continue
        if not answer.agrees:
            said = (f"refuses it: {answer.refused}" if answer.refused
                    else f"fails: {answer.error}" if answer.error else "computes another value")
            ours_said = f"fails: {error}" if error else f"computes {value!r}"
            differences.append(f"{expression}: edgewarden {ours_said}; the API server {said}")
    assert not differences, "\n".join(differences)
