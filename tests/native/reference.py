"""The real API server as the reference for CEL: what a ValidatingAdmissionPolicy makes of an
expression, beside what edgewarden makes of it.

Two questions, each answered in bulk (hundreds of expressions, a handful of policies):

* **evaluation** (:meth:`Reference.evaluate`): one ValidatingAdmissionPolicy holds every
  expression of a batch, as validation ``i``::

      object.metadata.name != 'c-<i>' || (dyn(<expression>) == <edgewarden's value>)

  and one dry-run ConfigMap create per expression, named ``c-<i>``, selects it: every other
  validation is true before it reads anything (CEL's ``||`` absorbs the right side), so
  each request answers exactly one question. The binding's action is Warn and the policy's
  failurePolicy Fail, so the answer is in the Warning header: none (the API server computes
  edgewarden's value), ``mismatch`` (another value), or the evaluation error in the API
  server's words. Where edgewarden failed, the comparison is the expression with itself, so
  any value the API server computes is a disagreement and its error is what it says.
  Dry-run creates still run admission policies, and store nothing.

* **type checking** (:meth:`Reference.check`): the expressions as validations of a policy
  matching a kind (Service, Ingress...), created for real: what the API server refuses at
  create (422, one cause per field) and what its type checker writes in
  ``status.typeChecking`` (per field) once it has looked.

A policy the API server refuses to compile is refused whole; the harness takes the refused
validations out and asks again, reporting them as refused at create.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.cel.runtime import Optional

POLICY_GROUP = "/apis/admissionregistration.k8s.io/v1"
_FIELD = re.compile(r"spec\.validations\[(\d+)\]\.expression")
_ERROR = re.compile(r"resulted in error: (.*)$", re.S)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if self.status >= 400 else ""


@dataclass(frozen=True)
class Evaluated:
    """What the API server made of one expression, measured against edgewarden's value."""

    agrees: bool  # it computed edgewarden's value (or failed where edgewarden failed)
    error: str | None = None  # its evaluation error, in its own words
    refused: str | None = None  # it does not compile the comparison at all


@dataclass(frozen=True)
class Checked:
    """What the API server said about one validation of a created policy."""

    refused: str | None = None  # the cause of the 422 at create, for this field
    warning: str | None = None  # its status.typeChecking warning for this field

    @property
    def flagged(self) -> bool:
        return self.refused is not None or self.warning is not None


