"""The watch cache starts as soon as the policies are loaded (``serve`` passes
``start_watching`` to ``build_runtime``), before the web app is built: its LISTs, seconds
for 100,000 objects at the API server, overlap the rest of the start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.admission.harness import base_settings
from webhook.admission import app as admission_app
from webhook.certs.files import GeneratedCertificates
from webhook.cluster.backend import ClusterBackend
from webhook.errors import EdgewardenError
from webhook.serve.build import build_runtime


def test_the_cache_starts_once_policies_are_loaded_and_before_the_app_is_built(
        certificates: GeneratedCertificates, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    seen: list[ClusterBackend] = []
    create_app = admission_app.create_app

    def creating(state: Any) -> Any:
        order.append("app")
        return create_app(state)

    monkeypatch.setattr(admission_app, "create_app", creating)

    def started(cluster: ClusterBackend) -> None:
        order.append("watch")
        seen.append(cluster)

    runtime = build_runtime(base_settings(certificates, tmp_path), on_policies_loaded=started)
    assert order == ["watch", "app"]
    assert seen == [runtime.cluster]
    assert runtime.state.policies is not None  # loaded before the watch started


def test_a_failure_after_the_cache_started_stops_it(
        certificates: GeneratedCertificates, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[ClusterBackend] = []

    def failing(state: Any) -> Any:
        raise EdgewardenError("the app could not be built")

    monkeypatch.setattr(admission_app, "create_app", failing)

    def started(cluster: ClusterBackend) -> None:
        monkeypatch.setattr(cluster, "stop", lambda: stopped.append(cluster))

    with pytest.raises(EdgewardenError):
        build_runtime(base_settings(certificates, tmp_path), on_policies_loaded=started)
    assert len(stopped) == 1
