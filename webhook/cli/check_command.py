"""``edgewarden check``: judge manifests offline, as the API server would on ``kubectl apply``.

Exit codes: 0 nothing Enforce would deny, 1 something would be denied, 2 a user error (a
file that does not parse, a bad flag, a broken policy) or too little context to judge: an
empty input, or an object in a namespace nothing defines (docs/cli.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from webhook.cli.app import app, err_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.exception_options import (
    DEFAULT_MAX_EXCEPTION_DAYS,
    ExceptionNamespaceOption,
    MaxExceptionDaysOption,
    honour,
    offline_rules,
)
from webhook.cli.options import (
    ExceptionsOption,
    FlavourOption,
    PoliciesOption,
    WithDefaultsOption,
    out_file,
    output_format,
)
from webhook.cli.output import emit, render_report
from webhook.cli.policy_source import policy_paths
from webhook.cli.progress import progress
from webhook.errors import ExitCode, ManifestError, MissingContextError

if TYPE_CHECKING:
    from webhook.offline.folders import Inputs
    from webhook.offline.manifests import Manifest
    from webhook.offline.progress import Progress

# Below this many objects a check takes a blink; a bar would only flicker.
LARGE_CHECK = 500
# Reading is worth a bar for folders (a whole repository), kustomize renders (kubectl) and
# files of this size (a thousand objects or so).
LARGE_FILE_BYTES = 512 * 1024

EXAMPLES = examples(
    ("edgewarden check -f policies/fixtures/manifests/production-shop.yaml",
     "a Namespace and its Services and Ingress, all allowed"),
    ("edgewarden check -f policies/fixtures/manifests/production-exposed.yaml",
     "exit 1: three objects would be denied"),
    ("edgewarden check -f policies/fixtures/manifests/ -o sarif --out edgewarden.sarif",
     "exit 1: for GitHub code scanning"),
    ("edgewarden check -f policies/fixtures/services/nodeport.yaml -n payments "
     "--namespace-labels payments=environment=production -o json",
     "exit 1: a namespace the input does not hold"),
    ("edgewarden check -f policies/fixtures/services/loadbalancer.yaml -n team-a "
     "--cluster-state policies/fixtures/cluster.yaml",
     "exit 1: team-a already runs its two LoadBalancers"),
    ("edgewarden check --kustomize deploy/overlays/production -o yaml",
     "what kubectl apply -k would send (needs kubectl)"),
    ("kubectl kustomize deploy/overlays/kind | edgewarden check -f -",
     "standard input (needs kubectl)"),
    ("edgewarden check --chart deploy/helm/edgewarden -n edgewarden "
     "--namespace-labels edgewarden=",
     "what helm install would send (needs helm)"),
)


@app.command(epilog=EXAMPLES)
@user_errors
def check(
    filenames: Annotated[
        list[str] | None,
        typer.Option(
            "--filename",
            "-f",
            metavar="FILE|DIR|-",
            help="Manifest file, folder (recursive; files that are not Kubernetes objects "
            "are skipped with a note) or - for stdin. Repeatable.",
        ),
    ] = None,
    kustomize: Annotated[
        list[Path] | None,
        typer.Option(
            "--kustomize",
            "-k",
            metavar="DIR",
            help="A kustomize folder: judge what `kubectl kustomize DIR` renders. Repeatable.",
        ),
    ] = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    cluster_state: Annotated[
        Path | None,
        typer.Option(
            "--cluster-state",
            help="YAML of what already runs (Namespaces, Services, Ingresses): it counts "
            "toward limits, and a manifest naming one of its objects is an UPDATE.",
        ),
    ] = None,
    namespace_labels: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace-labels",
            metavar="NS=KEY=VALUE,...",
            help="Labels of a namespace not in the input: NS=key=value,key2=value2 "
            "(repeatable; NS= for a namespace with no labels).",
        ),
    ] = None,
    assume_unlabelled: Annotated[
        bool,
        typer.Option(
            "--assume-unlabelled",
            help="Judge objects in namespaces the input does not define as if those "
            "namespaces had no labels (default: an error, exit 2).",
        ),
    ] = False,
    namespace: Annotated[
        str,
        typer.Option("--namespace", "-n", metavar="NAME",
                     help="Namespace of objects that name none (it must be defined too)."),
    ] = "default",
    output: Annotated[str, output_format("text", "json", "yaml", "junit", "sarif")] = "text",
    out: Annotated[Path | None, out_file("the report")] = None,
    exceptions: ExceptionsOption = None,
    exception_namespace: ExceptionNamespaceOption = None,
    max_exception_days: MaxExceptionDaysOption = DEFAULT_MAX_EXCEPTION_DAYS,
    with_defaults: WithDefaultsOption = False,
    charts: Annotated[
        list[Path] | None,
        typer.Option(
            "--chart",
            metavar="DIR",
            help="A Helm chart folder: judge what `helm template` renders (the release "
            "named after the chart, in --namespace). Repeatable.",
        ),
    ] = None,
) -> None:
    """Judge manifests (e.g. a rendered Helm chart) as CREATEs, in order.

    Exit 1 when anything Enforce would deny; Warn and Audit findings do not fail.

    Exit 2 when the input is empty, or puts an object in a namespace nothing defines.
    """
    # Imported here: --help and shell completion need none of it (webhook/cli/__init__.py).
    from webhook.offline.scan import check_manifests, undefined_namespaces
    from webhook.offline.sources import cluster_objects, resolve_policies, split_exceptions

    if not filenames and not kustomize and not charts:
        raise ManifestError(
            "nothing to check: give -f FILE|DIR|-, --kustomize DIR or --chart DIR")
    labels = parse_namespace_labels(namespace_labels or [])
    policy_set = resolve_policies(
        policy_paths(policies, with_defaults=with_defaults),
        internal_lb_flavour=internal_lb_flavour,
    )
    renders = [*(kustomize or []), *(charts or [])]
    with progress(enabled=_slow_to_read(filenames or [], renders)) as bar:
        inputs = _inputs(filenames or [], kustomize or [], bar)
        inputs.manifests.extend(_charts(charts or [], namespace, bar))
        existing = cluster_objects(cluster_state, bar) if cluster_state is not None else []
        # PolicyExceptions among the inputs or the state count, beside --exceptions files.
        honoured, kept = split_exceptions([*existing, *inputs.manifests], exceptions)
        others = {id(manifest) for manifest in kept}
        existing = [manifest for manifest in existing if id(manifest) in others]
        judged = [manifest for manifest in inputs.manifests if id(manifest) in others]
    for skipped in inputs.skipped:
        err_console.print(f"note: skipped {skipped}", highlight=False, markup=False)
    now = time.time()
    honoured = honour(honoured, offline_rules(exception_namespace, max_exception_days), now)
    if not inputs.manifests:
        raise MissingContextError(_nothing_read(filenames or [], kustomize or [], charts or []))
    if not assume_unlabelled:
        missing = undefined_namespaces(judged, policy_set, namespace_labels=labels,
                                       default_namespace=namespace, existing=existing)
        if missing:
            raise MissingContextError(_undefined_message(missing, cluster_state is not None))
    with progress(enabled=len(judged) >= LARGE_CHECK) as bar:
        scan = check_manifests(
            judged,
            policy_set,
            namespace_labels=labels,
            default_namespace=namespace,
            existing=existing,
            progress=bar,
            exceptions=honoured,
            now=now,
        )
        bar.begin(f"writing {output}")
        rendered = render_report(scan, output)
    for note in scan.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    from webhook.native.render import placement_note

    err_console.print(f"note: {placement_note(policy_set.policies)}", highlight=False,
                      markup=False)
    emit(scan, output, out, rendered)
    if scan.failed:
        raise typer.Exit(ExitCode.FOUND)


def _nothing_read(filenames: list[str], folders: list[Path], charts: list[Path]) -> str:
    sources = ", ".join(
        [("standard input" if name == "-" else name) for name in filenames]
        + [f"--kustomize {folder}" for folder in folders]
        + [f"--chart {chart}" for chart in charts]
    )
    return (
        f"no Kubernetes object in the input ({sources}): an empty render (a failed "
        "`helm template`, a wrong path) must not pass a check"
    )


def _undefined_message(missing: dict[str, list[Manifest]], with_state: bool) -> str:
    """One line: each namespace with the first object going there, and the ways out."""
    parts = []
    for name, manifests in sorted(missing.items()):
        first = manifests[0]
        where = f", {first.location}" if first.location is not None else ""
        more = f", and {len(manifests) - 1} more" if len(manifests) > 1 else ""
        parts.append(f"{name} ({first.kind} {first.name}{where}{more})")
    several = len(missing) > 1
    state = " nor in the cluster state" if with_state else ""
    example = min(missing)
    return (
        f"namespace{'s' if several else ''} {', '.join(parts)} {'are' if several else 'is'} "
        f"not defined in the input{state}, and policies read namespace labels: add the "
        f"Namespace manifest, --namespace-labels {example}=KEY=VALUE ({example}= for no "
        "labels), --cluster-state FILE, or --assume-unlabelled"
    )


def _slow_to_read(filenames: list[str], folders: list[Path]) -> bool:
    if folders:
        return True
    for name in filenames:
        path = Path(name)
        try:
            if path.is_dir() or path.stat().st_size >= LARGE_FILE_BYTES:
                return True
        except OSError:  # "-", or a missing file: reading it reports that
            continue
    return False


def _inputs(filenames: list[str], folders: list[Path], bar: Progress) -> Inputs:
    from webhook.offline.folders import read_inputs
    from webhook.offline.kustomize import render_kustomization

    inputs = read_inputs(filenames, progress=bar)
    for folder in folders:
        bar.begin(f"kubectl kustomize {folder}")
        inputs.manifests.extend(render_kustomization(folder))
    return inputs


def _charts(charts: list[Path], namespace: str, bar: Progress) -> list[Manifest]:
    from webhook.offline.helm import render_chart

    rendered: list[Manifest] = []
    for chart in charts:
        bar.begin(f"helm template {chart}")
        rendered.extend(render_chart(chart, namespace=namespace))
    return rendered


def parse_namespace_labels(values: list[str]) -> dict[str, dict[str, str]]:
    """``NS=k=v,k2=v2`` (repeatable) into {NS: {k: v, k2: v2}}."""
    parsed: dict[str, dict[str, str]] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise ManifestError(
                f"--namespace-labels {value!r}: expected NAMESPACE=key=value[,key=value...] "
                "(NAMESPACE= for a namespace with no labels)"
            )
        labels = parsed.setdefault(name, {})
        for pair in filter(None, rest.split(",")):
            key, sep, label = pair.partition("=")
            if not sep or not key:
                raise ManifestError(f"--namespace-labels {value!r}: {pair!r} is not key=value")
            labels[key] = label
    return parsed
