"""serve's settings: one nested value, each part its package's, and one table from the
options (the CLI's, the tests') to the parts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from webhook.admission.readiness import Readiness
from webhook.serve.settings import OPTIONS, ServeSettings, from_options


def test_every_option_names_a_field_of_its_part() -> None:
    settings = ServeSettings()
    assert OPTIONS, "serve has options"
    for option, (part, field) in OPTIONS.items():
        owner = settings if part is None else getattr(settings, part)
        names = {f.name for f in dataclasses.fields(owner)}
        assert field in names, f"{option} -> {part}.{field}: no such field"


def test_options_land_in_their_parts_and_leave_the_rest_at_their_defaults() -> None:
    settings = from_options({"audit_log": Path("decisions.jsonl"), "port": 9443,
                             "cluster_state": Path("cluster.yaml"),
                             "audit_interval_seconds": 300.0, "cert_dir": Path("certs")})
    assert settings.server.decision_log == Path("decisions.jsonl")
    assert settings.server.port == 9443
    assert settings.cache.state_file == Path("cluster.yaml")
    assert settings.controllers.report_interval_seconds == 300.0
    assert settings.certificates.directory == Path("certs")
    assert settings.server.host == ServeSettings().server.host
    assert not settings.reads_the_api  # a cluster-state file, not the API


def test_an_unknown_option_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="no serve setting is called audit_lg"):
        from_options({"audit_lg": Path("x")})


def test_the_parts_are_frozen() -> None:
    settings = ServeSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


def test_readiness_is_fixed_once_serving_starts() -> None:
    readiness = Readiness()
    readiness.add_check(lambda: "cache behind")
    readiness.add_detail("background", lambda: {"tasks": 1})
    readiness.fix()
    with pytest.raises(RuntimeError, match="fixed once serving starts"):
        readiness.add_check(lambda: None)
    with pytest.raises(RuntimeError, match="fixed once serving starts"):
        readiness.add_detail("late", lambda: None)
    assert readiness.reasons() == ["cache behind"]
    assert readiness.details() == {"background": {"tasks": 1}}
