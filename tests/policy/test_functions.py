"""Every function the load-time checker accepts evaluates in the engine, and the docs say
exactly which ones those are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support import policies_from_yaml as load_policy_text
from webhook.cluster.memory import MemoryCluster
from webhook.errors import PolicyLoadError
from webhook.policy.cel.checks.functions import FUNCTIONS
from webhook.policy.engine.evaluation import Engine

from .conftest import make_request

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policies.md"
TS = "timestamp('2024-01-01T00:00:00Z')"

# One call of each function, as a policy would write it.
SAMPLES = {
    "size": "size('ab') + [1].size()",
    "contains": "'abc'.contains('b')",
    "startsWith": "'abc'.startsWith('a')",
    "endsWith": "'abc'.endsWith('c')",
    "matches": "'abc'.matches('^a')",
    "int": "int('3')",
    "uint": "uint(3)",
    "double": "double('1.5')",
    "string": "string(3)",
    "bytes": "bytes('a')",
    "timestamp": TS,
    "duration": "duration('1s')",
    "type": "type(1) == int",
    "dyn": "dyn(1)",
    "optional.of": "optional.of(1)",
    "optional.ofNonZeroValue": "optional.ofNonZeroValue(0)",
    "optional.none": "optional.none()",
    "hasValue": "optional.of(1).hasValue()",
    "value": "optional.of(1).value()",
    "orValue": "optional.none().orValue(1)",
    "or": "optional.none().or(optional.of(1))",
    **{name: f"{TS}.{name}()" for name in ("getFullYear", "getMonth", "getDate")},
    **{name: f"{TS}.{name}()" for name in ("getDayOfMonth", "getDayOfWeek", "getDayOfYear")},
    **{name: f"{TS}.{name}()" for name in ("getHours", "getMinutes", "getSeconds")},
    "getMilliseconds": f"{TS}.getMilliseconds()",
    "bool": "bool('true')",
    "min": "[2, 1].min()",
    "max": "[1, 2].max()",
    "sum": "[1, 2].sum()",
    "charAt": "'ab'.charAt(1)",
    "indexOf": "'a.b'.indexOf('.')",
    "lastIndexOf": "'a.b.c'.lastIndexOf('.')",
    "substring": "'abc'.substring(1, 2)",
    "replace": "'aa'.replace('a', 'b')",
    "split": "'a,b'.split(',')",
    "join": "['a', 'b'].join('-')",
    "lowerAscii": "'A'.lowerAscii()",
    "upperAscii": "'a'.upperAscii()",
    "trim": "' a '.trim()",
    "reverse": "'ab'.reverse()",
    "strings.quote": "strings.quote('a')",
    "math.greatest": "math.greatest(1, 2)",
    "math.least": "math.least([1, 2])",
    "math.abs": "math.abs(-1)",
    "math.sign": "math.sign(-2)",
    "math.ceil": "math.ceil(1.2)",
    "math.floor": "math.floor(1.2)",
    "math.round": "math.round(1.5)",
    "math.trunc": "math.trunc(1.5)",
    "math.isNaN": "math.isNaN(1.0)",
    "math.isInf": "math.isInf(1.0)",
    "math.isFinite": "math.isFinite(1.0)",
    "math.sqrt": "math.sqrt(4)",
    "math.bitOr": "math.bitOr(1, 2)",
    "math.bitAnd": "math.bitAnd(1, 3)",
    "math.bitXor": "math.bitXor(1, 3)",
    "math.bitNot": "math.bitNot(1)",
    "math.bitShiftLeft": "math.bitShiftLeft(1, 2)",
    "math.bitShiftRight": "math.bitShiftRight(4, 1)",
    "sets.contains": "sets.contains([1, 2], [1])",
    "sets.of": "'a' in sets.of(['a', 'b'])",
    "sets.equivalent": "sets.equivalent([1, 2], [2, 1])",
    "sets.intersects": "sets.intersects([1], [1, 2])",
    "base64.encode": "base64.encode(b'ab')",
    "base64.decode": "base64.decode('YWI=')",
    "distinct": "[1, 1].distinct()",
    "flatten": "[[1], [2]].flatten()",
    "slice": "[1, 2, 3].slice(0, 2)",
    "sort": "[2, 1].sort()",
    "first": "[1].first().value()",
    "last": "[1, 2].last().value()",
    "lists.range": "lists.range(3)",
    # Kubernetes' libraries (policy/cel/library; compared with the API server in tests/native)
    "isSorted": "[1, 2].isSorted()",
    "find": "'a1'.find('[0-9]')",
    "findAll": "'a1b2'.findAll('[0-9]')",
    "url": "url('https://a.example/p')",
    "isURL": "isURL('/p')",
    **{name: f"url('https://a.example:8/p?q=1').{name}()" for name in (
        "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery")},
    "ip": "ip('10.0.0.1')",
    "isIP": "isIP('10.0.0.1')",
    "ip.isCanonical": "ip.isCanonical('10.0.0.1')",
    **{name: f"ip('10.0.0.1').{name}()" for name in (
        "family", "isUnspecified", "isLoopback", "isLinkLocalMulticast", "isLinkLocalUnicast",
        "isGlobalUnicast")},
    "cidr": "cidr('10.0.0.0/8')",
    "isCIDR": "isCIDR('10.0.0.0/8')",
    "containsIP": "cidr('10.0.0.0/8').containsIP('10.1.1.1')",
    "containsCIDR": "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')",
    "prefixLength": "cidr('10.0.0.0/8').prefixLength()",
    "masked": "cidr('10.0.0.1/8').masked()",
    "_cidr_ip": "cidr('10.0.0.1/8').ip()",
    "quantity": "quantity('1Gi')",
    "isQuantity": "isQuantity('1Gi')",
    "sign": "sign(quantity('1'))",
    **{name: f"quantity('1').{name}()" for name in (
        "asApproximateFloat", "asInteger", "isInteger")},
    **{name: f"quantity('1').{name}(quantity('2'))" for name in (
        "isGreaterThan", "isLessThan", "compareTo", "add", "sub")},
    "format.named": "format.named('uuid')",
    **{f"format.{name}": f"format.{name}().validate('a')" for name in (
        "dns1123Label", "dns1123Subdomain", "dns1035Label", "qualifiedName",
        "dns1123LabelPrefix", "dns1123SubdomainPrefix", "dns1035LabelPrefix", "labelValue",
        "uri", "uuid", "byte", "date", "datetime")},
    "validate": "format.uuid().validate('a')",
    "_optional_select": "{'a': 1}.?a",
    "_optional_index": "[1][?0]",
    "format": "'%s-%d'.format(['a', 1])",
    "semver": "semver('1.2.3')",
    "isSemver": "isSemver('v1.2', true)",
    **{name: f"semver('1.2.3').{name}()" for name in ("major", "minor", "patch")},
    "_optional_elements": "[1, ?optional.none()]",
    "_optional_entries": "{?'a': optional.of(1)}",
    "_pairs": "[1].all(i, v, v > i)",
    "_pairs_to_map": "{'a': 1}.transformMap(k, v, v + 1)",
    "_merge_entries": "{'a': 1}.transformMapEntry(k, v, {k: v})",
}


def policy_calling(expression: str) -> str:
    """A policy whose validation evaluates ``expression`` and passes unless it errors."""
    return yaml.safe_dump(
        {
            "apiVersion": "edgewarden.dev/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "probe"},
            "spec": {
                "match": {"kinds": ["Service"]},
                "validations": [{"expression": f"[{expression}].size() == 1"}],
            },
        }
    )


def test_every_function_the_checker_accepts_has_a_sample() -> None:
    assert set(SAMPLES) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_accepted_function_evaluates_in_the_engine(name: str) -> None:
    engine = Engine(load_policy_text(policy_calling(SAMPLES[name])))
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
    decision = engine.evaluate(make_request("CREATE", service), MemoryCluster())
    assert decision.allowed, (SAMPLES[name], decision.violations)


@pytest.mark.parametrize(
    "expression",
    [
        "'1.2.3.4'.ip()",  # ip() is a cidr's method, or a function of a string
        "'10.0.0.1'.isIP()",  # isIP is a function, as Kubernetes declares it
        "ip(1)",  # Kubernetes' ip() takes a string
        "quantity('1Gi') < quantity('2Gi')",  # no ordering of quantities: isLessThan
        "'%s'.format('a')",  # format takes a list of arguments
        "matches('abc', 'a')",  # the binding has only the method form
        "'abc'.startsWith()",
        "[1, 2].contains(1)",  # the native contains is the string one: use `1 in [1, 2]`
    ],
)
def test_what_the_binding_does_not_evaluate_is_refused_at_load(expression: str) -> None:
    with pytest.raises(PolicyLoadError):
        load_policy_text(policy_calling(expression))


def documented_functions() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### CEL functions", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return set(re.findall(r"`(?:x\.)?([A-Za-z_][\w.]*)\(", section))


def test_docs_list_exactly_the_functions_the_checker_accepts() -> None:
    # ``_``-names are what the optional syntax, ``cidr.ip()`` and the two-variable
    # comprehensions are rewritten into (policy/cel/optional_syntax.py).
    assert documented_functions() == {name for name in FUNCTIONS if not name.startswith("_")}
