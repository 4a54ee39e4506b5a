"""Nobody takes LoadBalancer places without being counted: reservations per admission, over
the real server (TLS, /validate) with the shipped cap of two."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from webhook.certs.files import GeneratedCertificates

from .harness import SNI, RunningServer, base_settings, load_object, make_review, start_server


@pytest.fixture
def server(certificates: GeneratedCertificates, tmp_path: Path) -> Iterator[RunningServer]:
    state = tmp_path / "cluster.yaml"
    state.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "shop"}}))
    running = start_server(base_settings(certificates, tmp_path, cluster_state=state),
                           certificates.ca_file)
    yield running
    running.stop()


def _generate_name_review(index: int) -> dict[str, object]:
    service = load_object("services/loadbalancer.yaml")
    obj = {**service, "metadata": {"generateName": "web-", "labels": {"app": "web"}}}
    review = make_review("CREATE", "shop", obj)
    assert review["request"]["name"] == ""  # what the API server sends before naming it
    return review


def test_two_hundred_creates_without_a_name_under_a_cap_of_two_allow_exactly_two(
    server: RunningServer,
) -> None:
    """Before: reservations were keyed on request.name, so a CREATE with an empty name
    reserved nothing and was never counted: 200 of 200 were allowed."""

    async def create(client: httpx.AsyncClient, index: int) -> bool:
        response = await client.post("/validate",
                                     content=orjson.dumps(_generate_name_review(index)),
                                     headers={"content-type": "application/json"},
                                     extensions=SNI)
        assert response.status_code == 200
        return bool(response.json()["response"]["allowed"])

    async def burst() -> list[bool]:
        async with server.async_client() as client:
            return await asyncio.gather(*(create(client, i) for i in range(200)))

    results = asyncio.run(burst())

    assert sum(results) == 2
    assert len(server.runtime.reservations) == 2


def test_a_repeated_uid_takes_a_place_of_its_own(server: RunningServer) -> None:
    first = _generate_name_review(0)
    again = _generate_name_review(1)
    again["request"]["uid"] = first["request"]["uid"]  # type: ignore[index]

    assert server.review("/validate", first)["allowed"] is True
    assert server.review("/validate", again)["allowed"] is True
    third = server.review("/validate", _generate_name_review(2))

    assert third["allowed"] is False
    assert "2 of 2" in third["status"]["message"]
