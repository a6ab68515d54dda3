#!/usr/bin/env python3
"""Build the site with ProperDocs and Zensical too, and report what differs from MkDocs.

Usage: python scripts/build_compat.py [--engine NAME ...] [--keep DIR]

MkDocs 1.6 is no longer maintained; ProperDocs (its drop-in fork) and Zensical
(Material's successor, which reads mkdocs.yml) are where the site can go. Each
generator builds an unchanged copy of the sources (mkdocs*.yml, docs/,
includes/, overrides/) in a temporary folder, never site/, both languages with
--strict, then the git dates are filled in as `make build` does. The report
compares each build with the MkDocs one: pages, search index (and whether
Chinese is segmented), diagrams, tooltips, dates and contributors, pinned
source links, heading ids, the language switch and internal links.

When a generator stops on one of the theme overrides, the report names it,
builds again without that file and goes on, so one gap does not hide the rest.
This is a report, not a gate: exit status 0 whatever differs, 1 if the MkDocs
baseline itself fails, 2 if a generator is not installed (the pip command to
run follows) or on bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:
    from selectolax.lexbor import LexborHTMLParser
except ImportError:  # run with a Python outside .venv
    print("build_compat: selectolax is missing: run `make deps` and use .venv/bin/python", file=sys.stderr)
    sys.exit(2)

from kvmdocs import gitmeta  # noqa: E402 (after the path set-up)
from kvmdocs.build import BuildError, vendor_assets  # noqa: E402
from kvmdocs.config import settings  # noqa: E402
from kvmdocs.paths import LANGUAGES, Language  # noqa: E402

# Copied into each temporary build: every mkdocs*.yml (the language files and
# the base they INHERIT), and these folders.
CONFIGS = "mkdocs*.yml"
SOURCES = ("docs", "includes", "overrides")
COMPAT_REQUIREMENTS = "requirements-compat.txt"
BIN = Path(sys.executable).parent
# generator -> (module that must import, command before "-f CONFIG")
ENGINES: dict[str, tuple[str, list[str]]] = {
    "mkdocs": ("mkdocs", [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]),
    "properdocs": ("properdocs", [sys.executable, "-m", "properdocs", "build", "--strict", "--quiet"]),
    "zensical": ("zensical", [str(BIN / "zensical"), "build", "--strict"]),
}
# Search index files each generator is known to write (per language root).
SEARCH_FILES = ("search/search_index.json", "search/search_index.js", "search.json", "search.js")
# A template error names the partial it stopped in: "error in "partials/source-file.html"".
TEMPLATE_ERROR_RE = re.compile(r'error in "(?P<template>[\w./-]+\.html)"')
MAX_RETRIES = 4


class Missing(Exception):  # noqa: N818 (a state, not a failure of this script)
    """A generator is not installed: exit 2 with the pip command."""


@dataclass
class Build:
    """One generator's build of both languages into a temporary tree."""

    engine: str
    root: Path  # the copied sources; the site is root/site
    ok: bool = False
    error: str = ""
    removed_overrides: list[str] = field(default_factory=list)  # workarounds applied to get a build
    seconds: float = 0.0


@dataclass
class Facts:
    """What one language of one build contains, reduced to comparable facts."""

    pages: set[str] = field(default_factory=set)
    search_files: list[str] = field(default_factory=list)
    search_docs: int = 0
    search_segmented: int = 0  # zero-width spaces jieba put into the index
    diagrams: int = 0
    mermaid_script_pages: int = 0
    diagram_pages: int = 0
    abbr: int = 0
    term_links: int = 0
    dated: int = 0
    credited: int = 0
    source_links: set[str] = field(default_factory=set)
    heading_ids: set[str] = field(default_factory=set)
    same_page_switch: int = 0
    switch_links: int = 0  # language links in all headers
    palette_options: int = 0  # colour-scheme toggles in all headers
    stylesheets: set[str] = field(default_factory=set)  # the theme's CSS, hashes dropped
    remote_assets: int = 0
    broken_links: dict[str, int] = field(default_factory=dict)  # reason -> count (PDF books excluded)


