"""`edgewarden validate` against the corpus of broken CEL (tests/native/corpus/broken.yaml):
everything the API server refuses at create or flags in ``status.typeChecking`` (recorded by
test_corpus_reference.py against the real kube-apiserver), validate refuses too, with file,
line and field, every problem of the file in one run; and it warns where the API server is
silent but the expression fails at run time on common objects (an unguarded optional read).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.native.corpus import Broken, load_corpus
from webhook.cli.app import app

# Entries the API server accepts where edgewarden warns: the read fails at run time on every
# object that lacks the map (no annotations, no labels), so under failurePolicy Fail it denies
# them all.
WARNED = {"unguarded-annotation", "unguarded-label-select"}
# edgewarden's own functions (docs/native.md): the API server refuses them, validate warns
# (the policy runs on the webhook only, and `export` keeps it there).
EXTENSIONS = {"edgewarden-sets-of", "math-greatest", "base64-decode"}
PROBLEM = re.compile(r"^[✗!] (?P<file>[^:]+):(?P<line>\d+): (?P<field>\S+): (?P<message>.*)$")


def corpus_file(corpus: list[Broken], path: Path) -> dict[str, int]:
    """Every entry as a policy of its own, in one file; the line of each expression."""
    documents = [{"apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
                  "metadata": {"name": entry.id},
                  "spec": {"match": {"kinds": [entry.kind]},
                           "validations": [{"expression": entry.expression}]}}
                 for entry in corpus]
    text = yaml.safe_dump_all(documents, sort_keys=False, width=1000)
    path.write_text(text)
    lines = {}
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("  name: "):
            current = line.split(": ", 1)[1]
        if line.lstrip().startswith("- expression:"):
            lines[current] = number
    return lines


def test_validate_refuses_everything_the_api_server_flags_in_one_run(tmp_path: Path) -> None:
    corpus = load_corpus()
    path = tmp_path / "broken.yaml"
    lines = corpus_file(corpus, path)
    result = CliRunner().invoke(app, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    reported = [m for line in result.output.splitlines() if (m := PROBLEM.match(line))]
    assert reported, result.output
    errors = {(int(m["line"]), m["field"]) for m in reported if m.group(0).startswith("✗")}
    warned = {(int(m["line"]), m["field"]) for m in reported if m.group(0).startswith("!")}
    missed = [f"{e.id} ({e.api_server}: {e.says}): {e.expression}" for e in corpus
              if e.flagged and e.id not in EXTENSIONS
              and (lines[e.id], "spec.validations[0].expression") not in errors]
    assert not missed, "validate accepts what the API server flags:\n" + "\n".join(missed)
    for entry in corpus:
        if entry.id in WARNED | EXTENSIONS:
            assert (lines[entry.id], "spec.validations[0].expression") in warned, entry.id
    # What we add to the API server's words: the field or function meant.
    said = {int(m["line"]): m["message"] for m in reported}
    assert "did you mean spec.type?" in said[lines["unknown-field-typo"]]
    assert "did you mean metadata.labels?" in said[lines["misspelt-labels"]]
    assert "did you mean startsWith?" in said[lines["misspelt-startswith"]]
    assert "did you mean spec.ingressClassName?" in said[lines["ingress-class-without-name"]]
    # One run: every flagged entry is reported, none hidden behind another's syntax error.
    assert len(errors) == len([e for e in corpus if e.flagged and e.id not in EXTENSIONS])


ONE_FILE = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: broken-schema}
spec:
  mode: Sometimes
  match: {kinds: [Service]}
  validations:
    - expression: "object.spec.type == 'a' and true"
---
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: broken-cel}
spec:
  match: {kinds: [Service]}
  validations:
    - expression: "object.spec.type === 'NodePort'"
    - expression: "object.spec.ports[0].port == 'http'"
    - expression: "object.spec.typo == 'x'"
      messageExpression: "'port ' + object.spec.ports[0].port"
"""


def test_no_problem_hides_another(tmp_path: Path) -> None:
    """A schema error does not hide the CEL beside it, nor a syntax error the type errors
    of the other expressions of its policy: one run, every problem, in file order."""
    path = tmp_path / "policies.yaml"
    path.write_text(ONE_FILE)
    result = CliRunner().invoke(app, ["validate", str(path)], catch_exceptions=False)
    found = [(int(m["line"]), m["field"]) for line in result.output.splitlines()
             if (m := PROBLEM.match(line))]
    assert found == [
        (5, "spec.mode"),
        (8, "spec.validations[0].expression"),
        (16, "spec.validations[0].expression"),
        (17, "spec.validations[1].expression"),
        (18, "spec.validations[2].expression"),
        (19, "spec.validations[2].messageExpression"),
    ], result.output
    assert "5 problem(s)" not in result.output and "6 problem(s)" in result.output
