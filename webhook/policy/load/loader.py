"""Loading policy YAML into a :class:`PolicySet`, all or nothing, with file/line/field errors."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from webhook.errors import PolicyLoadError, PolicyProblem
from webhook.policy.blocks import registry
from webhook.policy.blocks.protocol import BODY_VARIABLES, MATCH_VARIABLES
from webhook.policy.blocks.registry import slots as check_slots
from webhook.policy.cel.checks import Schemas
from webhook.policy.cel.expression import CelCompileError, CelExpression, compile_expression
from webhook.policy.load.policy_checks import check_policy
from webhook.policy.load.schema import API_VERSION, policy_schema
from webhook.policy.load.yamlsource import LocatedDocument, Path_, documents_or_problem
from webhook.policy.model.decision import FailurePolicy, Mode
from webhook.policy.model.kinds import (
    SHORT_NAMES,
    KindRef,
    known_resource,
    merge,
    valid_resource_name,
)
from webhook.policy.model.location import SourceLocation
from webhook.policy.model.policy import (
    ALL_OPERATIONS,
    INTERNAL_LB_FLAVOURS,
    Exclude,
    Match,
    NamedExpression,
    Policy,
    PolicySet,
)
from webhook.policy.model.selectors import LabelSelector, Requirement

DESCRIPTION_ANNOTATION = "edgewarden.dev/description"
# How deeply a policy document's YAML may nest (a JSONPatch value is free-form). Ours, not
# the API server's: deep enough for any Kubernetes object, shallow enough that the schema
# validator and the engine's walks stay far from Python's recursion limit.
MAX_DOCUMENT_NESTING = 64

# Kind schemas for the static CEL checks (the packaged Kubernetes ones).
_SCHEMAS = Schemas()


_validator: tuple[dict[str, Any], Draft202012Validator] | None = None


def _schema_validator() -> Draft202012Validator:
    """The validator of the schema with every registered block (built again only when the
    registry changes)."""
    global _validator
    schema = policy_schema()
    if _validator is None or _validator[0] is not schema:
        _validator = (schema, Draft202012Validator(schema))
    return _validator[1]


def _one_of_the_blocks() -> str:
    *first, last = registry.names()
    return f"{', '.join(first)} or {last}" if first else last


STDIN = Path("-")  # a path argument that means "read the policies from standard input"


def policy_files(path: Path) -> list[Path]:
    """The policy files at ``path``: the file itself, or a folder's YAML minus test suites."""
    if path == STDIN or path.is_file():
        return [path]
    if not path.is_dir():
        raise PolicyLoadError([PolicyProblem(str(path), None, "path", "no such file or folder")])
    return sorted(
        p
        for p in (*path.glob("*.yaml"), *path.glob("*.yml"))
        if not p.name.endswith((".test.yaml", ".test.yml")) and p.is_file()
    )


def load_policies(*paths: str | Path, internal_lb_flavour: str | None = None) -> PolicySet:
    """Load every policy under ``paths``; raise PolicyLoadError listing every problem found.

    ``internal_lb_flavour`` (an installation setting, passed in by the caller) overrides the
    flavour of every ``internalLoadBalancer`` mutation, so the shipped policy serves any
    cloud unchanged; None keeps each policy's own.
    """
    if internal_lb_flavour is not None and internal_lb_flavour not in INTERNAL_LB_FLAVOURS:
        raise PolicyLoadError(
            [
                PolicyProblem(
                    "<settings>",
                    None,
                    "internal-lb-flavour",
                    f"unknown flavour {internal_lb_flavour!r} "
                    f"(one of {', '.join(INTERNAL_LB_FLAVOURS)})",
                )
            ]
        )
    # A plug-in block that does not load is the installation's problem, not one document's:
    # say so once (BlockRegistryError) before any document is read.
    registry.blocks()
    files: list[Path] = []
    for raw in paths:
        files.extend(policy_files(Path(raw)))
    problems: list[PolicyProblem] = []
    warnings: list[PolicyProblem] = []
    policies: list[Policy] = []
    seen: dict[str, SourceLocation] = {}
    for file in files:
        for policy in _load_file(file, problems, internal_lb_flavour, warnings):
            if policy.name in seen:
                problems.append(
                    PolicyProblem(
                        str(file),
                        policy.source.line,
                        "metadata.name",
                        f"duplicate policy name {policy.name!r} "
                        f"(first defined at {seen[policy.name]})",
                    )
                )
                continue
            seen[policy.name] = policy.source
            policies.append(policy)
    if problems:
        # By file and line, whatever stage found each (schema, compile, type check).
        order = {str(file): index for index, file in enumerate(files)}
        problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line or 0))
        raise PolicyLoadError(problems, warnings)
    return PolicySet(
        policies=tuple(policies), sources=tuple(str(f) for f in files), warnings=tuple(warnings)
    )


