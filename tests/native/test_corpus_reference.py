"""The corpus of broken CEL against the real API server: every entry's recorded outcome
(refused at create, flagged by the type checker, or accepted) and message is what the pinned
kube-apiserver does today. A new Kubernetes that judges an entry differently fails here, and
the corpus is re-recorded with it."""

from __future__ import annotations

from tests.native.corpus import RESOURCES, load_corpus

from .reference import Reference


def test_the_corpus_holds_at_least_fifty_expressions_the_api_server_flags() -> None:
    flagged = [entry for entry in load_corpus() if entry.flagged]
    assert len(flagged) >= 50
    assert {e.api_server for e in flagged} == {"refused", "typeChecking"}


def test_the_api_server_judges_each_entry_as_recorded(reference: Reference) -> None:
    corpus = load_corpus()
    differences = []
    for kind, resource in RESOURCES.items():
        entries = [entry for entry in corpus if entry.kind == kind]
        assert entries, kind
        checked = reference.check(resource, [entry.expression for entry in entries])
        for entry, result in zip(entries, checked, strict=True):
            outcome = ("refused" if result.refused else
                       "typeChecking" if result.warning else "accepted")
            said = result.refused or result.warning or ""
            if outcome != entry.api_server:
                differences.append(f"{entry.id}: recorded {entry.api_server}, the API server "
                                   f"now {outcome}: {said}")
            elif entry.says and entry.says not in said:
                differences.append(f"{entry.id}: the API server no longer says "
                                   f"{entry.says!r}: {said}")
    assert not differences, "\n".join(differences)
