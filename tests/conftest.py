"""Shared fixtures: the site is built once per run, one browser is shared.

``make test`` builds site/ (and the PDFs) first and passes
``--prebuilt-site site``; run alone, pytest builds site/ itself.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmdocs.build import build
from kvmdocs.paths import CHROMIUM, CHROMIUM_ARGS, SITE


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--prebuilt-site", type=Path, default=None, help="use this already built site/ instead of building"
    )


@pytest.fixture(scope="session")
def site_dir(request: pytest.FixtureRequest) -> Path:
    """The built site: prebuilt by make, or built here once."""
    prebuilt: Path | None = request.config.getoption("--prebuilt-site")
    if prebuilt is not None:
        if not (prebuilt / "index.html").is_file():
            pytest.fail(f"--prebuilt-site {prebuilt} has no index.html: run `make build` first")
        return prebuilt.resolve()
    build()
    return SITE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_root(site_dir: Path) -> Iterator[str]:
    """The site served over HTTP on a free localhost port."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Debian Chromium for the whole run."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make deps` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield instance
        instance.close()
