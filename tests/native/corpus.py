"""The corpus of broken CEL (tests/native/corpus/broken.yaml), read once for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CORPUS = Path(__file__).parent / "corpus" / "broken.yaml"
# Where each kind lives in the API, for a policy's resourceRules.
RESOURCES = {"Service": ("", "v1", "services"),
             "Ingress": ("networking.k8s.io", "v1", "ingresses")}
OUTCOMES = frozenset({"refused", "typeChecking", "accepted"})


@dataclass(frozen=True)
class Broken:
    id: str
    kind: str
    expression: str
    api_server: str  # refused | typeChecking | accepted
    says: str | None

    @property
    def flagged(self) -> bool:
        return self.api_server != "accepted"


def load_corpus() -> list[Broken]:
    entries = yaml.safe_load(CORPUS.read_text())
    assert isinstance(entries, list) and entries, "the corpus is a list"
    corpus = [Broken(e["id"], e["kind"], e["expression"], e["apiServer"], e.get("says"))
              for e in entries]
    for entry in corpus:
        assert entry.api_server in OUTCOMES and entry.kind in RESOURCES, entry
    assert len({e.id for e in corpus}) == len(corpus), "ids are unique"
    return corpus
