"""The composite GitHub Action (action.yml): well formed, its commands exist, inputs reach
scripts only through the environment, and its steps, run here with bash as the runner would
run them (the install step aside: it needs PyPI), validate, test, check, write SARIF that
validates, and fail only after the upload when a manifest would be denied."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .tools import (
    BROKEN_POLICY,
    CLUSTERIP_IN_PRODUCTION,
    NODEPORT_IN_PRODUCTION,
    REPO,
    edgewarden_commands,
    environment,
    help_exits_zero,
)

ACTION = REPO / "action.yml"
SARIF_SCHEMA = REPO / "webhook" / "offline" / "schemas" / "sarif-schema-2.1.0.json"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
REFERENCE = re.compile(r"^(inputs|steps|github)\.([A-Za-z0-9_.-]+)$")


def action() -> dict[str, Any]:
    return dict(yaml.safe_load(ACTION.read_text()))


def steps() -> list[dict[str, Any]]:
    found = list(action()["runs"]["steps"])
    assert found, "the action runs no step"
    return found


def test_action_is_a_composite_action_with_described_inputs() -> None:
    spec = action()
    assert spec["name"] and spec["description"]
    assert spec["runs"]["using"] == "composite"
    for name, data in spec["inputs"].items():
        assert data["description"], name
        assert "default" in data or data.get("required"), name
    for step in steps():
        assert step.get("name"), step
        assert ("run" in step) != ("uses" in step), step["name"]
        if "run" in step:
            assert step["shell"] == "bash", f"{step['name']}: composite run steps need a shell"
        else:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]


def test_action_uploads_sarif_with_codeql_upload_sarif() -> None:
    [upload] = [s for s in steps() if s.get("uses", "").startswith(
        "github/codeql-action/upload-sarif@")]
    assert upload["with"]["sarif_file"] == "${{ steps.check.outputs.sarif-file }}"
    assert upload["if"].startswith("always()"), "uploaded even when the check found denials"
    names = [s["name"] for s in steps()]
    assert names.index(upload["name"]) < names.index("Fail on denied manifests")


def test_inputs_never_reach_a_script_except_through_the_environment() -> None:
    """`${{ inputs.x }}` inside `run:` would be spliced into the script text (shell
    injection from an input); every expression must be in env/with/if/outputs instead."""
    for step in steps():
        assert not EXPRESSION.search(step.get("run", "")), step["name"]


def test_every_expression_refers_to_something_that_exists() -> None:
    spec = action()
    inputs = set(spec["inputs"])
    step_ids = {s["id"] for s in steps() if "id" in s}
    text = ACTION.read_text()
    expressions = EXPRESSION.findall(text) + [s["if"] for s in steps() if "if" in s]
    assert expressions
    for expression in expressions:
        for reference in re.findall(r"\b(?:inputs|steps|github)\.[A-Za-z0-9_.-]+", expression):
            kind, rest = REFERENCE.match(reference).groups()  # type: ignore[union-attr]
            if kind == "inputs":
                assert rest in inputs, reference
            elif kind == "steps":
                assert rest.split(".")[0] in step_ids, reference
            else:
                assert rest in {"action_path", "workspace"}, reference


def test_every_command_the_action_runs_exists() -> None:
    commands = set().union(*(edgewarden_commands(s.get("run", "")) for s in steps()))
    assert commands == {"validate", "test", "check", "diff"}
    for command in commands:
        result = help_exits_zero(command)
        assert result.returncode == 0, f"edgewarden {command} --help: {result.stderr}"


def test_install_step_installs_this_repository_with_its_pins() -> None:
    [install] = [s for s in steps() if s["name"] == "Install edgewarden"]
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert '-c "$ACTION_PATH/constraints.txt" "$ACTION_PATH"' in install["run"]
    assert (REPO / "constraints.txt").is_file() and (REPO / "pyproject.toml").is_file()


# -- running the steps ------------------------------------------------------------------


def condition_holds(condition: str, values: dict[str, str]) -> bool:
    """The `if:` conditions this action uses: `always()` and `REF == 'x'` / `REF != 'x'`
    joined by `&&` (anything else is refused, so a new form must be taught here)."""
    assert "||" not in condition, condition
    for clause in (c.strip() for c in condition.split("&&")):
        if clause == "always()":
            continue
        match = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", clause)
        assert match, f"unsupported condition {clause!r}"
        reference, operator, literal = match.groups()
        value = values.get(reference, "")
        if (value == literal) != (operator == "=="):
            return False
    return True


def run_action(inputs: dict[str, str], workspace: Path) -> dict[str, Any]:
    """Every step but the setup and the install, in order, as a runner would: conditions
    evaluated, expressions in env substituted, outputs read from $GITHUB_OUTPUT; stops at
    the first failing step. Returns the outcome of each step and the outputs."""
    if not shutil.which("bash"):
        pytest.skip("bash is not installed")
    spec = action()
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in spec["inputs"].items()}
    values |= {f"inputs.{k}": v for k, v in inputs.items()}
    values["github.action_path"] = str(REPO)
    runner_temp = workspace / ".runner-temp"
    runner_temp.mkdir()
    outcome: dict[str, Any] = {"ran": [], "failed": None}
    for step in steps():
        if "run" not in step or step["name"] == "Install edgewarden":
            continue
        if "if" in step and not condition_holds(step["if"], values):
            continue
        output_file = runner_temp / f"output-{len(outcome['ran'])}"
        output_file.write_text("")
        env = environment(RUNNER_TEMP=str(runner_temp), GITHUB_OUTPUT=str(output_file),
                          GITHUB_PATH=str(runner_temp / "path"))
        for name, value in step.get("env", {}).items():
            env[name] = EXPRESSION.sub(lambda m: values[m.group(1)], str(value))
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]],
                                capture_output=True, text=True, timeout=120, check=False,
                                cwd=workspace, env=env)
        outcome["ran"].append(step["name"])
        outcome[step["name"]] = result
        for line in output_file.read_text().splitlines():
            name, _, value = line.partition("=")
            values[f"steps.{step['id']}.outputs.{name}"] = value
        if result.returncode != 0:
            outcome["failed"] = step["name"]
            break
    outcome["outputs"] = {k: v for k, v in values.items() if k.startswith("steps.")}
    return outcome


def sarif(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    return dict(document)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checked-out repository: the shipped policies and their suites, two manifests."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    (tmp_path / "rendered").mkdir()
    (tmp_path / "rendered" / "checkout.yaml").write_text(CLUSTERIP_IN_PRODUCTION)
    # check refuses a namespace the input does not define: the render carries its Namespace.
    (tmp_path / "rendered" / "namespace.yaml").write_text(NODEPORT_IN_PRODUCTION.split("---\n")[0])
    (tmp_path / "debug.yaml").write_text(NODEPORT_IN_PRODUCTION)
    return tmp_path


def test_good_manifests_pass_and_leave_a_sarif_report(workspace: Path) -> None:
    outcome = run_action({"manifests": "rendered/"}, workspace)
    assert outcome["failed"] is None, outcome
    assert outcome["ran"] == ["edgewarden validate", "edgewarden test", "edgewarden check"]
    assert outcome["outputs"]["steps.check.outputs.exit-code"] == "0"
    assert outcome["outputs"]["steps.check.outputs.sarif-file"] == "edgewarden.sarif"
    report = sarif(workspace / "edgewarden.sarif")
    assert not [r for r in report["runs"][0]["results"] if r["level"] == "error"]
    assert (workspace / ".runner-temp" / "edgewarden-tests.xml").is_file()


def test_a_denied_manifest_fails_the_action_after_the_report_is_written(
    workspace: Path,
) -> None:
    outcome = run_action({"manifests": "rendered/\ndebug.yaml"}, workspace)
    assert outcome["failed"] == "Fail on denied manifests", outcome
    assert outcome["outputs"]["steps.check.outputs.exit-code"] == "1"
    report = sarif(workspace / "edgewarden.sarif")
    errors = [r for r in report["runs"][0]["results"] if r["level"] == "error"]
    assert [r["ruleId"] for r in errors] == ["deny-nodeport-in-production"]
    uri = errors[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("debug.yaml")


def test_fail_on_violation_false_reports_without_failing(workspace: Path) -> None:
    # (No validate/test this time: `check` falls back to ./policies without --policies.)
    outcome = run_action({"manifests": "debug.yaml", "fail-on-violation": "false",
                          "policies": "", "tests": ""}, workspace)
    assert outcome["ran"] == ["edgewarden check"]
    assert outcome["failed"] is None, outcome
    assert outcome["outputs"]["steps.check.outputs.exit-code"] == "1"


def test_namespace_labels_input_reaches_check(workspace: Path) -> None:
    """The NodePort alone (no Namespace object): denied only with the labels input."""
    (workspace / "debug.yaml").write_text(NODEPORT_IN_PRODUCTION.split("---\n")[1])
    unknown = run_action({"manifests": "debug.yaml", "tests": "", "policies": ""}, workspace)
    assert unknown["outputs"]["steps.check.outputs.exit-code"] == "2", "labels unknown: refused"
    shutil.rmtree(workspace / ".runner-temp", ignore_errors=True)
    denied = run_action({"manifests": "debug.yaml", "tests": "", "policies": "",
                         "namespace-labels": "payments=environment=production\nother=a=b"},
                        workspace)
    assert denied["outputs"]["steps.check.outputs.exit-code"] == "1", denied


def test_broken_policies_stop_the_action_at_validate(workspace: Path) -> None:
    (workspace / "policies" / "broken.yaml").write_text(BROKEN_POLICY)
    outcome = run_action({"manifests": "rendered/", "tests": ""}, workspace)
    assert outcome["failed"] == "edgewarden validate"
    result = outcome["edgewarden validate"]
    assert "broken.yaml:6" in result.stdout + result.stderr


def test_no_manifests_means_no_check_and_no_upload(workspace: Path) -> None:
    outcome = run_action({}, workspace)
    assert outcome["ran"] == ["edgewarden validate", "edgewarden test"]
    assert "steps.check.outputs.sarif-file" not in outcome["outputs"]
    [upload] = [s for s in steps() if s.get("uses", "").startswith("github/codeql-action/")]
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in action()["inputs"].items()}
    assert not condition_holds(upload["if"], values)


# -- mode: diff -------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                    "-c", "commit.gpgsign=false", *args],
                   cwd=repo, capture_output=True, text=True, check=True, timeout=60)


@pytest.fixture
def pull_request(workspace: Path) -> Path:
    """The workspace as a pull request's checkout: main holds the policies and manifests,
    the branch (checked out) makes deny-nodeport-in-production cover staging too."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    (workspace / "rendered" / "staging.yaml").write_text(
        NODEPORT_IN_PRODUCTION.replace("payments", "staging").replace("production", "staging"))
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "base")
    git(workspace, "checkout", "-q", "-b", "tighten")
    policy = workspace / "policies" / "deny-nodeport-in-production.yaml"
    policy.write_text(policy.read_text().replace("[production, prod]",
                                                 "[production, prod, staging]"))
    git(workspace, "commit", "-q", "-am", "deny NodePort in staging")
    return workspace


