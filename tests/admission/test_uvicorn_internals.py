"""The HTTP layer subclasses uvicorn internals (webhook/admission/http_protocol.py: its
httptools protocol; listener.py: ``Server.startup``), which uvicorn may change in any
release. This test fails loudly on a uvicorn it was not written for, and names what moved,
so an upgrade re-reads those two modules against the new source first (docs/http.md)."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from webhook.admission.http_protocol import UVICORN_SERIES, GuardedHttpProtocol
from webhook.admission.listener import EdgeServer

REPO = Path(__file__).parents[2]

# What our subclasses read or call on uvicorn's classes without defining it themselves.
PROTOCOL_ATTRIBUTES = ("client", "cycle", "transport", "flow", "url", "headers", "loop",
                       "scope", "parser", "server_state", "pipeline")
# ``transport`` is replaced per cycle (http_protocol._HeadWithBody); ``disconnected`` and
# ``message_event`` tell an application waiting for its body that the client is gone.
CYCLE_ATTRIBUTES = ("response_started", "response_complete", "more_body", "scope",
                    "transport", "disconnected", "message_event")
SERVER_ATTRIBUTES = ("config", "lifespan", "server_state", "servers", "started", "should_exit",
                     "_log_started_message")


def assigned_or_defined(cls: type) -> set[str]:
    """The attributes ``cls``'s source assigns (``self.x = ...``) or defines (methods)."""
    source = "\n".join(inspect.getsource(c) for c in cls.__mro__
                       if c.__module__.startswith("uvicorn"))
    assigned = set(re.findall(r"self\.([A-Za-z_]\w*)\s*(?::[^=\n]*)?=", source))
    return assigned | {name for c in cls.__mro__ for name in vars(c)}


def test_the_installed_uvicorn_is_the_series_the_subclasses_were_written_for() -> None:
    assert uvicorn.__version__.split(".")[:2] == UVICORN_SERIES.split("."), (
        f"uvicorn {uvicorn.__version__} is installed; webhook/admission/http_protocol.py and "
        f"listener.py subclass uvicorn {UVICORN_SERIES} internals: read them against the new "
        "source, then move UVICORN_SERIES and the bound in pyproject.toml")


def test_pyproject_bounds_uvicorn_to_that_series() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("uvicorn")]
    assert pins, "uvicorn is a dependency"
    major, minor = UVICORN_SERIES.split(".")
    assert pins == [f"uvicorn[standard]>={UVICORN_SERIES},<{major}.{int(minor) + 1}"]


def test_every_overridden_method_still_exists_with_the_same_parameters() -> None:
    pairs = [(GuardedHttpProtocol, HttpToolsProtocol), (EdgeServer, uvicorn.Server)]
    checked = 0
    for ours, theirs in pairs:
        overridden = [name for name, value in vars(ours).items()
                      if inspect.isfunction(value) and name != "__init__"
                      and hasattr(theirs, name)]
        assert overridden, f"{ours.__name__} overrides something of {theirs.__name__}"
        for name in overridden:
            expected = list(inspect.signature(getattr(theirs, name)).parameters)
            assert list(inspect.signature(getattr(ours, name)).parameters) == expected, (
                f"uvicorn's {theirs.__name__}.{name} changed its parameters")
            checked += 1
    # Our constructor passes uvicorn's positional parameters through unchanged.
    base = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert list(inspect.signature(GuardedHttpProtocol.__init__).parameters)[:len(base)] == base
    assert checked >= 8


def test_the_internals_the_subclasses_read_are_still_there() -> None:
    for cls, names in ((HttpToolsProtocol, PROTOCOL_ATTRIBUTES),
                       (RequestResponseCycle, CYCLE_ATTRIBUTES),
                       (uvicorn.Server, SERVER_ATTRIBUTES)):
        missing = [name for name in names if name not in assigned_or_defined(cls)]
        assert not missing, f"uvicorn's {cls.__name__} no longer has {missing}"
