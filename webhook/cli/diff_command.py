"""``edgewarden diff``: what a policy change newly denies, allows, warns or patches.

Two policy sets, ``diff OLD NEW`` (two files or folders) or ``diff --base REF`` (the
policies as commit REF has them against the working tree's), judge the same input:
manifests (``-f``/``-k``, as ``check`` judges them, over ``--cluster-state`` or ``--live``
when given), a cluster (``--cluster-state`` or ``--live`` alone, as ``audit`` judges it), or
an API-server audit log (``--audit-log``, as ``replay`` judges it).

Exit codes: 0 nothing admitted before is denied now, 1 something is (unless
``--allow-new-denials``), 2 a user error (a bad flag, file, ref or policy).
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from webhook.cli.app import app, console, make_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.options import (
    ExceptionsOption,
    FlavourOption,
    PoliciesOption,
    out_file,
    output_format,
)
from webhook.cli.output import deliver
from webhook.cli.policy_source import LOCAL_POLICIES, policy_paths
from webhook.cli.progress import progress
from webhook.cli.replay_command import WebhookOption, webhook_names
from webhook.errors import ManifestError, PolicyLoadError, PolicyProblem

if TYPE_CHECKING:
    from webhook.offline.diff import DiffReport
    from webhook.offline.manifests import Manifest
    from webhook.offline.progress import Progress
    from webhook.policy.model.policy import PolicySet

# Terminal-free output fits an 80-column CI log or e-mail.
TEXT_WIDTH = 80
DEFAULT_MAX_ROWS = 50
FIXTURES = "policies/fixtures/manifests/"

EXAMPLES = examples(
    ("edgewarden diff policies/ policies/ --cluster-state examples/cluster-state.yaml",
     "two folders over a cluster dump (the same set: no change)"),
    ("edgewarden diff policies/ policies/ --audit-log tests/audit/fixtures/apiserver-audit.log "
     "-o markdown",
     "over the requests of an API-server audit log"),
    (f"edgewarden diff --base HEAD~1 -f {FIXTURES}",
     "what the last commit's policy changes do to the fixtures (needs a git checkout)"),
    (f"edgewarden diff --base origin/main -f {FIXTURES} -o markdown --out diff.md",
     "a pull-request comment (needs a git checkout)"),
    ("edgewarden diff --base origin/main --live", "over what runs now (needs a cluster)"),
)


@app.command(epilog=EXAMPLES)
@user_errors
def diff(
    sets: Annotated[
        list[Path] | None,
        typer.Argument(metavar="OLD NEW", help="The old and the new policy file or folder "
                       "(or use --base)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="A git ref (origin/main, HEAD~1): its policies are the old "
                     "set, the working tree's (--policies) the new."),
    ] = None,
    policies: PoliciesOption = None,
    filenames: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="Manifest file, folder or - (repeatable), "
                     "judged as check judges them."),
    ] = None,
    kustomize: Annotated[
        list[Path] | None,
        typer.Option("--kustomize", "-k", help="A kustomize folder (repeatable; needs kubectl)."),
    ] = None,
    cluster_state: Annotated[
        Path | None,
        typer.Option("--cluster-state", help="YAML of what runs: judged as audit judges it, or "
                     "what exists before the manifests or the audit log."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="The live cluster (kubeconfig) instead of --cluster-state."),
    ] = False,
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", help="An API-server audit log: its requests replayed "
                     "under both sets (see edgewarden replay)."),
    ] = None,
    namespace_labels: Annotated[
        list[str] | None,
        typer.Option("--namespace-labels", help="Labels of a namespace not in the input: "
                     "NS=key=value,key2=value2 (repeatable)."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", show_default=False,
                     help="Namespace of manifests that name none (default: default); with "
                     "--audit-log, judge only requests in it (default: every namespace)."),
    ] = None,
    webhooks: WebhookOption = None,
    internal_lb_flavour: FlavourOption = None,
    exceptions: ExceptionsOption = None,
    output: Annotated[str, output_format("text", "json", "markdown")] = "text",
    out: Annotated[Path | None, out_file("the report")] = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Changes listed in text and Markdown "
                          "(JSON lists all)."),
    ] = DEFAULT_MAX_ROWS,
    allow_new_denials: Annotated[
        bool, typer.Option("--allow-new-denials", help="Exit 0 even when the new set denies "
                           "what the old one admits."),
    ] = False,
) -> None:
    """Compare two policy sets over the same input: what each change newly denies, allows,
    warns or patches. Exit 1 when the new set denies something the old one admits."""
    inputs = bool(filenames or kustomize)
    if sum((inputs, audit_log is not None)) > 1:
        raise ManifestError("give either manifests (-f/-k) or --audit-log, not both")
    if live and cluster_state is not None:
        raise ManifestError("give --cluster-state or --live, not both")
    if not (inputs or audit_log is not None or cluster_state is not None or live):
        raise ManifestError("nothing to judge: give -f FILE|DIR, -k DIR, --cluster-state FILE, "
                            "--live or --audit-log FILE")
    with tempfile.TemporaryDirectory(prefix="edgewarden-diff-") as scratch:
        old, new, report = _policy_sets(sets, base, policies, internal_lb_flavour,
                                        Path(scratch))
        now = time.time()
        if audit_log is not None:
            _over_log(report, old, new, audit_log, cluster_state, live, webhooks, namespace,
                      exceptions)
        elif inputs:
            _over_manifests(report, old, new, filenames or [], kustomize or [], cluster_state,
                            live, namespace_labels or [], namespace or "default", exceptions,
                            now)
        else:
            _over_cluster(report, old, new, cluster_state, exceptions, now)
    _emit(report, output, out, max_rows)
    if report.failed and not allow_new_denials:
        raise typer.Exit(1)


def _enforced(policies: PolicySet, side: str, report: DiffReport) -> PolicySet:
    from webhook.policy.model.policy import PolicySet

    shadow = sorted(p.name for p in policies.policies if p.shadow)
    if not shadow:
        return policies
    report.notes.append(f"shadow policies of the {side} set are not enforced and are left "
                        f"out: {', '.join(shadow)}")
    return PolicySet(tuple(p for p in policies.policies if not p.shadow), policies.sources,
                     policies.warnings)


def _policy_sets(
    sets: list[Path] | None, base: str | None, policies: list[Path] | None,
    flavour: str | None, scratch: Path,
) -> tuple[PolicySet, PolicySet, DiffReport]:
    from webhook.offline.diff import DiffReport, policy_delta
    from webhook.offline.git_base import policies_at
    from webhook.offline.sources import resolve_policies
    from webhook.policy.load.loader import load_policies

    if sets:
        if base is not None or policies:
            raise ManifestError("give OLD NEW, or --base REF with --policies; not both")
        if len(sets) != 2:
            raise ManifestError(f"diff takes two policy sets, OLD and NEW; got {len(sets)}")
        old_paths, new_paths = [sets[0]], [sets[1]]
        old_label, new_label = str(sets[0]), str(sets[1])
    elif base is not None:
        new_paths = list(policies) if policies else [LOCAL_POLICIES]
        if not policies and not LOCAL_POLICIES.exists():
            raise ManifestError("--base compares the policies of the working tree with REF's: "
                                "there is no ./policies here, give --policies DIR")
        found = policies_at(base, new_paths, scratch)
        old_paths = found.paths
        shown = ", ".join(str(p) for p in new_paths)
        old_label, new_label = f"{base}:{shown}", f"{shown} (working tree)"
    else:
        raise ManifestError("give the two policy sets: OLD NEW, or --base REF")
    if not sets:
        new_paths = policy_paths(new_paths)
    # An empty old side (the folder is new at REF) is a set of no policies: all is added.
    try:
        old = (resolve_policies(old_paths, internal_lb_flavour=flavour) if old_paths
               else load_policies(internal_lb_flavour=flavour))
    except PolicyLoadError as error:
        if base is None:
            raise
        # Name the files as the commit does (REF:policies/x.yaml), not the scratch folder.
        prefix = str(scratch) + "/"
        raise PolicyLoadError([
            PolicyProblem(f"{base}:{p.file.removeprefix(prefix)}", p.line, p.field, p.message)
            for p in error.problems]) from None
    new = resolve_policies(new_paths, internal_lb_flavour=flavour)
    report = DiffReport(old_label, new_label, "")
    report.policies = policy_delta(old_paths, new_paths)
    # A shadow policy (spec.shadow: true) is judged by the server but never enforced: it is
    # no part of either side's verdicts, so a promotion (shadow: false) shows what the
    # shadow period saw as newly denied, warned or patched.
    old, new = _enforced(old, "old", report), _enforced(new, "new", report)
    if base is not None and not old_paths:
        report.notes.append(f"no policies at {base}: every policy is new")
    return old, new, report


def _over_manifests(
    report: DiffReport, old: PolicySet, new: PolicySet, filenames: list[str],
    folders: list[Path], cluster_state: Path | None, live: bool, labels: list[str],
    namespace: str, exception_paths: list[Path] | None, now: float,
) -> None:
    from webhook.cli.check_command import parse_namespace_labels
    from webhook.offline.diff import diff_scans
    from webhook.offline.scan import check_manifests
    from webhook.offline.sources import split_exceptions

    report.source = "manifests"
    parsed = parse_namespace_labels(labels)
    with progress() as bar:
        manifests, skipped = _read(filenames, folders, bar)
        existing = _state(cluster_state, live, old, new, bar) if cluster_state or live else []
        honoured, kept = split_exceptions([*existing, *manifests], exception_paths)
        others = {id(m) for m in kept}
        existing = [m for m in existing if id(m) in others]
        judged = [m for m in manifests if id(m) in others]
        scans = [check_manifests(judged, policy_set, namespace_labels=parsed,
                                 default_namespace=namespace, existing=existing,
                                 progress=bar, exceptions=honoured, now=now)
                 for policy_set in (old, new)]
    report.notes += [f"skipped {s}" for s in skipped]
    diff_scans(scans[0], scans[1], report)


def _over_cluster(
    report: DiffReport, old: PolicySet, new: PolicySet, cluster_state: Path | None,
    exception_paths: list[Path] | None, now: float,
) -> None:
    from webhook.offline.diff import diff_scans
    from webhook.offline.scan import audit_objects
    from webhook.offline.sources import split_exceptions

    report.source = "cluster"
    with progress() as bar:
        found = _state(cluster_state, cluster_state is None, old, new, bar)
        honoured, objects = split_exceptions(found, exception_paths)
        scans = [audit_objects(objects, policy_set, bar, exceptions=honoured, now=now)
                 for policy_set in (old, new)]
    diff_scans(scans[0], scans[1], report)


def _over_log(
    report: DiffReport, old: PolicySet, new: PolicySet, audit_log: str,
    cluster_state: Path | None, live: bool, webhooks: list[str] | None,
    namespace: str | None, exception_paths: list[Path] | None,
) -> None:
    from webhook.offline.apiserver_log import read_audit_log
    from webhook.offline.diff import diff_replays
    from webhook.offline.replay import ReplayOptions, replay
    from webhook.offline.sources import split_exceptions

    report.source = "audit log"
    with progress() as bar:
        seed = _state(cluster_state, live, old, new, bar) if cluster_state or live else []
    honoured, seed = split_exceptions(seed, exception_paths)
    log = read_audit_log(audit_log)
    options = ReplayOptions(webhook_names(webhooks),
                            frozenset({namespace}) if namespace is not None else None)
    before, after = replay(log, [old, new], options, seed=seed, exceptions=honoured)
    diff_replays(before, after, report)


def _read(filenames: list[str], folders: list[Path], bar: Progress) -> tuple[list[Manifest],
                                                                            list[str]]:
    from webhook.offline.folders import read_inputs
    from webhook.offline.kustomize import render_kustomization

    inputs = read_inputs(filenames, progress=bar)
    for folder in folders:
        bar.begin(f"kubectl kustomize {folder}")
        inputs.manifests.extend(render_kustomization(folder))
    return inputs.manifests, [str(s) for s in inputs.skipped]


def _state(cluster_state: Path | None, live: bool, old: PolicySet, new: PolicySet,
           bar: Progress) -> list[Manifest]:
    from webhook.offline.sources import cluster_objects
    from webhook.policy.model.kinds import merge

    kinds = merge((*old.kinds(), *new.kinds()))
    return cluster_objects(None if live else cluster_state, bar, kinds)


def _emit(report: DiffReport, output: str, out: Path | None, max_rows: int) -> None:
    from webhook.offline.reports.diff import render_json, render_markdown, render_text

    if output == "json":
        deliver(render_json(report), out, report.summary())
    elif output == "markdown":
        deliver(render_markdown(report, max_rows), out, report.summary())
    elif out is None and console.is_terminal:
        render_text(report, console, max_rows)
    else:
        buffer = io.StringIO()
        # soft_wrap off: the summary and notes wrap at 80 columns like the table.
        render_text(report, make_console(file=buffer, width=TEXT_WIDTH, color_system=None,
                                         soft_wrap=False), max_rows)
        deliver(buffer.getvalue(), out, report.summary())
