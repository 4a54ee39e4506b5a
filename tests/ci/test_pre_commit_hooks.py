"""The pre-commit hooks (.pre-commit-hooks.yaml): well formed, their commands exist, and
each works when run the way pre-commit runs it (entry split like a shell, then the hook's
args, then the matching file names)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.offline.kustomize import cached_kubectl

from .tools import (
    BROKEN_POLICY,
    CLUSTERIP_IN_PRODUCTION,
    NODEPORT_IN_PRODUCTION,
    REPO,
    edgewarden_commands,
    environment,
    help_exits_zero,
)

HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"
# Keys pre-commit knows in a hook definition (pre-commit's clientlib MANIFEST_HOOK_DICT).
HOOK_KEYS = {
    "id", "name", "entry", "language", "alias", "files", "exclude", "types", "types_or",
    "exclude_types", "additional_dependencies", "args", "always_run", "fail_fast",
    "pass_filenames", "description", "language_version", "log_file", "require_serial",
    "stages", "verbose", "minimum_pre_commit_version",
}


def hooks() -> dict[str, dict[str, Any]]:
    listed = yaml.safe_load(HOOKS_FILE.read_text())
    assert isinstance(listed, list)
    return {hook["id"]: hook for hook in listed}


def test_hooks_are_the_three_promised_and_well_formed() -> None:
    found = hooks()
    assert set(found) == {"edgewarden-validate", "edgewarden-test", "edgewarden-check",
                          "edgewarden-diff"}
    for hook_id, hook in found.items():
        assert set(hook) <= HOOK_KEYS, f"{hook_id}: unknown keys {set(hook) - HOOK_KEYS}"
        assert {"id", "name", "entry", "language"} <= set(hook), hook_id
        assert hook["language"] == "python", "pre-commit installs edgewarden from this repo"
        for key in ("files", "exclude"):
            if key in hook:
                re.compile(hook[key])


def test_every_command_a_hook_runs_exists() -> None:
    found = hooks()
    commands = {hook_id: edgewarden_commands(hook["entry"]) for hook_id, hook in found.items()}
    assert commands == {"edgewarden-validate": {"validate"}, "edgewarden-test": {"test"},
                        "edgewarden-check": {"pre-commit"}, "edgewarden-diff": {"diff"}}
    for command in set().union(*commands.values()):
        result = help_exits_zero(command)
        assert result.returncode == 0, f"edgewarden {command} --help: {result.stderr}"


def run_hook(hook_id: str, files: list[str], cwd: Path,
             args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """As pre-commit does: shlex-split entry + args + file names (unless
    pass_filenames is false), with the hook's environment on PATH."""
    hook = hooks()[hook_id]
    if hook_id == "edgewarden-check" and not shutil.which("bash"):
        pytest.skip("bash is not installed")
    command = shlex.split(hook["entry"]) + (args if args is not None else hook.get("args", []))
    if hook.get("pass_filenames", True):
        command += files
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                          cwd=cwd, env=environment())


def selected(hook_id: str, paths: list[str]) -> list[str]:
    """The file names pre-commit would pass: `files` matches, `exclude` does not."""
    hook = hooks()[hook_id]
    files = re.compile(hook.get("files", ""))
    exclude = re.compile(hook["exclude"]) if "exclude" in hook else None
    return [p for p in paths if files.search(p) and not (exclude and exclude.search(p))]


