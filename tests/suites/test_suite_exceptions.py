"""`edgewarden test` with PolicyExceptions: a suite's own (files or inline), `--exceptions`,
and `at:` to judge a case at a fixed instant, so a suite can pin an exception's expiry."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support import cli

from .test_suite_mistakes import CLUSTER, NODEPORT, POLICY

EXCEPTION = """\
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyException
metadata: {name: legacy, namespace: payments}
spec:
  policies: [deny-nodeport-in-production]
  match: {names: [web]}
  expiresAt: "2030-06-01T00:00:00Z"
  ticket: PLAT-9
"""


def suite(tmp_path: Path, spec_extra: str, cases: str, *args: str) -> Result:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "cluster.yaml").write_text(CLUSTER)
    (tmp_path / "nodeport.test.yaml").write_text(
        "apiVersion: edgewarden.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: nodeport}\n"
        "spec:\n  policies: [policy.yaml]\n  cluster: [cluster.yaml]\n"
        + textwrap.indent(textwrap.dedent(spec_extra), "  ")
        + "  cases:\n" + textwrap.indent(textwrap.dedent(cases), "    "))
    return cli.run("test", str(tmp_path), *args)


CASES = f"""\
- name: before the expiry the exception admits it, saying so
  namespace: payments
  at: "2030-05-31T23:59:59Z"
  object: {NODEPORT}
  expect:
    allowed: true
    exempted: [deny-nodeport-in-production]
    warnings: ["PolicyException payments/legacy (ticket PLAT-9, expires 2030-06-01T00:00:00Z)"]
- name: from the expiry on it is ignored
  namespace: payments
  at: "2030-06-01T00:00:00Z"
  object: {NODEPORT}
  expect: {{allowed: false, exempted: [], violations: [deny-nodeport-in-production]}}
"""


def test_a_suite_file_exception_with_pinned_instants(tmp_path: Path) -> None:
    (tmp_path / "exceptions.yaml").write_text(EXCEPTION)
    result = suite(tmp_path, "exceptions: [exceptions.yaml]\n", CASES)
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output


def test_an_inline_suite_exception(tmp_path: Path) -> None:
    inline = "exceptions:\n" + textwrap.indent("- " + EXCEPTION.replace("\n", "\n  "), "  ")
    result = suite(tmp_path, inline, CASES)
    assert result.exit_code == 0, result.output


def test_exceptions_from_the_command_line(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "exceptions.yaml").write_text(EXCEPTION)
    suite_dir = tmp_path / "suite"
    suite_dir.mkdir()
    result = suite(suite_dir, "", CASES, "--exceptions", str(extra / "exceptions.yaml"))
    assert result.exit_code == 0, result.output
    without = suite(suite_dir, "", CASES)
    assert without.exit_code == 1
    assert "exempted: expected ['deny-nodeport-in-production'], got []" in without.output


def test_a_bad_instant_is_a_suite_error(tmp_path: Path) -> None:
    result = suite(tmp_path, "at: tomorrow\n", CASES)
    assert result.exit_code == 1
    assert "at: 'tomorrow' is not an RFC 3339 date-time" in result.output