@dataclass
class Reference:
    """Raw HTTPS to the control plane as admin (one keep-alive connection)."""

    plane: Any
    _connection: http.client.HTTPSConnection | None = field(default=None, init=False)
    namespace: str = field(default="", init=False)

    def _connect(self) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.plane.ca_file))
        pki = self.plane.workdir / "pki"
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return http.client.HTTPSConnection("127.0.0.1", self.plane.port, context=context,
                                           timeout=30)

    def send(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            if self._connection is None:
                self._connection = self._connect()
            try:
                self._connection.request(method, path, body=payload,
                                         headers={"content-type": "application/json"})
                response = self._connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = None
                if attempt:
                    raise
        # Header values arrive as latin-1 (http.client); the API server sends UTF-8.
        warnings = tuple(re.sub(r'^\d+ - "(.*)"$', r"\1", w.encode("latin-1").decode("utf-8"),
                                flags=re.S)
                         for w in response.headers.get_all("Warning") or [])
        return Answer(response.status, json.loads(data) if data else {}, warnings)

    def ensure_namespace(self) -> str:
        if not self.namespace:
            self.namespace = f"cel-{uuid.uuid4().hex[:6]}"
            made = self.send("POST", "/api/v1/namespaces", {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.namespace}})
            assert made.status == 201, made.body
        return self.namespace

    # -- evaluation ------------------------------------------------------------------

    def evaluate(self, cases: Sequence[tuple[str, Any, bool]],
                 data: Mapping[str, str] | None = None) -> list[Evaluated]:
        """``cases``: (expression, edgewarden's value, whether edgewarden failed). The
        expressions read ``object``: a ConfigMap holding ``data``."""
        namespace = self.ensure_namespace()
        name = f"cel-eval-{uuid.uuid4().hex[:6]}"
        comparisons = []
        for index, (expression, value, failed) in enumerate(cases):
            expected = f"dyn({expression})" if failed else render(value)
            comparisons.append(f"object.metadata.name != 'c-{index}' || "
                               f"(dyn({expression}) == {expected})")
        refused = self._create_evaluation_policy(name, namespace, comparisons)
        try:
            self._wait_in_force(name, namespace, comparisons, refused)
            results = []
            for index in range(len(cases)):
                if index in refused:
                    results.append(Evaluated(False, refused=refused[index]))
                    continue
                results.append(self._ask(namespace, index, data or {}, failed=cases[index][2]))
            return results
        finally:
            self.send("DELETE", f"{POLICY_GROUP}/validatingadmissionpolicybindings/{name}")
            self.send("DELETE", f"{POLICY_GROUP}/validatingadmissionpolicies/{name}")

    def _create_configmap_policy(self, name: str,
                                 validations: list[dict[str, str]]) -> Answer:
        """A ValidatingAdmissionPolicy over ConfigMap CREATEs; the API server's answer."""
        return self.send("POST", f"{POLICY_GROUP}/validatingadmissionpolicies", {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"failurePolicy": "Fail",
                     "matchConstraints": {"resourceRules": [{
                         "apiGroups": [""], "apiVersions": ["v1"],
                         "resources": ["configmaps"], "operations": ["CREATE"]}]},
                     "validations": validations}})

    def _bind_warning_in(self, name: str, namespace: str) -> None:
        """Bind policy ``name`` to ``namespace`` only, its verdicts as warnings."""
        bound = self.send("POST", f"{POLICY_GROUP}/validatingadmissionpolicybindings", {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Warn"],
                     "matchResources": {"namespaceSelector": {"matchLabels": {
                         "kubernetes.io/metadata.name": namespace}}}}})
        assert bound.status == 201, bound.body

    def _create_evaluation_policy(self, name: str, namespace: str,
                                  comparisons: list[str]) -> dict[int, str]:
        refused: dict[int, str] = {}
        while True:
            validations = [
                {"expression": "true" if index in refused else text, "message": "mismatch"}
                for index, text in enumerate(comparisons)]
            # A last validation that fails for a probe object: the policy is in force.
            validations.append({"expression": "object.metadata.name != 'probe'",
                                "message": "in force"})
            made = self._create_configmap_policy(name, validations)
            if made.status == 201:
                break
            causes = refusals(made)
            assert made.status == 422 and causes and not set(causes) <= set(refused), \
                made.body
            refused.update(causes)
        self._bind_warning_in(name, namespace)
        return refused

    def _wait_in_force(self, name: str, namespace: str, comparisons: list[str],
                       refused: Mapping[int, str]) -> None:
        deadline = time.monotonic() + 60
        probe = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "probe", "namespace": namespace}}
        while time.monotonic() < deadline:
            answer = self.send("POST", f"/api/v1/namespaces/{namespace}/configmaps?dryRun=All",
                               probe)
            if any(f"'{name}'" in w and w.endswith("in force") for w in answer.warnings):
                return
            time.sleep(0.1)
        raise AssertionError(f"policy {name} not in force after 60 s")

    def _ask(self, namespace: str, index: int, data: Mapping[str, str], *,
             failed: bool) -> Evaluated:
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": f"c-{index}", "namespace": namespace}, "data": dict(data)}
        answer = self.send("POST", f"/api/v1/namespaces/{namespace}/configmaps?dryRun=All", obj)
        assert answer.status == 201, answer.body
        said = [w.split("': ", 1)[1] if "': " in w else w for w in answer.warnings
                if "ValidatingAdmissionPolicy 'cel-eval-" in w]
        if not said:  # the comparison held
            return Evaluated(not failed)
        text = said[0]
        if text == "mismatch":
            return Evaluated(False)
        found = _ERROR.search(text)
        error = found.group(1).strip() if found else text
        return Evaluated(failed, error=error)

    # -- type checking ---------------------------------------------------------------

    def check(self, resource: tuple[str, str, str], expressions: Sequence[str],
              *, timeout: float = 60) -> list[Checked]:
        """The expressions as validations of a policy over ``resource`` (group, version,
        plural): refused at create, or flagged by the type checker, per expression."""
        group, version, plural = resource
        name = f"cel-check-{uuid.uuid4().hex[:6]}"
        refused: dict[int, str] = {}
        while True:
            validations = [{"expression": "true" if i in refused else text}
                           for i, text in enumerate(expressions)]
            made = self.send("POST", f"{POLICY_GROUP}/validatingadmissionpolicies", {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
                "spec": {"failurePolicy": "Fail",
                         "matchConstraints": {"resourceRules": [{
                             "apiGroups": [group], "apiVersions": [version],
                             "resources": [plural], "operations": ["CREATE", "UPDATE"]}]},
                         "validations": validations}})
            if made.status == 201:
                break
            causes = refusals(made)
            assert made.status == 422 and causes and not set(causes) <= set(refused), \
                made.body
            refused.update(causes)
        try:
            warnings = self._type_checking(name, made.body, timeout)
        finally:
            self.send("DELETE", f"{POLICY_GROUP}/validatingadmissionpolicies/{name}")
        return [Checked(refused.get(i), warnings.get(i)) for i in range(len(expressions))]

    def _type_checking(self, name: str, created: Mapping[str, Any],
                       timeout: float) -> dict[int, str]:
        generation = created["metadata"].get("generation", 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.send("GET", f"{POLICY_GROUP}/validatingadmissionpolicies/{name}").body
            status = found.get("status") or {}
            if status.get("observedGeneration") == generation and "typeChecking" in status:
                warnings: dict[int, str] = {}
                for warning in (status["typeChecking"] or {}).get("expressionWarnings") or []:
                    matched = _FIELD.search(warning.get("fieldRef", ""))
                    if matched:
                        warnings[int(matched.group(1))] = " ".join(warning["warning"].split())
                return warnings
            time.sleep(0.2)
        raise AssertionError(f"no status.typeChecking on {name} after {timeout} s")


def refusals(answer: Answer) -> dict[int, str]:
    """The 422's causes by validation index: what the API server says of each field."""
    causes: dict[int, str] = {}
    for cause in (answer.body.get("details") or {}).get("causes") or []:
        matched = _FIELD.search(cause.get("field", ""))
        if matched:
            index = int(matched.group(1))
            message = " ".join(str(cause.get("message", "")).split())
            causes[index] = (causes[index] + "; " + message) if index in causes else message
    return causes


def render(value: Any) -> str:
    """A CEL literal for a value edgewarden computed (the API server's CEL compares it)."""
    if isinstance(value, Optional):
        return f"optional.of({render(value.value)})" if value.present else "optional.none()"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2**63) <= value < 2**63 else f"{value}u"
    if isinstance(value, float):
        if math.isinf(value):
            return "double('Infinity')" if value > 0 else "double('-Infinity')"
        return repr(value) if ("." in repr(value) or "e" in repr(value)) else f"{value}.0"
    if isinstance(value, str):
        return json.dumps(value)  # CEL reads JSON's string escapes
    if isinstance(value, bytes):
        return 'b"' + "".join(f"\\x{b:02x}" for b in value) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f"dyn({render(v)})" for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k)}: dyn({render(v)})" for k, v in value.items()) + "}"
    raise TypeError(f"no CEL literal for a {type(value).__name__}")