def test_validate_hook_takes_policies_not_suites_or_fixtures(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    changed = [str(p.relative_to(tmp_path)) for p in sorted((tmp_path / "policies").rglob("*"))
               if p.is_file()] + ["README.md", "k8s/app.yaml"]
    files = selected("edgewarden-validate", changed)
    assert files and all(f.startswith("policies/") for f in files)
    assert not [f for f in files if f.endswith(".test.yaml") or "/fixtures/" in f]
    result = run_hook("edgewarden-validate", files, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_hook_fails_on_a_broken_policy_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "broken.yaml").write_text(BROKEN_POLICY)
    result = run_hook("edgewarden-validate", ["policies/broken.yaml"], tmp_path)
    assert result.returncode != 0
    assert "policies/broken.yaml:6" in result.stdout + result.stderr
    assert "spec.match.kind" in result.stdout + result.stderr


def test_test_hook_runs_the_suites(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    assert hooks()["edgewarden-test"]["pass_filenames"] is False
    result = run_hook("edgewarden-test", ["policies/deny-external-ips.yaml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # A suite that fails makes the hook fail.
    suite = tmp_path / "policies" / "deny-external-ips.test.yaml"
    suite.write_text(suite.read_text().replace("allowed: false", "allowed: true", 1))
    result = run_hook("edgewarden-test", [], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr


def test_check_hook_judges_manifests_and_the_kustomization_a_file_belongs_to(
    tmp_path: Path,
) -> None:
    """The kustomization is no manifest: it stands for what it renders, while the plain
    manifest beside it, which it does not use, is judged on its own."""
    if not (shutil.which("kubectl") or cached_kubectl().is_file()):
        pytest.skip("kubectl is not installed")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "debug.yaml").write_text(NODEPORT_IN_PRODUCTION)
    (tmp_path / "k8s" / "checkout.yaml").write_text(CLUSTERIP_IN_PRODUCTION)
    (tmp_path / "k8s" / "kustomization.yaml").write_text("resources: [debug.yaml]\n")
    files = selected("edgewarden-check", ["k8s/checkout.yaml", "k8s/debug.yaml",
                                          "k8s/kustomization.yaml", "README.md"])
    assert files == ["k8s/checkout.yaml", "k8s/debug.yaml", "k8s/kustomization.yaml"]
    result = run_hook("edgewarden-check", files, tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "deny-nodeport-in-production" in out and "checkout-debug" in out
    assert "<kustomize k8s>" in out, "judged as the kustomization renders it"
    # The good file alone passes; check's own options from `args` pass through (with a
    # value that is an existing folder, which must not become a manifest).
    result = run_hook("edgewarden-check", ["k8s/checkout.yaml"], tmp_path,
                      args=["--policies", "policies", "--namespace-labels",
                            "payments=environment=production", "-o", "json"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"objects": 1' in result.stdout


def test_check_hook_leaves_policy_files_to_validate_and_passes_with_nothing_to_judge(
    tmp_path: Path,
) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    exposed = "policies/fixtures/manifests/production-exposed.yaml"
    assert (tmp_path / exposed).is_file(), "a fixture that check denies"
    result = run_hook("edgewarden-check", [exposed, "policies/deny-external-ips.yaml"],
                      tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"skipped {exposed}: a policy file" in result.stderr
    assert "nothing to judge among 2 changed file(s)" in result.stderr


def test_check_hook_options_reach_check(tmp_path: Path) -> None:
    """A NodePort in a namespace the manifests do not describe is denied only when
    --namespace-labels (passed through `args`) says the namespace is production."""
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "debug.yaml").write_text(NODEPORT_IN_PRODUCTION.split("---\n")[1])
    policies = str(REPO / "policies")
    unknown = run_hook("edgewarden-check", ["k8s/debug.yaml"], tmp_path,
                       args=["-p", policies])
    assert unknown.returncode == 2, "payments' labels are unknown: refused, not passed"
    denied = run_hook("edgewarden-check", ["k8s/debug.yaml"], tmp_path,
                      args=["-p", policies, "--namespace-labels",
                            "payments=environment=production"])
    assert denied.returncode == 1, denied.stdout + denied.stderr
    # --cluster-state's file is the option's value, not a manifest to judge.
    (tmp_path / "state.yaml").write_text(NODEPORT_IN_PRODUCTION.split("---\n")[0])
    from_state = run_hook("edgewarden-check", ["k8s/debug.yaml"], tmp_path,
                          args=["-p", policies, "--cluster-state", "state.yaml", "-o", "json"])
    assert from_state.returncode == 1, from_state.stdout + from_state.stderr
    assert '"objects": 1' in from_state.stdout


def test_diff_hook_fails_when_a_staged_policy_edit_denies_a_manifest(tmp_path: Path) -> None:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "debug.yaml").write_text(
        NODEPORT_IN_PRODUCTION.replace("production", "staging"))
    git = ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com",
           "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run([*git, *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    hook = hooks()["edgewarden-diff"]
    assert hook["pass_filenames"] is False
    files = selected("edgewarden-diff", ["policies/deny-nodeport-in-production.yaml",
                                         "policies/deny-external-ips.test.yaml", "k8s/x.yaml"])
    assert files == ["policies/deny-nodeport-in-production.yaml"]
    unchanged = run_hook("edgewarden-diff", files, tmp_path)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    policy = tmp_path / "policies" / "deny-nodeport-in-production.yaml"
    policy.write_text(policy.read_text().replace("[production, prod]",
                                                 "[production, prod, staging]"))
    tightened = run_hook("edgewarden-diff", files, tmp_path)
    assert tightened.returncode == 1, tightened.stdout + tightened.stderr
    assert "newly" in tightened.stdout and "checkout-debug" in tightened.stdout
    allowed = run_hook("edgewarden-diff", files, tmp_path,
                       args=["-f", "k8s/", "--allow-new-denials"])
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
