"""Where things are in the repository, and the two languages the site has.

Every script and test takes paths from here, so a moved folder is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SITE = ROOT / "site"
INCLUDES = ROOT / "includes"
VENDOR = ROOT / "overrides" / "assets" / "vendor"
NODE_MODULES = ROOT / "node_modules"
SEED_OVERLAP = ROOT.parent / "shared" / "tools" / "seed_overlap.py"


@dataclass(frozen=True)
class Language:
    """One language of the site: its config, its Markdown and its built tree."""

    code: str
    config: Path
    docs: Path
    site: Path
    prefix: str  # URL prefix of this language inside site/ ("" or "en/")


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
    """HTML pages of one language in site/, not those of a language nested inside it."""
    nested = [other.site for other in LANGUAGES if other.site != lang.site and other.site.is_relative_to(lang.site)]
    return sorted(
        page
        for page in lang.site.rglob("*.html")
        if not any(page.is_relative_to(inner) for inner in nested) and "assets" not in page.relative_to(lang.site).parts
    )
