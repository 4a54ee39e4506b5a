"""``edgewarden pre-commit``: the check a git hook runs on the files a commit changes.

pre-commit (and lefthook, husky...) hands a hook its arguments and then the changed file
names, whatever they are. This command sorts them (webhook/offline/changes.py): manifests are
judged as they stand, a file of a Helm chart or of a kustomization stands for what the chart
or the kustomization renders, policy files are left to ``validate`` and ``test``, and other
YAML is skipped with a note. It then runs ``edgewarden check`` on that, with the options
given before the file names, so the exit codes are check's (0, 1 denied, 2 an error); a
commit that changes nothing to judge passes.
"""

from __future__ import annotations

from typing import Annotated

import typer

from webhook.cli.app import app, err_console, user_errors
from webhook.cli.examples import examples
from webhook.errors import ManifestError

EXAMPLES = examples(
    ("edgewarden pre-commit -n edgewarden --namespace-labels edgewarden= "
     "deploy/helm/edgewarden/values.yaml",
     "the chart a changed values.yaml belongs to (needs helm)"),
    ("edgewarden pre-commit -p policies README.md .github/workflows/ci.yaml",
     "nothing to judge: exit 0"),
)
DEFAULT_POLICIES = "policies"


@app.command(
    "pre-commit",
    epilog=EXAMPLES,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@user_errors
def pre_commit(
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[CHECK-OPTIONS] FILE...",
            help="Options of `edgewarden check` (-p, -n, --namespace-labels, "
            "--cluster-state, -o...), then the changed files, as pre-commit passes them.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Judge the Kubernetes manifests among changed files, as a git hook.

    A changed file of a Helm chart: what `helm template` renders from the chart.

    A file a kustomization uses: what `kubectl kustomize` renders from each overlay.

    Policy files (under --policies) are left to validate and test; other YAML is skipped.

    Exit codes are check's; a change with nothing to judge exits 0.
    """
    from webhook.offline.changes import plan

    options, files = split_arguments(arguments or [])
    policy_roots = option_values(options, "-p", "--policies") or [DEFAULT_POLICIES]
    found = plan(files, policy_roots=policy_roots)
    for skipped in found.skipped:
        err_console.print(f"note: skipped {skipped}", highlight=False, markup=False)
    if found.empty():
        err_console.print(f"note: nothing to judge among {len(files)} changed file(s)",
                          highlight=False, markup=False)
        return
    inputs = [*(arg for path in found.manifests for arg in ("-f", str(path))),
              *(arg for path in found.kustomizations for arg in ("--kustomize", str(path))),
              *(arg for path in found.charts for arg in ("--chart", str(path)))]
    run_check([*options, *inputs])


def check_options() -> dict[str, bool]:
    """check's option names -> whether each takes a value."""
    command = typer.main.get_command(app)
    check = command.commands["check"]  # type: ignore[attr-defined]
    takes_value: dict[str, bool] = {}
    for param in check.params:
        if param.param_type_name != "option":
            continue
        for name in [*param.opts, *param.secondary_opts]:
            takes_value[name] = not getattr(param, "is_flag", False)
    return takes_value


def split_arguments(arguments: list[str]) -> tuple[list[str], list[str]]:
    """check's options (each with its value) apart from the file names that follow them.

    An option's value is never taken for a file (``--cluster-state state.yaml``), and
    ``--`` ends the options. File options of check (-f, --kustomize, --chart) are refused:
    the files are what the hook is handed."""
    known = check_options()
    options: list[str] = []
    files: list[str] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if argument == "--":
            files.extend(arguments[index:])
            break
        if not argument.startswith("-") or argument == "-":
            files.append(argument)
            continue
        name, has_value, _ = argument.partition("=")
        if name in ("-f", "--filename", "-k", "--kustomize", "--chart"):
            raise ManifestError(
                f"pre-commit: {name} is not an option here: the files to judge are the ones "
                "the hook is given (narrow them with the hook's `files` pattern)")
        if name not in known:
            raise ManifestError(f"pre-commit: {name} is not an option of edgewarden check "
                                "(edgewarden check --help lists them)")
        options.append(argument)
        if known[name] and not has_value:
            if index >= len(arguments):
                    raise ManifestError(f"pre-commit: {name} needs a value")
            options.append(arguments[index])
            index += 1
    return options, files


def option_values(options: list[str], *names: str) -> list[str]:
    """The values given to any of ``names`` (``-p X``, ``--policies=X``) in ``options``."""
    values: list[str] = []
    for index, option in enumerate(options):
        name, has_value, value = option.partition("=")
        if name not in names:
            continue
        if has_value:
            values.append(value)
        elif index + 1 < len(options):
            values.append(options[index + 1])
    return values


def run_check(arguments: list[str]) -> None:
    """``edgewarden check ARGUMENTS`` in this process; its exit code is this command's."""
    command = typer.main.get_command(app)
    command.main(["check", *arguments], prog_name="edgewarden", standalone_mode=True)
