"""Reloading the policy set while serving: on a file change (polled) or on SIGHUP.

A new set is loaded completely off the event loop and swapped in only when it is valid;
a broken one is refused with the loader's file:line: field message, counted in
``edgewarden_policy_load_errors_total``, and the last good set keeps serving (SPEC).
Polling mtimes keeps this dependency-free and works on ConfigMap volumes, whose
``..data`` symlink swap inotify-based watchers often miss.

Policies can also come from the cluster (``Policy`` objects, webhook.controllers): the set
that serves is always the files plus those, a file winning a name both define. A change on
either side goes through the same guards (the suites only judge files), under one lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from webhook.admission.reload_guards import ReloadRefused, canary, check_size, suites
from webhook.admission.settings import ReloadSettings
from webhook.admission.state import LoadedPolicies, ServerState
from webhook.errors import EdgewardenError
from webhook.policy.loader import load_policies
from webhook.policy.model import Policy, PolicySet

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


def policy_fingerprint(paths: Sequence[Path]) -> Fingerprint:
    """What changes when any policy file is added, removed or rewritten."""
    entries: list[tuple[str, int, int]] = []
    for path in paths:
        files = [path] if not path.is_dir() else sorted(
            p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
        )
        for file in files:
            try:
                stat = file.stat()  # follows symlinks: a ConfigMap's ..data swap shows here
            except OSError:
                continue
            entries.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class PolicyReloader:
    def __init__(self, paths: Sequence[str | Path], state: ServerState,
                 loader: Loader = load_policies,
                 settings: ReloadSettings | None = None,
                 share: Callable[[PolicySet], PolicySet] | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        # serve --except-exported: what the webhook judges of a set (webhook/native).
        self.share = share
        self.state = state
        self.loader = loader
        self.settings = settings or ReloadSettings()
        self._fingerprint = policy_fingerprint(self.paths)
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Any]] = set()
        # The cluster's Policy objects that load and passed the guards (controllers set it).
        self.cluster_policies: ClusterPolicies = _no_cluster_policies
        self._files = PolicySet(())  # the file set now serving

    def load_initial(self, *, files_may_be_empty: bool = False) -> None:
        """Load at start-up; a broken or empty set raises (the CLI prints it and exits 2).

        ``files_may_be_empty``: policies also come from the cluster, so no file policy is
        fine; nothing is installed then until the cluster's have been read (not ready)."""
        self._fingerprint = policy_fingerprint(self.paths)
        policies = self.loader(*self.paths)
        self._files = policies
        if files_may_be_empty and not policies.policies:
            return
        check_size(None, frozenset(p.name for p in policies.policies), self.settings)
        self.state.install(self._build(policies))

    def _build(self, policies: PolicySet) -> LoadedPolicies:
        state = self.state
        if self.share is not None:
            policies = self.share(policies)
        return LoadedPolicies.build(policies, dry_run=state.dry_run, limits=state.evaluation)

    def vet(self, policies: PolicySet, *, run_suites: bool = True) -> LoadedPolicies:
        """Build the new set and put it through every guard; ReloadRefused when it fails one."""
        serving = self.state.policies
        check_size(serving.names if serving is not None else None,
                   frozenset(p.name for p in policies.policies), self.settings)
        loaded = self._build(policies)
        if self.settings.canary:
            sample = self.state.cluster.sample(self.settings.canary_sample)
            canary(loaded, serving, sample, self.state.cluster)
        if run_suites and self.settings.run_suites:
            suites(self.paths)
        return loaded

    @property
    def file_policy_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self._files.policies)

    async def install_cluster(self, why: str, cluster: Sequence[Policy]) -> None:
        """Serve the files with these cluster policies, or raise why not (ReloadRefused, or
        another EdgewardenError): the serving set then stays, and the refusal is recorded."""
        async with self._lock:
            try:
                policies = combined(self._files, cluster)
                loaded = await asyncio.to_thread(self.vet, policies, run_suites=False)
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
            self._fingerprint = policy_fingerprint(self.paths)
            try:
                files = await asyncio.to_thread(self.loader, *self.paths)
                policies = combined(files, self.cluster_policies())
                loaded = await asyncio.to_thread(self.vet, policies)
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

    def _refuse(self, why: str, reason: str, message: str) -> None:
        self.state.refused(reason, message)
        serving = len(self.state.policies.names) if self.state.policies else 0
        log.error("policy reload (%s) refused (%s), the previous %d policies keep serving:\n%s",
                  why, reason, serving, message)

    async def watch(self, interval: float = 2.0) -> None:
        """Poll for changes forever; cancel the task to stop."""
        while True:
            await asyncio.sleep(interval)
            if policy_fingerprint(self.paths) != self._fingerprint:
                await self.reload("files changed")

    def on_sighup(self) -> None:
        """Signal handler (runs on the loop): schedule a reload."""
        task = asyncio.get_running_loop().create_task(self.reload("SIGHUP"))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