def test_diff_mode_writes_the_markdown_and_fails_on_a_new_denial(pull_request: Path) -> None:
    outcome = run_action({"mode": "diff", "base": "main", "manifests": "rendered/",
                          "tests": ""}, pull_request)
    assert outcome["ran"] == ["edgewarden validate", "edgewarden diff", "Fail on new denials"]
    assert outcome["failed"] == "Fail on new denials", outcome
    assert outcome["outputs"]["steps.diff.outputs.exit-code"] == "1"
    report = (pull_request / "edgewarden-diff.md").read_text()
    assert "Service/staging/checkout-debug" in report and "newly denied" in report
    assert "steps.check.outputs.exit-code" not in outcome["outputs"], "no check in diff mode"


def test_diff_mode_takes_the_pull_request_base_and_can_allow_new_denials(
    pull_request: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    git(pull_request, "branch", "-q", "-m", "main", "base-branch")
    git(pull_request, "update-ref", "refs/remotes/origin/base-branch", "base-branch")
    monkeypatch.setenv("GITHUB_BASE_REF", "base-branch")
    outcome = run_action({"mode": "diff", "manifests": "rendered/", "tests": "",
                          "allow-new-denials": "true"}, pull_request)
    assert outcome["failed"] is None, outcome
    assert outcome["outputs"]["steps.diff.outputs.exit-code"] == "1"
    assert "origin/base-branch:policies" in (pull_request / "edgewarden-diff.md").read_text()
