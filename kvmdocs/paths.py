"""Where things are in the repository, and the two languages the site has.

Every script and test takes paths from here, so a moved folder is one edit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SITE = ROOT / "site"
INCLUDES = ROOT / "includes"
VENDOR = ROOT / "overrides" / "assets" / "vendor"
NODE_MODULES = ROOT / "node_modules"
SEED_OVERLAP = ROOT.parent / "shared" / "tools" / "seed_overlap.py"

# The browser the tests and the PDF export drive: Debian's Chromium, never a
# download (Playwright's own browser fetch does not work offline). CHROMIUM
# overrides the path, e.g. on a runner that has Chromium elsewhere.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying hosts that
# a closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass(frozen=True)
class Language:
    """One language of the site: its config, its Markdown and its built tree."""

    code: str
    config: Path
    docs: Path
    site: Path
    prefix: str  # URL prefix of this language inside site/ ("" or "en/")

    def at(self, site: Path) -> Language:
        """The same language, built into another site directory (a test's, a temp dir)."""
        return replace(self, site=site / self.prefix if self.prefix else site)


LANGUAGES: tuple[Language, ...] = (
    Language("zh", ROOT / "mkdocs.yml", DOCS / "zh", SITE, ""),
    Language("en", ROOT / "mkdocs.en.yml", DOCS / "en", SITE / "en", "en/"),
)
DEFAULT_LANGUAGE = LANGUAGES[0]


def language(code: str) -> Language:
    """The language with this code; KeyError names the known ones."""
    for lang in LANGUAGES:
        if lang.code == code:
            return lang
    raise KeyError(f"unknown language {code!r} (known: {', '.join(lang.code for lang in LANGUAGES)})")


def built_pages(lang: Language) -> list[Path]:
    """HTML pages of one language in its site dir, not those of a language nested inside it."""
    root = lang.site.parent if lang.prefix else lang.site
    others = [other.at(root).site for other in LANGUAGES if other.code != lang.code]
    nested = [site for site in others if site != lang.site and site.is_relative_to(lang.site)]
    return sorted(
        page
        for page in lang.site.rglob("*.html")
        if not any(page.is_relative_to(inner) for inner in nested) and "assets" not in page.relative_to(lang.site).parts
    )
