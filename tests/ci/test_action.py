"""The composite GitHub Action (action.yml): well formed, its commands exist, inputs reach
scripts only through the environment, and its steps, run here with bash as the runner would
run them (the install steps aside: tests/ci/test_action_install.py runs those), validate,
test, check (the table in the log, the job summary in $GITHUB_STEP_SUMMARY, SARIF only on
request, valid), and fail only after the reports when a manifest would be denied."""

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
INSTALL_STEPS = {"Resolve the edgewarden version", "Install edgewarden"}
# A script a step runs: `bash "$ACTION_PATH/scripts/action/check.sh"`.
SCRIPT = re.compile(r'"\$ACTION_PATH/(scripts/action/[\w.-]+)"')
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


def step_text(step: dict[str, Any]) -> str:
    """What a step runs: its script text, and the text of the action's scripts it calls."""
    run = str(step.get("run", ""))
    text = run + "".join((REPO / script).read_text() for script in SCRIPT.findall(run))
    # Comments and messages name the tool in prose ("edgewarden from a pinned wheel").
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("#", "echo")))


def test_every_script_a_step_runs_is_in_the_action() -> None:
    scripts = [script for s in steps() for script in SCRIPT.findall(s.get("run", ""))]
    assert set(scripts) == {"scripts/action/install.sh", "scripts/action/check.sh"}
    for script in scripts:
        assert (REPO / script).is_file(), script
        assert "${{" not in (REPO / script).read_text(), "no expression reaches a script"


def test_every_command_the_action_runs_exists() -> None:
    commands = set().union(*(edgewarden_commands(step_text(s)) for s in steps()))
    assert commands == {"validate", "test", "check", "diff"}
    for command in commands:
        result = help_exits_zero(command)
        assert result.returncode == 0, f"edgewarden {command} --help: {result.stderr}"


def test_install_steps_install_a_pinned_wheel_with_pips_cache_kept() -> None:
    [plan] = [s for s in steps() if s["name"] == "Resolve the edgewarden version"]
    [cache] = [s for s in steps() if s.get("uses", "").startswith("actions/cache@")]
    [install] = [s for s in steps() if s["name"] == "Install edgewarden"]
    names = [s["name"] for s in steps()]
    assert names.index(plan["name"]) < names.index(cache["name"]) < names.index(install["name"])
    assert plan["env"]["EDGEWARDEN_VERSION"] == "${{ inputs.version }}"
    assert cache["with"] == {"path": "${{ steps.plan.outputs.pip-cache-dir }}",
                             "key": "${{ steps.plan.outputs.cache-key }}"}
    assert install["env"]["EDGEWARDEN_VERSION"] == "${{ steps.plan.outputs.version }}"
    script = (REPO / "scripts" / "action" / "install.sh").read_text()
    assert 'spec="edgewarden==$version"' in script, "the released wheel, not the source"
    assert '-c "$ACTION_PATH/constraints.txt" "$spec"' in script, "its dependencies pinned"


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
        if "run" not in step or step["name"] in INSTALL_STEPS:
            continue
        if "if" in step and not condition_holds(step["if"], values):
            continue
        output_file = runner_temp / f"output-{len(outcome['ran'])}"
        output_file.write_text("")
        env = environment(RUNNER_TEMP=str(runner_temp), GITHUB_OUTPUT=str(output_file),
                          GITHUB_PATH=str(runner_temp / "path"),
                          GITHUB_STEP_SUMMARY=str(runner_temp / "step-summary.md"),
                          GITHUB_SERVER_URL="https://github.com",
                          GITHUB_REPOSITORY="shop/deploy", GITHUB_SHA="0123abc")
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


def summary_of(workspace: Path) -> str:
    return (workspace / ".runner-temp" / "step-summary.md").read_text()


