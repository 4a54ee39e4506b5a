"""Reloading the policy set while serving: on a file change (polled) or on SIGHUP.

A new set is loaded completely off the event loop and swapped in only when it is valid;
a broken one is refused with the loader's file:line: field message, counted in
``edgewarden_policy_load_errors_total``, and the last good set keeps serving (SPEC).
Polling mtimes keeps this dependency-free and works on ConfigMap volumes, whose
``..data`` symlink swap inotify-based watchers often miss.

The files are read as one snapshot: every file's mtime, size and content hash before and
after the load must agree, and a file changed within ``settle_seconds`` is read again that
much later, so a file caught mid-write is not taken (an in-place writer may still pause
longer than that: write a temporary file and rename it, docs/server.md).

Policies can also come from the cluster (``Policy`` objects, webhook.controllers): the set
that serves is always the files plus those, a file winning a name both define. A change on
either side goes through the same guards (the suites only judge files), under one lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.admission.loaded import LoadedPolicies
from webhook.admission.reload_guards import (
    ReloadRefused,
    canary,
    check_empty,
    check_removals,
    suites,
)
from webhook.admission.settings import ReloadSettings
from webhook.admission.state import ServerState
from webhook.errors import EdgewardenError
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import Policy, PolicySet

log = logging.getLogger("edgewarden.server")

Fingerprint = tuple[tuple[str, int, int], ...]
Loader = Callable[..., PolicySet]
ClusterPolicies = Callable[[], Sequence[Policy]]


def _no_cluster_policies() -> Sequence[Policy]:
    return ()


def combined(files: PolicySet, cluster: Sequence[Policy]) -> PolicySet:
    """The files' policies, then the cluster's whose names no file takes."""
    taken = {p.name for p in files.policies}
    extra = tuple(p for p in cluster if p.name not in taken)
    return PolicySet(policies=files.policies + extra, sources=files.sources)


def _yaml_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += [path] if not path.is_dir() else sorted(
            p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
        )
    return files


def policy_fingerprint(paths: Sequence[Path]) -> Fingerprint:
    """What changes when any policy file is added, removed or rewritten."""
    entries: list[tuple[str, int, int]] = []
    for file in _yaml_files(paths):
        try:
            stat = file.stat()  # follows symlinks: a ConfigMap's ..data swap shows here
        except OSError:
            continue
        entries.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class FileState:
    """One policy file as read: its stat and a hash of its bytes."""

    path: str
    mtime_ns: int
    size: int
    sha256: bytes


def file_states(paths: Sequence[Path]) -> tuple[FileState, ...]:
    """Every policy (and suite) file under ``paths``, read now."""
    states: list[FileState] = []
    for file in _yaml_files(paths):
        try:
            with file.open("rb") as handle:  # one open: the stat and the bytes of one file
                stat = os.fstat(handle.fileno())
                digest = hashlib.sha256(handle.read()).digest()
        except OSError:
            continue  # gone between the listing and the read: the next read differs
        states.append(FileState(str(file), stat.st_mtime_ns, stat.st_size, digest))
    return tuple(states)


def _fingerprint_of(states: tuple[FileState, ...]) -> Fingerprint:
    return tuple((s.path, s.mtime_ns, s.size) for s in states)


class FilesChanging(Exception):
    """The files changed while (or just before) they were read: not a snapshot to serve."""

    def __init__(self, files: Sequence[str], states: tuple[FileState, ...]) -> None:
        super().__init__(", ".join(files))
        self.files = tuple(files)
        self.fingerprint = _fingerprint_of(states)


@dataclass(frozen=True, slots=True)
class FilesRead:
    """A policy set loaded from files that did not change while it was read."""

    policies: PolicySet
    states: tuple[FileState, ...]

    @property
    def fingerprint(self) -> Fingerprint:
        return _fingerprint_of(self.states)


def read_policy_files(paths: Sequence[Path], loader: Loader, *,
                      settle_seconds: float = 0.0) -> FilesRead:
    """Load ``paths`` as one snapshot, or raise FilesChanging.

    Every file's stat and content hash are taken before and after the load; any difference
    (a file written, added or removed meanwhile) refuses the snapshot, and so does, when
    ``settle_seconds`` is set, a file modified less than that long ago (a writer between
    two writes). A load error is raised only when the files stood still: a half-written
    file is a change in progress, not a broken policy."""
    before = file_states(paths)
    if settle_seconds > 0:
        recent = time.time_ns() - int(settle_seconds * 1e9)
        fresh = [s.path for s in before if s.mtime_ns > recent]
        if fresh:
            raise FilesChanging(fresh, before)
    policies: PolicySet | None = None
    failure: Exception | None = None
    try:
        policies = loader(*paths)
    except Exception as error:  # judged below, once we know whether the files stood still
        failure = error
    after = file_states(paths)
    if after != before:
        changed = sorted({s.path for s in set(before) ^ set(after)})
        raise FilesChanging(changed, before)
    if failure is not None or policies is None:
        raise failure or EdgewardenError("the policy loader returned nothing")
    return FilesRead(policies, before)


class PolicyReloader:
    def __init__(self, paths: Sequence[str | Path], state: ServerState,
                 loader: Loader = load_policies,
                 settings: ReloadSettings | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 share: Callable[[PolicySet], PolicySet] | None = None,
                 shadow_paths: Sequence[str | Path] = ()) -> None:
        self.paths = [Path(p) for p in paths]
        # ``serve --shadow``: candidates judged beside the set, never answering (shadow.py).
        # Read in the same snapshot as the policies, their policies marked ``spec.shadow``.
        self.shadow_paths = [Path(p) for p in shadow_paths]
        # serve --except-exported: what the webhook judges of a set (webhook/native).
        self.share = share
        self.state = state
        self.loader = loader
        self.settings = settings or ReloadSettings()
        self._sleep = sleep  # the wait before a second read (tests finish a write in it)
        self._fingerprint = policy_fingerprint(self.watched)
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()
        # The cluster's Policy objects that load and passed the guards (controllers set it).
        self.cluster_policies: ClusterPolicies = _no_cluster_policies
        self._files = PolicySet(())  # the file set now serving

    def load_initial(self, *, files_may_be_empty: bool = False) -> None:
        """Load at start-up; a broken or empty set raises (the CLI prints it and exits 2).

        ``files_may_be_empty``: policies also come from the cluster, so no file policy is
        fine; nothing is installed then until the cluster's have been read (not ready)."""
        self._fingerprint = policy_fingerprint(self.watched)
        try:
            read = read_policy_files(self.watched, self._load)
        except FilesChanging:  # caught mid-write: once more, shortly after
            time.sleep(self.settings.settle_seconds)
            try:
                read = read_policy_files(self.watched, self._load)
            except FilesChanging as changing:
                raise EdgewardenError(_still_changing(changing)) from None
        self._fingerprint = read.fingerprint
        policies = read.policies
        self._files = policies
        if files_may_be_empty and not enforced_names(policies):
            return
        check_empty(enforced_names(policies), self.settings)
        self.state.install(self._build(policies))

    @property
    def watched(self) -> list[Path]:
        """Every path read: the policies, then the --shadow ones."""
        return [*self.paths, *self.shadow_paths]

    def _load(self, *_paths: Path) -> PolicySet:
        """The policy files, and the --shadow files' policies marked ``spec.shadow`` (first,
        so a candidate there wins over a ``spec.shadow: true`` policy of the same name)."""
        files = self.loader(*self.paths)
        if not self.shadow_paths:
            return files
        shadow = self.loader(*self.shadow_paths)
        marked = tuple(dataclasses.replace(p, shadow=True) for p in shadow.policies)
        return PolicySet(marked + files.policies, sources=files.sources + shadow.sources,
                         warnings=files.warnings + shadow.warnings)

    def _build(self, policies: PolicySet) -> LoadedPolicies:
        state = self.state
        if self.share is not None:
            policies = self.share(policies)
        return LoadedPolicies.build(policies, dry_run=state.dry_run, budget=state.evaluation)

    def vet(self, policies: PolicySet, *, run_suites: bool = True,
            acknowledged: frozenset[str] = frozenset(),
            origin: Callable[[str], str] = lambda name: "") -> LoadedPolicies:
        """Build the new set and put it through every guard; ReloadRefused when it fails one.

        ``acknowledged``: serving policies whose absence is meant (deleted Policy objects);
        ``origin`` says where a lost policy came from, for the refusal."""
        serving = self.state.policies
        names = enforced_names(policies)  # a candidate (spec.shadow) serves nothing
        check_empty(names, self.settings)
        check_removals(serving.names if serving is not None else None, names, self.settings,
                       acknowledged=acknowledged, origin=origin)
        loaded = self._build(policies)
        if self.settings.canary:
            state = self.state
            sample = state.cluster.sample(self.settings.canary_sample)
            canary(loaded, serving, sample, state.cluster, self.settings,
                   exceptions=state.exceptions, judged_at=state.clock())
        if run_suites and self.settings.run_suites:
            suites(self.paths)
        return loaded

    @property
    def file_policy_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self._files.policies)

    async def install_cluster(self, why: str, cluster: Sequence[Policy]) -> None:
        """Serve the files with these cluster policies, or raise why not (ReloadRefused, or
        another EdgewardenError): the serving set then stays, and the refusal is recorded.

        A policy the cluster served before and does not pass now was removed on purpose:
        the controllers drop one only when its Policy object is deleted (one that no longer
        loads keeps its last good generation)."""
        async with self._lock:
            try:
                policies = combined(self._files, cluster)
                serving = self.state.policies
                # A Policy object set to spec.shadow: true leaves the serving set on purpose
                # too, as a deleted one does (docs/shadow.md).
                deleted = frozenset() if serving is None else (
                    serving.names - self.file_policy_names
                    - {p.name for p in cluster if not p.shadow})
                loaded = await asyncio.to_thread(self.vet, policies, run_suites=False,
                                                 acknowledged=deleted)
            except ReloadRefused as error:
                self._refuse(why, error.reason, str(error))
                raise
            except EdgewardenError as error:
                self._refuse(why, "invalid", str(error))
                raise
            self.state.install(loaded)
            self.state.metrics.policy_reloads.inc()
            log.info("policies reloaded (%s)", why)

    async def reload(self, why: str) -> bool:
        """Load the files again; True when a new set now serves."""
        async with self._lock:  # a SIGHUP during a poll-triggered load waits its turn
            self._fingerprint = policy_fingerprint(self.watched)
            try:
                read = await self._read_files()
                files = read.policies
                policies = combined(files, self.cluster_policies())
                loaded = await asyncio.to_thread(self.vet, policies,
                                                 origin=self._origins(read.states))
            except ReloadRefused as error:
                self._refuse(why, error.reason, str(error))
                return False
            except EdgewardenError as error:
                self._refuse(why, "invalid", str(error))
                return False
            except Exception as error:  # a loader bug must not take the server down
                self._refuse(why, "invalid", f"{type(error).__name__}: {error}")
                return False
            self.state.install(loaded)
            self._files = files
            self.state.metrics.policy_reloads.inc()
            log.info("policies reloaded (%s)", why)
            return True

    async def _read_files(self) -> FilesRead:
        """The files as one snapshot that stood still while read; a file written to during
        the read, or within ``settle_seconds`` before it, is read once more that much later.
        Still changing then: refused ("unsettled"), and the next poll tries again."""
        settle = self.settings.settle_seconds
        try:
            read = await asyncio.to_thread(read_policy_files, self.watched, self._load,
                                           settle_seconds=settle)
        except FilesChanging as changing:
            log.info("policy files are being written (%s); reading them again in %.1f s",
                     changing, settle)
            await self._sleep(settle)
            try:
                read = await asyncio.to_thread(read_policy_files, self.watched, self._load)
            except FilesChanging as still:
                self._fingerprint = still.fingerprint  # what changes after it polls anew
                raise ReloadRefused("unsettled", _still_changing(still)) from None
        self._fingerprint = read.fingerprint
        return read

    def _origins(self, states: tuple[FileState, ...]) -> Callable[[str], str]:
        """Where each serving file policy came from, and what that file holds now."""
        files = {p.name: p.source.file for p in self._files.policies}
        sizes = {s.path: s.size for s in states}

        def origin(name: str) -> str:
            file = files.get(name)
            if file is None:
                return ""
            size = sizes.get(file)
            now = "now gone" if size is None else "now empty" if size == 0 else "now without it"
            return f" (was in {file}, {now})"

        return origin

    def _refuse(self, why: str, reason: str, message: str) -> None:
        self.state.refused(reason, message)
        serving = len(self.state.policies.names) if self.state.policies else 0
        log.error("policy reload (%s) refused (%s), the previous %d policies keep serving:\n%s",
                  why, reason, serving, message)

    async def watch(self, interval: float = 2.0) -> None:
        """Poll for changes forever; cancel the task to stop."""
        while True:
            await asyncio.sleep(interval)
            if policy_fingerprint(self.watched) != self._fingerprint:
                await self.reload("files changed")

    def on_sighup(self) -> None:
        """Signal handler (runs on the loop): schedule a reload."""
        task = asyncio.get_running_loop().create_task(self.reload("SIGHUP"))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def enforced_names(policies: PolicySet) -> frozenset[str]:
    """The names of the policies that would serve (candidates, ``spec.shadow``, aside)."""
    return frozenset(p.name for p in policies.policies if not p.shadow)


def _still_changing(changing: FilesChanging) -> str:
    return (f"policy files kept changing while read ({changing}); the set is read again "
            "when they stand still: write a temporary file and rename it into place")
