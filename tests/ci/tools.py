"""Running the `edgewarden` command of this environment the way CI integrations run it: by
name, from PATH, in a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# `edgewarden <command>` in a hook entry or an action's script.
COMMAND = re.compile(r"\bedgewarden\s+([a-z][a-z-]*)")

NODEPORT_IN_PRODUCTION = """\
apiVersion: v1
kind: Namespace
metadata:
  name: payments
  labels: {environment: production}
---
apiVersion: v1
kind: Service
metadata: {name: checkout-debug, namespace: payments}
spec:
  type: NodePort
  selector: {app: checkout}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
"""
CLUSTERIP_IN_PRODUCTION = """\
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: payments}
spec:
  selector: {app: checkout}
  ports: [{port: 80, targetPort: 8080}]
"""
BROKEN_POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: broken}
spec:
  mode: Enforce
  match: {kind: [Service]}
  validations:
    - expression: "true"
"""


def environment(**extra: str) -> dict[str, str]:
    """The process environment with this venv's `edgewarden` first on PATH."""
    if not (BIN / "edgewarden").exists():
        pytest.skip("the edgewarden command is not installed in this environment")
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1", **extra}


def edgewarden_commands(text: str) -> set[str]:
    return set(COMMAND.findall(text))


def help_exits_zero(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "edgewarden"), command, "--help"], capture_output=True,
                          text=True, timeout=60, check=False, env=environment())
