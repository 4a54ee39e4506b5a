"""`edgewarden report --html`: a self-contained exposure and cost page."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .helpers import CLUSTER, POLICIES, run


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "exposure.html"
    result = run("report", "--html", str(out), "--cluster-state", CLUSTER, "--policies", POLICIES)
    assert result.exit_code == 0, result.output
    return out


def test_page_is_self_contained_without_scripts_or_external_assets(page: Path) -> None:
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "src=", "http://", "url("):
        assert forbidden not in text, forbidden


def test_names_from_the_cluster_are_escaped(page: Path) -> None:
    text = page.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_page_shows_loadbalancers_against_the_cap_and_the_cost(page: Path) -> None:
    text = page.read_text()
    assert "3 / 2 over cap" in text
    assert "1 / 1 at cap" in text
    # 5 LoadBalancers at the default $18.25; production's two HTTPS ones could share one.
    assert "$91.25" in text
    assert "$18.25" in text
    assert 'LoadBalancer <span class="tag public">public</span>' in text
    assert 'LoadBalancer <span class="tag internal">internal</span>' in text


def test_cost_per_lb_is_a_setting(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    run(
        "report",
        "--html",
        str(out),
        "--cluster-state",
        CLUSTER,
        "--policies",
        POLICIES,
        "--cost-per-lb",
        "20",
    )
    assert "$100.00" in out.read_text()


def test_page_lists_policy_violations(page: Path) -> None:
    text = page.read_text()
    assert "deny-nodeport-in-production" in text
    assert "Service shop-admin is NodePort" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium Debian package")
def test_page_renders_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "page.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                "--window-size=1280,1600",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1600)
    assert len(data) > 50_000  # a rendered page, not a blank canvas