def require(engines: list[str]) -> None:
    """Raise Missing unless every generator asked for is importable."""
    missing = [name for name in engines if importlib.util.find_spec(ENGINES[name][0]) is None]
    if missing:
        raise Missing(f"not installed: {', '.join(missing)}; run: {BIN / 'pip'} install -r {COMPAT_REQUIREMENTS}")


def copy_sources(dest: Path) -> None:
    """The site's sources as they are, minus any earlier output."""
    dest.mkdir(parents=True)
    for config in ROOT.glob(CONFIGS):
        shutil.copy2(config, dest / config.name)
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)


def last_error(output: str) -> str:
    """The line that says why a build failed, without the traceback around it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^(\w+Error|Error|Aborted|ERROR)\b|error", line) and not line.startswith("File "):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def run_build(engine: str, root: Path) -> Build:
    """Build zh then en (as scripts/build.py does); step around failing overrides and say so."""
    build = Build(engine, root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env["NO_MKDOCS_2_WARNING"] = "1"
    start = time.perf_counter()
    for _ in range(MAX_RETRIES + 1):
        shutil.rmtree(root / "site", ignore_errors=True)
        failure = ""
        for lang in LANGUAGES:
            command = [*ENGINES[engine][1], "-f", str(root / lang.config.name)]
            result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                failure = f"{lang.config.name}: {last_error(result.stderr + result.stdout)}"
                break
        if not failure:
            build.ok = True
            break
        build.error = failure
        # the innermost template named that is one of ours (the theme's own are not ours to remove)
        ours = [t for t in TEMPLATE_ERROR_RE.findall(failure) if (root / "overrides" / t).is_file()]
        if not ours:
            break
        (root / "overrides" / ours[-1]).unlink()  # only in the temporary copy
        build.removed_overrides.append(f"overrides/{ours[-1]}: {failure}")
    build.seconds = time.perf_counter() - start
    return build


def site_language(build: Build, lang: Language) -> Language:
    """``lang`` as built into this build's temporary site (zh at site/, en at site/en/)."""
    return dataclasses.replace(lang, site=build.root / "site" / lang.prefix)


def fill_dates(build: Build) -> None:
    """Put git dates and contributors into the pages, from the real repository's history."""
    cache: dict[Path, gitmeta.PageHistory] = {}
    for lang in LANGUAGES:
        for page in pages_of(site_language(build, lang)):
            text = page.read_text(encoding="utf-8")
            new = gitmeta.fill(text, lang.docs, cache)
            if new != text:
                page.write_text(new, encoding="utf-8")


def pages_of(lang: Language) -> list[Path]:
    """HTML pages of one language, not those of a language nested inside it, nor assets."""
    nested = [lang.site / other.prefix for other in LANGUAGES if other.prefix and not lang.prefix]
    return sorted(
        page
        for page in lang.site.rglob("*.html")
        if not any(page.is_relative_to(inner) for inner in nested) and "assets" not in page.relative_to(lang.site).parts
    )


