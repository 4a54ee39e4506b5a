"""The default policies ship in the package: used (and said to be used) where there is no
./policies, identical to policies/, and exported with their suites and fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support.cli import run
from webhook.cli.policy_source import packaged_policies

REPO = Path(__file__).resolve().parents[2]
EXPOSED = REPO / "policies" / "fixtures" / "manifests" / "production-exposed.yaml"
STATE = REPO / "examples" / "cluster-state.yaml"
NOTE = "using the packaged default policies"



@pytest.fixture()
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ./policies."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_packaged_set_is_policies_with_suites_and_fixtures() -> None:
    packaged = tree(packaged_policies())
    assert packaged == tree(REPO / "policies")
    assert "fixtures/cluster.yaml" in packaged and "defaults.test.yaml" in packaged


@pytest.mark.parametrize("command", [
    ["check", "-f", str(EXPOSED), "-o", "json"],
    ["audit", "--cluster-state", str(STATE), "-o", "json"],
    ["quota", "--cluster-state", str(STATE)],
    ["report", "--html", "page.html", "--cluster-state", str(STATE)],
    ["webhook-config"],
    ["validate"],
    ["test"],
], ids=lambda c: c[0])
def test_commands_fall_back_to_the_packaged_set_and_say_so(
    elsewhere: Path, command: list[str]
) -> None:
    result = run(*command)
    assert result.exit_code in (0, 1), result.output
    assert NOTE in result.stderr
    assert str(packaged_policies()) in result.stderr


def test_check_with_the_packaged_set_judges_as_the_repository_set(elsewhere: Path) -> None:
    packaged = run("check", "-f", str(EXPOSED), "-o", "json")
    local = run("check", "-f", str(EXPOSED), "-o", "json", "--policies", str(REPO / "policies"))
    assert packaged.exit_code == local.exit_code == 1
    assert json.loads(packaged.stdout)["results"] == json.loads(local.stdout)["results"]


def test_a_local_policies_folder_wins_without_a_note(elsewhere: Path) -> None:
    (elsewhere / "policies").mkdir()
    (elsewhere / "policies" / "only.yaml").write_text(yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
        "metadata": {"name": "only-one"},
        "spec": {"mode": "Warn", "match": {"kinds": ["Service"]},
                 "validations": [{"expression": "true"}]},
    }))
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "only-one" in result.stdout and "1 policies valid" in result.stdout
    assert NOTE not in result.stderr


def test_export_writes_a_folder_whose_suites_pass(elsewhere: Path) -> None:
    result = run("policies", "export", "mine")
    assert result.exit_code == 0, result.output
    assert tree(elsewhere / "mine") == tree(packaged_policies())
    tested = run("test", "mine")
    assert tested.exit_code == 0, tested.output
    assert " 0 failed" in tested.stdout


def test_export_never_overwrites_without_force(elsewhere: Path) -> None:
    assert run("policies", "export", "mine").exit_code == 0
    edited = elsewhere / "mine" / "deny-external-ips.yaml"
    edited.write_text("# mine now\n")
    refused = run("policies", "export", "mine")
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert edited.read_text() == "# mine now\n"
    assert run("policies", "export", "mine", "--force").exit_code == 0
    assert edited.read_bytes() == (packaged_policies() / "deny-external-ips.yaml").read_bytes()


def test_export_onto_a_file_is_a_user_error(elsewhere: Path) -> None:
    (elsewhere / "taken").write_text("x")
    result = run("policies", "export", "taken")
    assert result.exit_code == 2 and "not a folder" in result.stderr