def test_good_manifests_pass_with_a_table_in_the_log_and_a_summary(workspace: Path) -> None:
    outcome = run_action({"manifests": "rendered/"}, workspace)
    assert outcome["failed"] is None, outcome
    assert outcome["ran"] == ["edgewarden validate", "edgewarden test", "edgewarden check"]
    assert outcome["outputs"]["steps.check.outputs.exit-code"] == "0"
    log = outcome["edgewarden check"].stdout
    assert "Service/checkout" in log and "rendered/checkout.yaml:1" in log, "the table"
    assert "Nothing Enforce would deny" in log
    summary = summary_of(workspace)
    assert summary.startswith("## edgewarden check\n")
    assert ":white_check_mark: **1 object judged, nothing Enforce would deny**" in summary
    # SARIF is opt-in: nothing written, nothing to upload.
    assert "steps.check.outputs.sarif-file" not in outcome["outputs"]
    assert not (workspace / "edgewarden.sarif").exists()
    assert (workspace / ".runner-temp" / "edgewarden-tests.xml").is_file()


def test_a_denied_manifest_fails_the_action_after_the_reports_are_written(
    workspace: Path,
) -> None:
    outcome = run_action({"manifests": "rendered/\ndebug.yaml", "upload-sarif": "true"},
                         workspace)
    assert outcome["failed"] == "Fail on denied manifests", outcome
    assert outcome["outputs"]["steps.check.outputs.exit-code"] == "1"
    log = outcome["edgewarden check"].stdout
    assert "deny-nodeport-in-production" in log and "debug.yaml:7" in log
    summary = summary_of(workspace)
    assert ":x: **1 of 2 objects would be denied**" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| :x: deny |")]
    assert len(rows) == 1, summary
    assert ("| Service/checkout-debug | payments | deny-nodeport-in-production | Enforce |"
            in rows[0])
    assert "(https://github.com/shop/deploy/blob/0123abc/debug.yaml#L7)" in rows[0]
    # Asked for: the SARIF report, valid, for the upload step.
    assert outcome["outputs"]["steps.check.outputs.sarif-file"] == "edgewarden.sarif"
    report = sarif(workspace / "edgewarden.sarif")
    errors = [r for r in report["runs"][0]["results"] if r["level"] == "error"]
    assert [r["ruleId"] for r in errors] == ["deny-nodeport-in-production"]
    uri = errors[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("debug.yaml")


def test_a_check_that_cannot_judge_fails_at_once_and_says_so_in_the_summary(
    workspace: Path,
) -> None:
    (workspace / "debug.yaml").write_text(NODEPORT_IN_PRODUCTION.split("---\n")[1])
    outcome = run_action({"manifests": "debug.yaml", "tests": ""}, workspace)
    assert outcome["failed"] == "edgewarden check"
    assert outcome["outputs"]["steps.check.outputs.exit-code"] == "2"
    assert "namespace payments" in outcome["edgewarden check"].stderr
    assert "could not judge the manifests (exit code 2)" in summary_of(workspace)


def test_the_summary_can_be_turned_off_and_sarif_written_without_an_upload(
    workspace: Path,
) -> None:
    (workspace / "out").mkdir()
    outcome = run_action({"manifests": "rendered/", "summary": "false",
                          "sarif-file": "out/report.sarif"}, workspace)
    assert outcome["failed"] is None, outcome
    assert not (workspace / ".runner-temp" / "step-summary.md").exists()
    assert outcome["outputs"]["steps.check.outputs.sarif-file"] == "out/report.sarif"
    sarif(workspace / "out" / "report.sarif")
    [upload] = [s for s in steps() if s.get("uses", "").startswith("github/codeql-action/")]
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in action()["inputs"].items()}
    values["steps.check.outputs.sarif-file"] = "out/report.sarif"
    assert not condition_holds(upload["if"], values), "no upload unless upload-sarif"
    values["inputs.upload-sarif"] = "true"
    assert condition_holds(upload["if"], values)


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
