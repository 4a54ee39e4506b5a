"""PolicyExceptions are closed by default: off until enabled, only in the namespaces named,
an expiry required and bounded, no selector that matches practically everything; and the
offline commands judge them as serve does given the same flags."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.audit.helpers import POLICIES, RENDERED, run
from webhook.errors import PolicyLoadError
from webhook.policy.load.crd import exception_crd
from webhook.policy.load.documents import exception_from_object, load_exceptions
from webhook.policy.model.exception_rules import ExceptionRules, match_all_problem
from webhook.policy.model.exceptions import PolicyException, parse_rfc3339
from webhook.policy.model.selectors import LabelSelector, Requirement

CREATED = "2030-03-01T00:00:00Z"
DAY = 86400.0


def cluster_exception(namespace: str = "payments", expires: str = "2030-04-01T00:00:00Z",
                      created: str | None = CREATED) -> PolicyException:
    metadata = {"name": "legacy", "namespace": namespace}
    if created is not None:
        metadata["creationTimestamp"] = created
    return exception_from_object({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": metadata,
        "spec": {"policies": ["deny-nodeport"], "match": {"names": ["legacy"]},
                 "expiresAt": expires},
    })


# -- off until enabled, then only where named ----------------------------------------------


def test_exceptions_are_off_by_default() -> None:
    reason = ExceptionRules().refusal(cluster_exception(), parse_rfc3339(CREATED))
    assert reason == "PolicyExceptions are off (serve --enable-exceptions turns them on)"


def test_enabled_exceptions_are_honoured_only_in_the_namespaces_named() -> None:
    rules = ExceptionRules(enabled=True, namespaces=frozenset({"payments", "platform"}))
    at = parse_rfc3339(CREATED)
    assert rules.refusal(cluster_exception("payments"), at) is None
    assert rules.refusal(cluster_exception("shop"), at) == (
        "namespace shop is not one PolicyExceptions may live in "
        "(--exception-namespace: payments, platform)")
    kept, ignored = rules.honoured([cluster_exception("payments"), cluster_exception("shop")], at)
    assert [e.ref for e in kept] == ["payments/legacy"]
    assert [i.describe() for i in ignored] == [
        "PolicyException shop/legacy is ignored: namespace shop is not one PolicyExceptions "
        "may live in (--exception-namespace: payments, platform)"]


def test_offline_rules_allow_every_namespace_unless_named() -> None:
    at = parse_rfc3339(CREATED)
    assert ExceptionRules.offline().refusal(cluster_exception("shop"), at) is None
    assert ExceptionRules.offline(["payments"]).refusal(cluster_exception("shop"), at)


# -- expiresAt: required, and bounded ----------------------------------------------------


def test_an_exception_without_expiry_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    file = tmp_path / "forever.yaml"
    file.write_text("apiVersion: edgewarden.dev/v1alpha1\nkind: PolicyException\n"
                    "metadata: {name: forever, namespace: payments}\n"
                    "spec: {policies: [deny-nodeport], match: {names: [legacy]}}\n")
    with pytest.raises(PolicyLoadError) as raised:
        load_exceptions(file)
    assert str(raised.value) == (
        f"{file}:4: spec.expiresAt: required: every exception ends, at most 90 days after it "
        "is created unless the server says otherwise (--max-exception-days)")
    required = exception_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["required"]
    assert "expiresAt" in required, "the API server refuses it too"


def test_a_lifetime_up_to_the_maximum_is_honoured_and_beyond_it_is_refused() -> None:
    rules = ExceptionRules(enabled=True, namespaces=frozenset({"payments"}), max_days=30)
    created = parse_rfc3339(CREATED)
    exactly = cluster_exception(expires="2030-03-31T00:00:00Z")
    assert exactly.expires_at == created + 30 * DAY
    assert rules.refusal(exactly, created) is None
    one_second_more = cluster_exception(expires="2030-03-31T00:00:01Z")
    assert rules.refusal(one_second_more, created) == (
        "expiresAt is 30.0 days after its creation, more than the maximum of 30 "
        "(--max-exception-days)")
    # Counted from creation, not from now: an old exception cannot be stretched by waiting.
    assert rules.refusal(one_second_more, created + 20 * DAY) is not None


def test_a_file_has_no_creation_so_its_lifetime_counts_from_the_instant_judged() -> None:
    rules = ExceptionRules.offline(max_days=90)
    file_like = cluster_exception(expires="2030-12-01T00:00:00Z", created=None)
    assert file_like.created_at is None
    far = parse_rfc3339("2030-03-01T00:00:00Z")  # 275 days before
    near = parse_rfc3339("2030-10-01T00:00:00Z")  # 61 days before
    assert rules.refusal(file_like, far) == (
        "expiresAt is 275.0 days after the instant judged, more than the maximum of 90 "
        "(--max-exception-days)")
    assert rules.refusal(file_like, near) is None


def test_an_exception_without_an_expiry_made_in_code_is_refused_too() -> None:
    bare = PolicyException("legacy", "payments", frozenset({"deny-nodeport"}),
                           names=frozenset({"legacy"}))
    assert ExceptionRules.offline().refusal(bare, 0.0) == "it has no expiresAt"


# -- selectors that match everything -------------------------------------------------------


MATCH_ALL = {
    "empty matchLabels": "{matchLabels: {}}",
    "DoesNotExist on a label nobody sets": (
        "{matchExpressions: [{key: no-such-label, operator: DoesNotExist}]}"),
    "NotIn only": "{matchExpressions: [{key: tier, operator: NotIn, values: [frontend]}]}",
    "DoesNotExist and NotIn": (
        "{matchExpressions: [{key: a, operator: DoesNotExist}, "
        "{key: b, operator: NotIn, values: [x]}]}"),
    "empty matchLabels beside a DoesNotExist": (
        "{matchLabels: {}, matchExpressions: [{key: a, operator: DoesNotExist}]}"),
}
POSITIVE = {
    "matchLabels": "{matchLabels: {app: legacy}}",
    "In": "{matchExpressions: [{key: app, operator: In, values: [legacy]}]}",
    "Exists beside DoesNotExist": (
        "{matchExpressions: [{key: legacy, operator: Exists}, "
        "{key: migrated, operator: DoesNotExist}]}"),
}


def selector_exception(tmp_path: Path, selector: str) -> Path:
    file = tmp_path / "exception.yaml"
    file.write_text(textwrap.dedent(f"""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: PolicyException
        metadata: {{name: legacy, namespace: payments}}
        spec:
          policies: [deny-nodeport]
          match: {{selector: {selector}}}
          expiresAt: "2030-04-01T00:00:00Z"
        """))
    return file


@pytest.mark.parametrize("selector", MATCH_ALL.values(), ids=MATCH_ALL.keys())
def test_a_selector_that_matches_practically_everything_is_refused(
        tmp_path: Path, selector: str) -> None:
    with pytest.raises(PolicyLoadError) as raised:
        load_exceptions(selector_exception(tmp_path, selector))
    [problem] = raised.value.problems
    assert problem.field == "spec.match.selector"
    assert "whole namespace" in problem.message


@pytest.mark.parametrize("selector", POSITIVE.values(), ids=POSITIVE.keys())
def test_a_selector_with_a_positive_requirement_loads(tmp_path: Path, selector: str) -> None:
    [exception] = load_exceptions(selector_exception(tmp_path, selector))
    assert exception.selector is not None
    assert exception.selector.matches({"app": "legacy", "legacy": "yes"})
    assert not exception.selector.matches({})


def test_every_selector_without_a_positive_requirement_matches_an_unlabelled_object() -> None:
    """Why the rule is "a positive requirement" and not a list of bad forms: each such
    selector matches an object with no labels at all."""
    negative = [LabelSelector((), (Requirement("a", "DoesNotExist"),)),
                LabelSelector((), (Requirement("a", "NotIn", frozenset({"x"})),)),
                LabelSelector()]
    for selector in negative:
        assert selector.matches({})
        assert match_all_problem(selector) is not None


def test_the_crd_carries_the_same_selector_rule() -> None:
    spec = exception_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"]
    selector = spec["properties"]["match"]["properties"]["selector"]
    [rule] = selector["x-kubernetes-validations"]
    assert "'In'" in rule["rule"] and "'Exists'" in rule["rule"]
    assert "matchLabels" in rule["rule"]
    # A bounded list keeps the rule's estimated cost under the API server's budget.
    assert selector["properties"]["matchExpressions"]["maxItems"] == 32


# -- offline commands judge as serve does ----------------------------------------------------


def stamp(days: float) -> str:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    return at.isoformat().replace("+00:00", "Z")


def admin_exception(tmp_path: Path, expires: str) -> str:
    file = tmp_path / "exceptions.yaml"
    file.write_text(yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "admin-nodeport", "namespace": "production"},
        "spec": {"policies": ["deny-nodeport-in-production"], "match": {"names": ["shop-admin"]},
                 "expiresAt": expires, "ticket": "OPS-1"},
    }))
    return str(file)


def admin_result(*args: str) -> tuple[bool, str]:
    result = run("check", "-f", RENDERED, "--policies", POLICIES, "-o", "json", *args)
    report = json.loads(result.stdout)
    admin = next(r for r in report["results"] if r["resource"]["name"] == "shop-admin")
    return bool(admin["allowed"]), result.stderr


def test_check_honours_given_exceptions_only_in_the_namespaces_named(tmp_path: Path) -> None:
    exceptions = admin_exception(tmp_path, stamp(30))
    allowed, said = admin_result("--exceptions", exceptions)
    assert allowed and "ignored" not in said
    allowed, said = admin_result("--exceptions", exceptions, "--exception-namespace", "production")
    assert allowed
    allowed, said = admin_result("--exceptions", exceptions,
                                 "--exception-namespace", "policy-exceptions")
    assert not allowed
    assert ("note: PolicyException production/admin-nodeport is ignored: namespace production "
            "is not one PolicyExceptions may live in (--exception-namespace: "
            "policy-exceptions)") in " ".join(said.split())


def test_check_ignores_a_file_exception_longer_than_the_maximum(tmp_path: Path) -> None:
    exceptions = admin_exception(tmp_path, stamp(120))
    allowed, said = admin_result("--exceptions", exceptions)
    assert not allowed
    assert "more than the maximum of 90 (--max-exception-days)" in " ".join(said.split())
    allowed, _ = admin_result("--exceptions", exceptions, "--max-exception-days", "180")
    assert allowed


def test_a_suite_judges_the_lifetime_at_each_cases_instant(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(textwrap.dedent("""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: deny-nodeport}
        spec:
          match: {kinds: [Service]}
          validations:
            - expression: "object.spec.type != 'NodePort'"
              message: NodePort is not allowed
        """))
    (tmp_path / "exceptions.yaml").write_text(textwrap.dedent("""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: PolicyException
        metadata: {name: legacy, namespace: payments}
        spec:
          policies: [deny-nodeport]
          match: {names: [legacy]}
          expiresAt: "2030-06-01T00:00:00Z"
        """))
    service = ("{apiVersion: v1, kind: Service, metadata: {name: legacy, namespace: payments}, "
               "spec: {type: NodePort, ports: [{port: 80}]}}")
    (tmp_path / "legacy.test.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: PolicyTest
        metadata: {{name: legacy}}
        spec:
          policies: [policy.yaml]
          exceptions: [exceptions.yaml]
          cases:
            - name: within 90 days of the expiry the exception admits it
              at: "2030-05-01T00:00:00Z"
              namespace: payments
              object: {service}
              expect: {{allowed: true, exempted: [deny-nodeport]}}
            - name: further from the expiry than the maximum it is ignored
              at: "2030-01-01T00:00:00Z"
              namespace: payments
              object: {service}
              expect: {{allowed: false, exempted: []}}
        """))
    result = run("test", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    assert ("note: PolicyException payments/legacy is ignored: expiresAt is 151.0 days after the "
            "instant judged") in " ".join(result.stderr.split())
    restricted = run("test", str(tmp_path), "--exception-namespace", "platform")
    assert restricted.exit_code == 1