def _load_file(
    file: Path, problems: list[PolicyProblem], flavour: str | None, warnings: list[PolicyProblem]
) -> list[Policy]:
    name = "<stdin>" if file == STDIN else str(file)
    try:
        text = sys.stdin.read() if file == STDIN else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(PolicyProblem(name, None, "file", f"cannot read: {error}"))
        return []
    return list(_load_text(text, name, problems, flavour, warnings))


def _load_text(
    text: str,
    file: str,
    problems: list[PolicyProblem],
    flavour: str | None,
    warnings: list[PolicyProblem],
) -> Iterable[Policy]:
    loaded = []
    for document in documents_or_problem(text, file, problems):
        policy = _load_document(document, file, problems, flavour, warnings)
        if policy is not None:
            loaded.append(policy)
    return loaded


def _field(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<document>"


def unknown_kind_message(name: object) -> str:
    close = difflib.get_close_matches(str(name), SHORT_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown kind {name!r}: {hint}the short names are {', '.join(SHORT_NAMES)}; name "
        "any other kind by group, version and resource in match.resourceRules"
    )


def _block_message(keyword: str, path: Path_) -> str | None:
    """What the block at ``spec.<name>`` says of a schema error inside it, if anything."""
    if len(path) < 2 or path[0] != "spec":
        return None
    block = next((b for b in registry.blocks() if b.name == path[1]), None)
    return None if block is None else block.schema_message(keyword, path[2:])


def _schema_problem(error: ValidationError, document: LocatedDocument, file: str) -> PolicyProblem:
    path: Path_ = tuple(error.absolute_path)
    message = error.message
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    expected: Any = error.validator_value
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        if extra:
            path = (*path, extra[0])
            message = f"unknown field {extra[0]!r}" + (
                f" (allowed: {', '.join(allowed)})" if allowed else ""
            )
    elif error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        message = f"missing required field {missing!r}"
    elif error.validator == "anyOf" and path == ("spec",):
        message = f"a policy needs at least one of {_one_of_the_blocks()}"
    elif error.validator == "anyOf" and path == ("spec", "match"):
        message = "match needs kinds (short names) or resourceRules (group/version/resource)"
    elif (said := _block_message(str(error.validator), path)) is not None:
        message = said
    elif error.validator == "enum" and path[-2:-1] == ("kinds",):
        message = unknown_kind_message(error.instance)
    elif error.validator == "enum":
        message = f"{error.instance!r} is not one of {', '.join(map(str, expected))}"
    elif error.validator == "const":
        message = f"must be {expected!r}, not {error.instance!r}"
    elif error.validator == "type":
        message = f"must be of type {expected}, not {type(error.instance).__name__}"
    elif error.validator == "pattern" and path[-2:] == ("metadata", "name"):
        message = (
            f"{error.instance!r} is not a valid name (lowercase DNS label, at most 63 characters)"
        )
    return PolicyProblem(file, document.line_of(path), _field(path), message)


def _load_document(
    document: LocatedDocument,
    file: str,
    problems: list[PolicyProblem],
    flavour: str | None,
    warnings: list[PolicyProblem],
) -> Policy | None:
    """One policy document, or None with its problems recorded; never raises, so one
    hostile or broken document cannot stop the others (or a controller) from loading."""
    try:
        return _checked_document(document, file, problems, flavour, warnings)
    except Exception as error:  # RecursionError, MemoryError, a bug: refuse this one only
        problems.append(unloadable(file, document.line, error))
    return None


def unloadable(file: str, line: int | None, error: BaseException) -> PolicyProblem:
    """The problem of a document the loader could not finish (its type only: no values)."""
    if isinstance(error, RecursionError | MemoryError):
        why = "too large or too deeply nested to load"
    else:
        why = "could not be loaded (an error in edgewarden; please report it)"
    return PolicyProblem(file, line, "<document>", f"{why} ({type(error).__name__})")


def _checked_document(
    document: LocatedDocument,
    file: str,
    problems: list[PolicyProblem],
    flavour: str | None,
    warnings: list[PolicyProblem],
) -> Policy | None:
    data = document.data
    deep = nesting_problem(document, file)
    if deep is not None:
        problems.append(deep)
        return None
    if not isinstance(data, dict):
        problems.append(
            PolicyProblem(file, document.line, "<document>", "a policy must be a mapping")
        )
        return None
    if data.get("kind") != "Policy" or data.get("apiVersion") != API_VERSION:
        kind = data.get("kind")
        problems.append(
            PolicyProblem(
                file,
                document.line_of(("kind",)),
                "kind",
                f"expected apiVersion {API_VERSION} kind Policy, found "
                f"{data.get('apiVersion')!r} {kind!r}"
                + (" (test suites must be named *.test.yaml)" if kind == "PolicyTest" else ""),
            )
        )
        return None
    errors = sorted(
        _schema_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.path))
    )
    if errors:
        reported: set[str] = set()
        for error in errors:
            problem = _schema_problem(error, document, file)
            if problem.field not in reported:
                reported.add(problem.field)
                problems.append(problem)
        # The CEL beside a schema error is still compiled: one run shows every problem.
        for path, source in _expressions(data):
            if _field(path) in reported or not isinstance(source, str):
                continue
            try:
                compile_expression(source, allowed=BODY_VARIABLES)
            except CelCompileError as error:
                problems.append(PolicyProblem(file, document.line_of(path), _field(path),
                                              f"CEL: {error}"))
        return None
    builder = _PolicyBuilder(document, file)
    policy = builder.build(flavour)
    problems.extend(builder.problems)
    warnings.extend(builder.warnings)
    return policy if not builder.problems else None


