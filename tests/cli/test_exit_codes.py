"""One exit-code table for every command (docs/cli.md): 0 fine, 1 found what fails,
2 could not do the job. Plus `validate -o json`, and the hints a failing command gives."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support.cli import run
from webhook.errors import ExitCode
from webhook.offline.folders import load_manifests
from webhook.offline.reports.text import render_text
from webhook.offline.scan import check_manifests
from webhook.offline.sources import resolve_policies

REPO = Path(__file__).resolve().parents[2]
POLICIES = str(REPO / "policies")
EXPOSED = REPO / "policies" / "fixtures" / "manifests" / "production-exposed.yaml"
MISSING = "no-such-path.yaml"

BROKEN = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: broken}
spec:
  match: {kinds: [Service]}
  validations:
    - expresion: "true"
"""



@pytest.mark.parametrize("args", [
    ("validate", MISSING),
    ("test", MISSING),
    ("check", "-p", POLICIES, "-f", MISSING),
    ("check", "-p", MISSING, "-f", str(EXPOSED)),
    ("audit", "-p", POLICIES, "--cluster-state", MISSING),
    ("report", "-p", POLICIES, "--cluster-state", MISSING, "--html", "x.html"),
    ("quota", "-p", POLICIES, "--cluster-state", MISSING),
], ids=lambda args: args[0] + (" -p" if MISSING in args[:3] and args[0] == "check" else ""))
def test_a_missing_path_exits_2_from_every_command(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.exit_code == ExitCode.USAGE == 2, result.output
    assert MISSING in result.stderr and "Traceback" not in result.output


def test_validate_exits_1_for_a_broken_policy_and_2_for_a_missing_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    assert run("validate", str(broken)).exit_code == ExitCode.FOUND
    assert run("validate", str(broken), str(tmp_path / MISSING)).exit_code == ExitCode.USAGE


def test_usage_errors_exit_2_like_click_does() -> None:
    assert run("check", "--no-such-flag").exit_code == 2
    assert run("test", "-o", "sarif").exit_code == 2
    assert run("validate", "-o", "junit").exit_code == 2


def test_validate_json_lists_the_policies_it_loaded() -> None:
    result = run("validate", POLICIES, "-o", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["problems"] == []
    by_name = {p["name"]: p for p in report["policies"]}
    nodeport = by_name["deny-nodeport-in-production"]
    assert nodeport["mode"] == "Enforce" and nodeport["kinds"] == ["Service"]
    assert nodeport["blocks"] == ["validations"]
    assert nodeport["file"].endswith("deny-nodeport-in-production.yaml")
    assert by_name["internal-loadbalancer"]["mode"] == "Mutate"


def test_validate_json_lists_every_problem_with_file_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    result = run("validate", str(broken), "-o", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["policies"] == []
    (problem, *_) = report["problems"]
    assert problem["file"] == str(broken) and problem["line"] == 7
    assert problem["field"].startswith("spec.validations[0]")


def test_audit_without_a_cluster_suggests_what_audit_takes() -> None:
    result = run("audit", "-p", POLICIES, env={"KUBECONFIG": "/nonexistent/kubeconfig"})
    assert result.exit_code == 2
    assert "--cluster-state FILE" in result.stderr
    assert "--dev" not in result.stderr, "audit has no --dev"


def test_a_narrow_terminal_shows_each_path_whole_on_its_own_line(tmp_path: Path) -> None:
    deep = tmp_path / "a-rather-long-folder-name" / "charts" / "storefront" / "rendered"
    deep.mkdir(parents=True)
    manifest = deep / "production-exposed-manifests.yaml"
    manifest.write_text(EXPOSED.read_text())
    report = check_manifests(load_manifests([manifest]), resolve_policies([Path(POLICIES)]))
    screen = io.StringIO()
    render_text(report, Console(file=screen, width=80, color_system=None, soft_wrap=True))
    lines = screen.getvalue().splitlines()
    assert f"  {manifest}:9" in lines, "the file:line is one line, copyable as it is"
    assert "…" not in screen.getvalue()
    assert "  denied deny-nodeport-in-production (Enforce)" in lines
