"""The manners users expect of a command line: a version, shell completion, -h, NO_COLOR,
and -o meaning the output format everywhere."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import webhook
import webhook.cli  # registers every command on the app
from tests.support.cli import run
from webhook.cli.app import app

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
EXPOSED = POLICIES / "fixtures" / "manifests" / "production-exposed.yaml"
STATE = REPO / "examples" / "cluster-state.yaml"
EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]
SCRIPT = Path(sys.executable).parent / "edgewarden"  # the console script pip installed



def run_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command as the installed script runs it (main() applies NO_COLOR to Typer too)."""
    return subprocess.run([*EDGEWARDEN, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=REPO, stdin=subprocess.DEVNULL)


def test_version_flag_and_command_agree_with_the_installed_distribution() -> None:
    installed = importlib.metadata.version("edgewarden")
    assert installed == webhook.__version__
    assert run("--version").stdout == f"edgewarden {installed}\n"
    assert run("version").stdout == f"edgewarden {installed}\n"
    as_json = json.loads(run("version", "-o", "json").stdout)
    assert as_json["version"] == installed and as_json["name"] == "edgewarden"
    assert yaml.safe_load(run("version", "-o", "yaml").stdout) == as_json


def test_shell_completion_script_is_shown() -> None:
    """Typer detects the shell (shellingham); under pytest it finds bash."""
    result = CliRunner().invoke(app, ["--show-completion"], env={"SHELL": "/bin/bash"})
    assert result.exit_code == 0, result.output
    assert "complete -o default -F _edgewarden_completion edgewarden" in result.stdout


def test_completion_offers_commands_and_output_formats() -> None:
    """What the shell gets back on TAB: the completion script calls the program like this."""
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_EDGEWARDEN_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        env.pop("NO_COLOR", None)
        result = subprocess.run([str(SCRIPT)], capture_output=True,
                                text=True, env=env, timeout=60, check=False)
        return result.stdout.split()

    assert {"check", "audit", "serve", "webhook-config", "version"} == set(
        complete("edgewarden ")) - {"certs", "policies", "quota", "report", "test", "validate",
                                    "diff", "replay", "export", "uninstall", "pre-commit"}
    assert set(complete("edgewarden check -o ")) == {"text", "json", "yaml", "junit", "sarif"}


def test_short_help_flag() -> None:
    assert "Usage" in run("-h").stdout
    assert "--kustomize" in run("check", "-h").stdout


def _colour_test_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**env, "COLUMNS": "200", **extra}


COLOURED_SCREENS = [
    ("validate", str(POLICIES)),
    ("check", "-f", str(EXPOSED), "--policies", str(POLICIES)),
    ("audit", "--cluster-state", str(STATE), "--policies", str(POLICIES)),
    ("check", "--help"),
    ("check", "-o", "nonsense", "-f", str(EXPOSED)),
    ("check", "-f", "missing.yaml", "--policies", str(POLICIES)),
]


@pytest.mark.parametrize("args", COLOURED_SCREENS, ids=lambda a: " ".join(a)[:40])
def test_no_color_means_no_escape_codes_even_on_a_forced_terminal(args: tuple[str, ...]) -> None:
    coloured = run_process(*args, env=_colour_test_environment(FORCE_COLOR="1"))
    assert "\x1b[" in coloured.stdout + coloured.stderr, "the screen is coloured at all"
    plain = run_process(*args, env=_colour_test_environment(FORCE_COLOR="1", NO_COLOR="1"))
    assert plain.returncode == coloured.returncode
    assert "\x1b[" not in plain.stdout + plain.stderr, plain.stdout + plain.stderr


def test_o_is_the_format_everywhere_and_yaml_is_the_json_document() -> None:
    for command in (["check", "-f", str(EXPOSED)], ["audit", "--cluster-state", str(STATE)]):
        as_json = run(*command, "--policies", str(POLICIES), "-o", "json")
        as_yaml = run(*command, "--policies", str(POLICIES), "-o", "yaml")
        assert as_json.exit_code == as_yaml.exit_code
        from_yaml, from_json = yaml.safe_load(as_yaml.stdout), json.loads(as_json.stdout)
        # Each run is judged at its own moment (PolicyExceptions expire): that alone differs.
        assert from_yaml.pop("judgedAt") and from_json.pop("judgedAt")
        assert from_yaml == from_json


def test_quota_as_json_is_a_list_of_the_yaml_documents() -> None:
    as_yaml = run("quota", "--cluster-state", str(STATE), "--policies", str(POLICIES))
    as_json = run("quota", "--cluster-state", str(STATE), "--policies", str(POLICIES),
                  "-o", "json")
    documents = [d for d in yaml.safe_load_all(as_yaml.stdout) if d]
    assert documents and all(d["kind"] == "ResourceQuota" for d in documents)
    assert json.loads(as_json.stdout) == {"apiVersion": "v1", "kind": "List", "items": documents}


def test_quota_writes_its_file_with_out(tmp_path: Path) -> None:
    out = tmp_path / "quota.yaml"
    result = run("quota", "--cluster-state", str(STATE), "--policies", str(POLICIES),
                 "--out", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert f"wrote {out}" in result.stderr
    assert {d["kind"] for d in yaml.safe_load_all(out.read_text()) if d} == {"ResourceQuota"}


def test_certs_generate_prints_files_and_bundle_as_json(tmp_path: Path) -> None:
    result = run("certs", "generate", "--out", str(tmp_path / "tls"), "-o", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["service"] == "edgewarden.edgewarden.svc"
    assert Path(printed["files"]["tls.crt"]).is_file()
    text = run("certs", "generate", "--out", str(tmp_path / "tls2"))
    assert len(text.stdout.split()) == 1, "-o text keeps the caBundle alone on stdout"


def test_an_unknown_format_names_the_choices() -> None:
    result = run("audit", "--cluster-state", str(STATE), "-o", "xml")
    assert result.exit_code == 2
    assert "policyreport" in result.output and "yaml" in result.output


def test_the_command_line_starts_without_the_engine_or_the_server() -> None:
    """--help, --version and every completion TAB start the program: they must not wait
    for the CEL runtime, the Kubernetes client or the web stack to load."""
    probe = ("import sys, webhook.cli; print(sorted(m for m in ('cel', 'jsonschema', "
             "'kubernetes', 'uvicorn', 'fastapi', 'webhook.policy.engine.evaluation') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_flavour_names_of_the_command_line_are_the_engines() -> None:
    from webhook.cli.options import INTERNAL_LB_FLAVOURS as named
    from webhook.policy.model.policy import INTERNAL_LB_FLAVOURS

    assert set(named) == set(INTERNAL_LB_FLAVOURS)