def _expressions(data: Mapping[str, Any]) -> Iterator[tuple[Path_, object]]:
    """Every CEL expression of a document, by its path, however malformed the rest is."""
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return
    for section, keys in (("matchConditions", ("expression",)), ("variables", ("expression",)),
                          ("validations", ("expression", "messageExpression"))):
        items = spec.get(section)
        for index, item in enumerate(items if isinstance(items, list) else []):
            for key in keys:
                if isinstance(item, dict) and key in item:
                    yield ("spec", section, index, key), item[key]
    for section, keys in (("limit", ("where", "maxExpression")), ("unique", ("keys",))):
        block = spec.get(section)
        for key in keys:
            if isinstance(block, dict) and key in block:
                yield ("spec", section, key), block[key]


def nesting_problem(document: LocatedDocument, file: str) -> PolicyProblem | None:
    """A problem when the document's data nests deeper than MAX_DOCUMENT_NESTING (checked
    without recursion, before the schema validator and our walks recurse into it)."""
    pending: list[tuple[Any, Path_]] = [(document.data, ())]
    while pending:
        value, path = pending.pop()
        if len(path) > MAX_DOCUMENT_NESTING:
            shown = path[:6]
            return PolicyProblem(
                file, document.line_of(shown), _field(shown),
                f"nested more than {MAX_DOCUMENT_NESTING} levels deep (the limit for a "
                "policy document)",
            )
        if isinstance(value, dict):
            pending.extend((item, (*path, str(key))) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, (*path, i)) for i, item in enumerate(value))
    return None


