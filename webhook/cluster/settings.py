"""The cluster part of ``serve``'s settings: where the objects come from and how current the
watch cache must be, and how long a reserved place is held."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a real cluster is read: the client is slow to import
    from webhook.cluster.kube_informer import InformerSettings


@dataclass(frozen=True)
class CacheSettings:
    # A cluster-state file (kubectl get -o yaml) instead of the API; None: the API.
    state_file: Path | None = None
    # A watch silent this long is cut and listed again; a cache with no event, bookmark or
    # list for longer than max_age_seconds makes /readyz fail and is not answered from (the
    # policies reading it fail by their failurePolicy). 30 s is well under what the API
    # server waits for a webhook (timeoutSeconds x its retries).
    watch_stall_seconds: float = 25.0
    max_age_seconds: float = 30.0

    @property
    def stale_after(self) -> float:
        return self.max_age_seconds or math.inf

    def informer(self) -> InformerSettings:
        """The watch settings of every informer (the cache and the Policy objects' watch)."""
        from webhook.cluster.kube_informer import InformerSettings

        stall = self.watch_stall_seconds
        return InformerSettings(
            # The API server sends a bookmark 2 s before a watch's timeout, so a quiet
            # healthy watch shows progress at least this often: well inside the stall limit.
            watch_timeout_seconds=max(5, min(240, int(stall * 0.7))),
            stall_seconds=stall,
            stale_after_seconds=self.stale_after,
        )


@dataclass(frozen=True)
class ReservationSettings:
    # The API server's timeout for calling us (the webhook configuration's timeoutSeconds;
    # the longest of the validating webhooks that run beside ours). A reserved place whose
    # object the cache has not shown this long plus the margin after it was reserved is
    # freed once the cache is current past that moment.
    webhook_timeout_seconds: float = 5.0
    margin_seconds: float = 5.0
    max_age_seconds: float = 300.0  # the backstop when the cache shows nothing

    @property
    def grace_seconds(self) -> float:
        return self.webhook_timeout_seconds + self.margin_seconds


@dataclass(frozen=True)
class ClaimingSettings:
    # --claims: limit places no quota backs and unique keys are claimed in Claim objects at
    # the API server before admitting (webhook/cluster/claims.py); only when reading it.
    enabled: bool = True
    interval_seconds: float = 1.0  # the leader's confirm/release/collect pass
    # How long an unfulfilled pending claim weakens new ones on its unit (squatting).
    cooldown_seconds: float = 300.0
