"""Fill each built page's "last updated" date and contributors from git.

MkDocs only renders a placeholder (``overrides/partials/source-file.html``);
this runs after the build, so it works the same under MkDocs, ProperDocs and
any generator that renders Material's partials, and needs no plugin. Without
git history (a tarball, a shallow clone) the facts stay empty and CSS hides
them, rather than showing a wrong date.
"""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kvmdocs.paths import LANGUAGES, ROOT, built_pages

PLACEHOLDER_RE = re.compile(
    r'(<aside class="md-source-file kvm-page-meta" data-kvm-src="(?P<src>[^"]+)">)(?P<body>.*?)(</aside>)', re.S
)


@dataclass(frozen=True)
class PageHistory:
    """What git knows about one Markdown file."""

    updated: str | None  # ISO date of the last commit touching it
    authors: tuple[str, ...]  # by number of commits, most first


def history(path: Path, repo: Path = ROOT) -> PageHistory:
    """Last commit date and authors of ``path``; empty when git cannot tell."""
    try:
        out = subprocess.run(
            ["git", "log", "--follow", "--format=%as%x09%aN", "--", str(path.relative_to(repo))],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError, ValueError):
        return PageHistory(None, ())
    rows = [line.split("\t", 1) for line in out.splitlines() if "\t" in line]
    if not rows:
        return PageHistory(None, ())
    counts: dict[str, int] = {}
    for _, name in rows:
        counts[name] = counts.get(name, 0) + 1
    authors = tuple(sorted(counts, key=lambda name: (-counts[name], name)))
    return PageHistory(rows[0][0], authors)


def fill(page_html: str, docs_dir: Path, cache: dict[Path, PageHistory]) -> str:
    """Return ``page_html`` with its placeholder filled from git history."""

    def replace(match: re.Match[str]) -> str:
        source = docs_dir / html.unescape(match["src"])
        if source not in cache:
            cache[source] = history(source)
        facts = cache[source]
        body = match["body"]
        if facts.updated:
            body = body.replace(
                '<time class="kvm-updated-date"></time>',
                f'<time class="kvm-updated-date" datetime="{facts.updated}">{facts.updated}</time>',
            )
        if facts.authors:
            names = ", ".join(html.escape(name) for name in facts.authors)
            empty = '<span class="kvm-authors-list"></span>'
            body = body.replace(empty, f'<span class="kvm-authors-list">{names}</span>')
        return match.group(1) + body + match.group(4)

    return PLACEHOLDER_RE.sub(replace, page_html)


def fill_site() -> int:
    """Fill every built page of every language; returns the pages changed."""
    changed = 0
    cache: dict[Path, PageHistory] = {}
    for lang in LANGUAGES:
        for page in built_pages(lang):
            text = page.read_text(encoding="utf-8")
            new = fill(text, lang.docs, cache)
            if new != text:
                page.write_text(new, encoding="utf-8")
                changed += 1
    return changed