class _PolicyBuilder:
    """Turns one schema-valid document into a Policy, compiling every CEL expression."""

    def __init__(self, document: LocatedDocument, file: str) -> None:
        self.document = document
        self.file = file
        self.problems: list[PolicyProblem] = []
        self.warnings: list[PolicyProblem] = []  # reported; the policy still loads
        # Where each compiled expression is, so the type checks of a policy with a broken
        # expression still name the right field (every problem of a file in one run).
        self._paths: dict[int, Path_] = {}
        spec = document.data.get("spec") or {}
        self.variable_names = frozenset(v["name"] for v in spec.get("variables", []))
        name = str(document.data["metadata"]["name"])
        # Policy names are DNS labels, so this CEL identifier prefix is unique per policy.
        self.binding_prefix = "_v_" + name.replace("-", "_") + "__"
        self.flavour: str | None = None

    # -- what a block builds with (protocol.Builder) ------------------------------------

    @property
    def internal_lb_flavour(self) -> str | None:
        return self.flavour

    def cel(self, source: str, path: Path_, allowed: frozenset[str]) -> CelExpression | None:
        return self._cel(source, path, allowed)

    def problem(self, path: Path_, message: str) -> None:
        self._problem(path, message)

    # ---------------------------------------------------------------------------------

    def _located(self, path: Path_, message: str) -> PolicyProblem:
        return PolicyProblem(self.file, self.document.line_of(path), _field(path), message)

    def _problem(self, path: Path_, message: str) -> None:
        self.problems.append(self._located(path, message))

    def _cel(
        self,
        source: str,
        path: Path_,
        allowed: frozenset[str],
        known_variables: frozenset[str] | None = None,
    ) -> CelExpression | None:
        if known_variables is None:
            known_variables = self.variable_names
        try:
            compiled = compile_expression(
                source,
                allowed=allowed,
                binding_prefix=self.binding_prefix,
                known_policy_variables=known_variables,
            )
            self._paths[id(compiled)] = path
            return compiled
        except CelCompileError as error:
            self._problem(path, f"CEL: {error}")
        except (RecursionError, MemoryError) as error:  # past the bounds' estimate
            self._problem(path, f"CEL: expression too large or too deeply nested to load "
                          f"({type(error).__name__})")
        return None

    def build(self, flavour: str | None) -> Policy | None:
        self.flavour = flavour
        data = self.document.data
        spec: Mapping[str, Any] = data["spec"]
        metadata = data["metadata"]
        match = self._match(spec["match"])
        conditions = tuple(
            NamedExpression(item["name"], expr)
            for i, item in enumerate(spec.get("matchConditions", []))
            if (
                expr := self._cel(
                    item["expression"],
                    ("spec", "matchConditions", i, "expression"),
                    MATCH_VARIABLES,
                )
            )
        )
        self._unique_names(spec.get("matchConditions", []), "matchConditions")
        variables = []
        declared: list[str] = []
        for i, item in enumerate(spec.get("variables", [])):
            path = ("spec", "variables", i, "expression")
            expr = self._cel(item["expression"], path, BODY_VARIABLES, frozenset(declared))
            declared.append(item["name"])
            if expr is not None:
                variables.append(NamedExpression(item["name"], expr))
        self._unique_names(spec.get("variables", []), "variables")
        # Each block builds its own part of the spec (webhook/policy/blocks): the built-in
        # ones fill the policy's fields, a plug-in's data goes to ``blocks``.
        built: dict[str, Any] = {}
        plugged: list[tuple[str, Any]] = []
        for block in registry.blocks():
            if block.name not in spec:
                continue
            value = block.build(spec[block.name], self)
            if value is None:
                continue
            if block.field is not None:
                built[block.field] = value
            else:
                plugged.append((block.name, value))
        # Built and checked even with problems so far: one run shows every problem.
        policy = Policy(
            name=metadata["name"],
            description=(metadata.get("annotations") or {}).get(DESCRIPTION_ANNOTATION, ""),
            mode=Mode(spec.get("mode", "Enforce")),
            failure_policy=FailurePolicy(spec.get("failurePolicy", "Fail")),
            match=match,
            match_conditions=conditions,
            variables=tuple(variables),
            **built,
            blocks=tuple(plugged),
            source=SourceLocation(self.file, self.document.line_of(("metadata", "name"))),
            shadow=bool(spec.get("shadow", False)),
        )
        # Refuse what would fail on every request: unknown functions and fields, results
        # of the wrong type (see webhook/policy/cel/checks).
        # A policy with a broken expression is checked too (what compiled of it), so one
        # syntax error never hides the type errors beside it.
        checks = check_policy(policy, _SCHEMAS)
        where = {slot.path: self._paths.get(id(slot.expression), slot.path)
                 for slot in check_slots(policy)}
        for finding in checks.errors:
            self._problem(where.get(finding.path, finding.path), finding.message)
        for finding in checks.warnings:
            self.warnings.append(
                self._located(where.get(finding.path, finding.path), finding.message))
        return None if self.problems else policy

    def _unique_names(self, items: list[Mapping[str, Any]], section: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item["name"] in seen:
                self._problem(("spec", section, i, "name"), f"duplicate name {item['name']!r}")
            seen.add(item["name"])

    def _selector(self, raw: Mapping[str, Any] | None, path: Path_) -> LabelSelector | None:
        if not raw:
            return None
        requirements = []
        for i, item in enumerate(raw.get("matchExpressions", [])):
            operator, values = item["operator"], item.get("values") or []
            if operator in ("In", "NotIn") and not values:
                self._problem(
                    (*path, "matchExpressions", i, "values"),
                    f"must be non-empty for operator {operator}",
                )
            if operator in ("Exists", "DoesNotExist") and values:
                self._problem(
                    (*path, "matchExpressions", i, "values"),
                    f"must be empty for operator {operator}",
                )
            requirements.append(Requirement(item["key"], operator, frozenset(values)))
        labels = tuple(sorted((raw.get("matchLabels") or {}).items()))
        selector = LabelSelector(labels, tuple(requirements))
        return None if selector.is_empty else selector

    def _match(self, raw: Mapping[str, Any]) -> Match:
        operations = raw.get("operations", ["CREATE", "UPDATE"])
        if "*" in operations:
            operations = list(ALL_OPERATIONS)
        exclude = raw.get("exclude", {})
        refs = merge(self._kinds(raw))
        return Match(
            kinds=frozenset(ref.key for ref in refs),
            resources=refs,
            operations=frozenset(operations),
            namespace_selector=self._selector(
                raw.get("namespaceSelector"), ("spec", "match", "namespaceSelector")
            ),
            object_selector=self._selector(
                raw.get("objectSelector"), ("spec", "match", "objectSelector")
            ),
            exclude=Exclude(
                namespaces=frozenset(exclude.get("namespaces", [])),
                usernames=frozenset(exclude.get("usernames", [])),
                groups=frozenset(exclude.get("groups", [])),
            ),
        )

    def _kinds(self, raw: Mapping[str, Any]) -> Iterator[KindRef]:
        """The kinds ``match`` names: short names and resourceRules, resolved."""
        for i, name in enumerate(raw.get("kinds", [])):
            ref = SHORT_NAMES.get(name)
            if ref is None:  # the schema refuses it first; kept for documents built in code
                self._problem(("spec", "match", "kinds", i), unknown_kind_message(name))
                continue
            yield ref
        for i, rule in enumerate(raw.get("resourceRules", [])):
            path: Path_ = ("spec", "match", "resourceRules", i)
            kind, namespaced = rule.get("kind"), rule.get("scope", "Namespaced") == "Namespaced"
            if kind is not None and (len(rule["apiGroups"]) != 1 or len(rule["resources"]) != 1):
                self._problem((*path, "kind"), "a rule that names its kind names one apiGroup "
                              "and one resource")
                continue
            for group in rule["apiGroups"]:
                for j, resource in enumerate(rule["resources"]):
                    where: Path_ = (*path, "resources", j)
                    if resource == "*" or "/" in resource or not valid_resource_name(resource):
                        self._problem(where, f"{resource!r}: name each resource (lowercase "
                                      "plural, no wildcards or subresources)")
                        continue
                    known = known_resource(group, resource)
                    if kind is None and known is None:
                        self._problem(where, f"edgewarden does not know the kind of {resource!r}"
                                      f" in group {group!r}: add kind: <Kind> to this rule")
                        continue
                    if known is not None and kind is not None and kind != known.kind:
                        self._problem((*path, "kind"), f"{resource!r} in group {group!r} holds "
                                      f"{known.kind} objects, not {kind}")
                        continue
                    yield KindRef(
                        group,
                        known.kind if known is not None else str(kind),
                        resource,
                        tuple(rule["apiVersions"]),
                        known.namespaced if known is not None else namespaced,
                    )