def broken_links(site: Path) -> dict[str, int]:
    """Broken internal references by reason, from scripts/check_links.py (the PDF books are built later)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_links.py"), str(site), "--format", "json"],
        capture_output=True,
        text=True,
    )
    try:
        broken = json.loads(result.stdout).get("broken", [])
    except json.JSONDecodeError:
        return {"check failed": 1}
    counts: dict[str, int] = {}
    for item in broken:
        if "pdf/" in item.get("href", ""):
            continue
        counts[item["reason"]] = counts.get(item["reason"], 0) + 1
    return counts


def measure(build: Build, lang: Language) -> Facts:
    """The comparable facts of one language of one build."""
    built = site_language(build, lang)
    facts = Facts()
    base_url = settings(lang).base_url
    for page in pages_of(built):
        name = page.relative_to(built.site).as_posix()
        facts.pages.add(name)
        tree = LexborHTMLParser(page.read_text(encoding="utf-8"))
        article = tree.css_first("article") or tree.body
        diagrams = len(tree.css("pre.mermaid, div.mermaid"))
        facts.diagrams += diagrams
        facts.diagram_pages += bool(diagrams)
        scripts = [s.attributes.get("src") or "" for s in tree.css("script[src]")]
        facts.mermaid_script_pages += any("mermaid" in src for src in scripts)
        facts.remote_assets += sum(src.startswith(("http:", "https:", "//")) for src in scripts)
        facts.remote_assets += sum(
            (node.attributes.get("href") or "").startswith(("http:", "https:", "//"))
            for node in tree.css("link[rel=stylesheet], link[rel=preconnect]")
        )
        if article is None:
            continue
        facts.abbr += len(article.css("abbr[title]"))
        facts.term_links += len(article.css("a.kvm-term"))
        for link in article.css("a[href]"):
            href = link.attributes.get("href") or ""
            if base_url and href.startswith(base_url + "/"):
                facts.source_links.add(f"{name} {href}")
        facts.heading_ids.update(f"{name}#{h.attributes['id']}" for h in article.css("h2[id], h3[id]"))
        date = tree.css_first("time.kvm-updated-date")
        facts.dated += bool(date is not None and date.attributes.get("datetime"))
        authors = tree.css_first(".kvm-authors-list")
        facts.credited += bool(authors is not None and authors.text().strip())
        switch = [a.attributes.get("href") or "" for a in tree.css("a.kvm-lang-switch")]
        facts.switch_links += len(switch)
        facts.same_page_switch += any(href.removeprefix("./").endswith(name) and "/" in href for href in switch)
        facts.palette_options += len(tree.css("input[data-md-color-scheme]"))
        for sheet in tree.css("link[rel=stylesheet]"):
            href = (sheet.attributes.get("href") or "").removeprefix("./")
            facts.stylesheets.add(re.sub(r"\.[0-9a-f]{8}\.min\.css$", ".css", href.rpartition("assets/")[2]))
    for candidate in SEARCH_FILES:
        path = built.site / candidate
        if path.is_file():
            facts.search_files.append(candidate)
            if candidate.endswith(".json"):
                entries = json.loads(path.read_text(encoding="utf-8"))
                entries = entries.get("docs") or entries.get("items") or []
                facts.search_docs = max(facts.search_docs, len(entries))
                if lang.code == "zh":  # jieba marks word boundaries with zero-width spaces
                    segmented = sum((e.get("title", "") + e.get("text", "")).count("\u200b") for e in entries)
                    facts.search_segmented = max(facts.search_segmented, segmented)
    if not lang.prefix:
        facts.broken_links = broken_links(built.site)
    return facts


def compare(name: str, base: Facts, other: Facts) -> list[str]:
    """One line per fact that differs from the MkDocs build (empty: the same)."""
    lines = []

    def differ(label: str, left: object, right: object, detail: Callable[[], str] = lambda: "") -> None:
        if left != right:
            extra = detail()
            lines.append(f"  {name}: {label}: mkdocs {left}, this {right}" + (f" ({extra})" if extra else ""))

    def sets(a: set[str], b: set[str]) -> str:
        only_a, only_b = sorted(a - b), sorted(b - a)
        parts = [f"only mkdocs: {only_a[:3]}" if only_a else "", f"only this: {only_b[:3]}" if only_b else ""]
        return ", ".join(p for p in parts if p)

    differ("pages", len(base.pages), len(other.pages), lambda: sets(base.pages, other.pages))
    differ("search index files", base.search_files, other.search_files)
    differ("search entries", base.search_docs, other.search_docs)
    differ(
        "Chinese search segmentation (zero-width spaces)",
        base.search_segmented,
        other.search_segmented,
        lambda: "the index has no jieba word boundaries" if not other.search_segmented else "",
    )
    differ("diagrams (pre.mermaid)", base.diagrams, other.diagrams)
    differ("pages loading Mermaid", base.mermaid_script_pages, other.mermaid_script_pages)
    differ("tooltips (abbr)", base.abbr, other.abbr)
    differ("tooltip links (a.kvm-term)", base.term_links, other.term_links)
    differ("pages with a git date", base.dated, other.dated)
    differ("pages with contributors", base.credited, other.credited)
    differ(
        "pinned source links",
        len(base.source_links),
        len(other.source_links),
        lambda: sets(base.source_links, other.source_links),
    )
    differ(
        "heading ids", len(base.heading_ids), len(other.heading_ids), lambda: sets(base.heading_ids, other.heading_ids)
    )
    differ("pages whose language switch keeps the page", base.same_page_switch, other.same_page_switch)
    doubled = "INHERIT appended a list set in two files of one chain instead of replacing it"
    differ(
        "language links in headers",
        base.switch_links,
        other.switch_links,
        lambda: doubled * (other.switch_links == 2 * base.switch_links),
    )
    differ(
        "colour-scheme toggles in headers",
        base.palette_options,
        other.palette_options,
        lambda: doubled * (other.palette_options == 2 * base.palette_options),
    )
    differ("theme stylesheets", sorted(base.stylesheets), sorted(other.stylesheets))
    differ("assets from other hosts", base.remote_assets, other.remote_assets)
    differ("broken internal links in the whole site, by reason", base.broken_links, other.broken_links)
    return lines


def report(builds: dict[str, Build], facts: dict[str, dict[str, Facts]]) -> list[str]:
    """The whole report as lines of text."""
    lines = []
    base = facts.get("mkdocs", {})
    for engine, build in builds.items():
        state = f"built in {build.seconds:.1f}s" if build.ok else f"FAILED: {build.error}"
        lines.append(f"{engine}: {state}")
        for note in build.removed_overrides:
            lines.append(f"  gap: stopped on {note}; built again without that override")
        if not build.ok or engine == "mkdocs":
            if engine == "mkdocs" and build.ok:
                for code, f in base.items():
                    lines.append(
                        f"  {code}: {len(f.pages)} pages, search {f.search_files} ({f.search_docs} entries), "
                        f"{f.diagrams} diagrams, {f.abbr} tooltips, {f.dated} dated, "
                        f"{len(f.source_links)} source links"
                        + (f", broken links in the whole site {f.broken_links or 0}" if code == "zh" else "")
                    )
            continue
        diffs = []
        for code in facts[engine]:
            diffs += compare(code, base[code], facts[engine][code])
        lines += diffs or ["  same as mkdocs on every fact measured"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Exit status: 0 report printed, 1 MkDocs failed, 2 missing tool."
    )
    parser.add_argument(
        "--engine", action="append", choices=[e for e in ENGINES if e != "mkdocs"], help="only this one (repeatable)"
    )
    parser.add_argument("--keep", type=Path, help="keep the temporary builds in this new folder (for a closer look)")
    args = parser.parse_args(argv)
    engines = ["mkdocs", *(args.engine or [e for e in ENGINES if e != "mkdocs"])]
    try:
        require(engines)
        vendor_assets()
    except Missing as error:
        print(f"build_compat: {error}", file=sys.stderr)
        return 2
    except BuildError as error:
        print(f"build_compat: {error}", file=sys.stderr)
        return 2
    if args.keep is not None and args.keep.exists():
        print(f"build_compat: --keep {args.keep} exists; give a new folder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kvmdocs-compat-") as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        builds: dict[str, Build] = {}
        facts: dict[str, dict[str, Facts]] = {}
        for engine in engines:
            copy_sources(work / engine)
            build = builds[engine] = run_build(engine, work / engine)
            if build.ok:
                fill_dates(build)
                facts[engine] = {lang.code: measure(build, lang) for lang in LANGUAGES}
            print(f"build_compat: {engine} {'done' if build.ok else 'failed'}", file=sys.stderr)
        print("\n".join(report(builds, facts)))
        if args.keep:
            print(f"builds kept in {work}/<engine>/site")
    return 0 if builds["mkdocs"].ok else 1


if __name__ == "__main__":
    sys.exit(main())
