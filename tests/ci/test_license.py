"""LICENSE is the Apache License 2.0 that pyproject.toml declares, unchanged."""

from __future__ import annotations

import hashlib
import tomllib

from .tools import REPO

# SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt, the file every Apache-2.0
# project ships (here copied from an Apache-2.0 package's distribution).
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_license_is_the_unmodified_apache_2_0_text() -> None:
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256
    assert b"Apache License\n                           Version 2.0, January 2004" in text
    assert b"END OF TERMS AND CONDITIONS" in text


def test_pyproject_declares_the_same_license() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] in ({"text": "Apache-2.0"}, "Apache-2.0")
