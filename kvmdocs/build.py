"""Build the whole site: vendored assets, both languages, git facts.

One ``site/`` comes out, used as is for HTTP, for file://, for the link check,
the PDF and deployment. The Chinese build goes first because it cleans
``site/``; the English one then fills ``site/en/``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kvmdocs import gitmeta
from kvmdocs.paths import LANGUAGES, NODE_MODULES, ROOT, VENDOR

# (file in node_modules, where the site serves it) — versions pinned in package.json
VENDORED = (
    ("mermaid/dist/mermaid.min.js", "mermaid/mermaid.min.js"),
    ("mermaid/LICENSE", "mermaid/LICENSE"),
    ("iframe-worker/shim/index.js", "iframe-worker/shim.js"),
    ("iframe-worker/LICENSE", "iframe-worker/LICENSE"),
)
ENGINES = {"mkdocs": "mkdocs", "properdocs": "properdocs"}


class BuildError(RuntimeError):
    """A build step failed; the message says which and what to do."""


@dataclass
class BuildReport:
    """What a build did, for the command line and the benchmark."""

    seconds: dict[str, float]
    pages_with_git_facts: int


def vendor_assets(node_modules: Path = NODE_MODULES, vendor: Path = VENDOR) -> None:
    """Copy the pinned browser assets into the theme folder MkDocs copies from."""
    for source, target in VENDORED:
        src = node_modules / source
        if not src.is_file():
            raise BuildError(f"{src.relative_to(ROOT)} is missing: run `make deps` (npm ci) first")
        dst = vendor / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)


def run_engine(engine: str, config: Path, strict: bool = True, quiet: bool = True) -> None:
    """Run one generator on one config; raise with its own last lines on failure."""
    command = [sys.executable, "-m", ENGINES[engine], "build", "-f", str(config)]
    if strict:
        command.append("--strict")
    if quiet:
        command.append("--quiet")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{engine} build of {config.name} failed:\n{tail}")


def build(engine: str = "mkdocs", strict: bool = True) -> BuildReport:
    """Build every language into site/ and fill in the git facts."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    vendor_assets()
    seconds["vendor"] = time.perf_counter() - start
    for lang in LANGUAGES:
        start = time.perf_counter()
        run_engine(engine, lang.config, strict=strict)
        seconds[lang.code] = time.perf_counter() - start
    start = time.perf_counter()
    filled = gitmeta.fill_site()
    seconds["git"] = time.perf_counter() - start
    return BuildReport(seconds, filled)
