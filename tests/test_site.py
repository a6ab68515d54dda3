"""The built site: both languages, ids, tooltips, pinned links, self-contained.

These read the real site/ that the session built once (see conftest.py).
They cover every page found on disk, so a page added later is checked too.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from kvmdocs import rules
from kvmdocs.config import inherit_chain, read, settings
from kvmdocs.paths import LANGUAGES, ROOT, built_pages
from kvmdocs.terms import term_id

ZH, EN = LANGUAGES
CONFIG = settings()
# Text inside these is not prose: a mnemonic there needs no tooltip.
NOT_PROSE = {"code", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "a", "abbr", "script", "style", "svg", "title"}


@cache
def parse(path: Path) -> HTMLParser:
    return HTMLParser(path.read_text(encoding="utf-8"))


def content_pages(site: Path, lang=ZH) -> list[Path]:
    """Built pages of a language that come from docs/ (not 404 or assets)."""
    return [p for p in built_pages(lang.at(site)) if p.name != "404.html"]


def article(page: Path) -> Node:
    node = parse(page).css_first("article.md-content__inner")
    assert node is not None, f"{page} has no article"
    return node


def prose_text_nodes(node: Node) -> list[str]:
    """Text directly in prose elements, skipping code, headings, links, diagrams."""
    texts = []
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            texts.append(child.text(deep=False))
        elif child.tag not in NOT_PROSE and "mermaid" not in (child.attributes.get("class") or ""):
            texts.extend(prose_text_nodes(child))
    return texts


# --- structure ---------------------------------------------------------------


def test_strict_build_fails_on_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken link is a warning, and strict mode turns it into a failed build."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    docs = tmp_path / "docs"
    docs.mkdir()
    for page in CONFIG.nav:
        (docs / page).write_text((ZH.docs / page).read_text(encoding="utf-8"), encoding="utf-8")
    (docs / "index.md").write_text("# t\n\n[broken](no-such-page.md#nowhere)\n", encoding="utf-8")
    monkeypatch.chdir(ROOT)
    config = load_config(str(ZH.config), docs_dir=str(docs), site_dir=str(tmp_path / "site"))
    assert config.strict is True, "mkdocs.yml must set strict: true"
    with pytest.raises(Abort):
        mkdocs_build(config)


def _list_keys(data: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The key path of every list in a config mapping (palette, nav, snippets' auto_append ...)."""
    keys: list[tuple[str, ...]] = []
    for key, value in data.items():
        if isinstance(value, list):
            keys.append((*prefix, str(key)))
        elif isinstance(value, dict):
            keys += _list_keys(value, (*prefix, str(key)))
    return keys


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_no_list_is_set_twice_along_an_inherit_chain(lang) -> None:
    """MkDocs replaces an inherited list, Zensical appends to it: set each list in one file only."""
    chain = inherit_chain(lang.config)
    assert [p.name for p in chain][-1] == "mkdocs.base.yml", "both languages inherit the shared base"
    seen: dict[tuple[str, ...], str] = {}
    for path in chain:
        for key in _list_keys(read(path)):
            where = seen.setdefault(key, path.name)
            assert where == path.name, f"{'.'.join(key)} is a list in both {where} and {path.name}"
    assert settings(lang).nav == CONFIG.nav and settings(lang).tags == CONFIG.tags


def test_markdown_rules_pass() -> None:
    """Heading ids, pinned source links, raw HTML, mnemonics, language parity (errors only)."""
    errors = [str(f) for f in rules.check_all(seed=True) if not f.warning]
    assert not errors, "\n".join(errors)


def test_every_page_in_both_languages_with_same_ids(site_dir: Path) -> None:
    zh_pages = {p.relative_to(site_dir).as_posix() for p in content_pages(site_dir, ZH)}
    en_pages = {p.relative_to(site_dir / "en").as_posix() for p in content_pages(site_dir, EN)}
    assert zh_pages == en_pages
    assert {Path(p).with_suffix(".md").as_posix() for p in zh_pages} >= set(CONFIG.nav)
    for name in sorted(zh_pages):
        ids = []
        for root in (site_dir, site_dir / "en"):
            heads = article(root / name).css("h2[id], h3[id], h4[id]")
            ids.append([h.attributes["id"] for h in heads])
        assert ids[0] == ids[1], f"{name}: heading ids differ between zh and en"
        assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids[0]), f"{name}: non-ASCII id"


def test_404_page_in_each_language(site_dir: Path) -> None:
    for root, word in ((site_dir, "404"), (site_dir / "en", "404")):
        page = root / "404.html"
        assert page.is_file() and word in page.read_text(encoding="utf-8")


# --- tooltips and links ------------------------------------------------------------


def test_each_instruction_has_its_entry(site_dir: Path) -> None:
    for root in (site_dir, site_dir / "en"):
        page = root / CONFIG.instructions_page.replace(".md", ".html")
        ids = {n.attributes.get("id") for n in article(page).css("h2[id], h3[id]")}
        missing = [m for m in CONFIG.instructions if term_id(m) not in ids]
        assert not missing, f"{page}: no entry for {missing}"


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_mnemonics_in_prose_carry_tooltip_and_link(site_dir: Path, lang) -> None:
    defined = rules.defined_terms(lang)
    bare_re = re.compile(r"\b(" + "|".join(sorted(map(re.escape, defined), key=len, reverse=True)) + r")\b")
    wrapped: dict[str, int] = {}
    for page in content_pages(site_dir, lang):
        body = article(page)
        bare = [m.group(0) for text in prose_text_nodes(body) for m in bare_re.finditer(text)]
        assert not bare, f"{page.name}: {sorted(set(bare))} in prose without a tooltip"
        for link in body.css("a.kvm-term"):
            abbr = link.css_first("abbr")
            assert abbr is not None and abbr.attributes.get("title"), f"{page.name}: term link without a tooltip"
            term = abbr.text()
            assert term in defined
            page_name = CONFIG.instructions_page if term in CONFIG.instructions else CONFIG.glossary_page
            assert link.attributes["href"].endswith(page_name.replace(".md", ".html") + "#" + term_id(term))
            if page.name != CONFIG.instructions_page.replace(".md", ".html"):
                wrapped[term] = wrapped.get(term, 0) + 1
        for heading in body.css("h1, h2, h3, h4, h5, h6"):
            assert heading.css_first("abbr") is None, f"{page.name}: tooltip inside a heading"
    assert wrapped, "no tooltip links at all outside the instruction page"


def test_source_links_are_pinned_to_configured_tags(site_dir: Path) -> None:
    allowed = tuple(f"{CONFIG.base_url}/{tag}/source/" for tag in CONFIG.tags.values())
    seen = 0
    for lang in LANGUAGES:
        for page in content_pages(site_dir, lang):
            for link in article(page).css("a[href]"):
                href = link.attributes["href"] or ""
                if rules.KERNEL_SOURCE_HOSTS_RE.match(href):
                    assert href.startswith(allowed), f"{page.name}: unpinned kernel link {href}"
                    assert re.search(r"#L\d+(-L\d+)?$", href), f"{page.name}: source link without a line: {href}"
                    seen += 1
    assert seen > 0


def test_no_request_to_another_host(site_dir: Path) -> None:
    """Scripts, styles, fonts, images and frames all come from the site itself."""
    attrs = {
        "script": "src",
        "link": "href",
        "img": "src",
        "source": "src",
        "iframe": "src",
        "video": "src",
        "audio": "src",
        "embed": "src",
        "object": "data",
    }
    offenders = []
    for page in site_dir.rglob("*.html"):
        tree = parse(page)
        for tag, attr in attrs.items():
            for node in tree.css(f"{tag}[{attr}]"):
                if tag == "link" and (node.attributes.get("rel") or "") in ("canonical", "alternate"):
                    continue
                value = node.attributes.get(attr) or ""
                if urlsplit(value).scheme in ("http", "https") or value.startswith("//"):
                    offenders.append(f"{page.relative_to(site_dir)}: <{tag} {attr}={value}>")
        for node in tree.css("[style]"):
            if re.search(r"url\(\s*['\"]?(https?:)?//", node.attributes.get("style") or ""):
                offenders.append(f"{page.relative_to(site_dir)}: style url() to another host")
    for sheet in site_dir.rglob("*.css"):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        if re.search(r"@import\s+url\(\s*['\"]?https?:|url\(\s*['\"]?https?://(?!www\.w3\.org)", text):
            offenders.append(f"{sheet.relative_to(site_dir)}: remote url() or @import")
    assert not offenders, "\n".join(offenders[:20])


def test_mermaid_only_where_needed_and_accessible(site_dir: Path) -> None:
    diagrams = 0
    for lang in LANGUAGES:
        for page in content_pages(site_dir, lang):
            tree = parse(page)
            blocks = tree.css("pre.mermaid")
            has_script = any("mermaid.min.js" in (s.attributes.get("src") or "") for s in tree.css("script[src]"))
            assert has_script == bool(blocks), (
                f"{page.name}: Mermaid loaded {'without' if has_script else 'but no'} diagram"
            )
            for block in blocks:
                text = block.text()
                assert "accTitle:" in text and "accDescr" in text, f"{page.name}: diagram without accTitle/accDescr"
                diagrams += 1
    assert diagrams > 0


# --- page furniture ----------------------------------------------------------------


def tracked(path: Path) -> bool:
    result = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True)
    return result.returncode == 0


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_every_page_has_date_edit_link_navigation_permalinks(site_dir: Path, lang) -> None:
    pages = content_pages(site_dir, lang)
    for page in pages:
        tree = parse(page)
        source = lang.docs / page.relative_to(site_dir if lang is ZH else site_dir / "en").with_suffix(".md")
        edit = tree.css_first("a.kvm-edit")
        assert edit is not None and edit.attributes["href"].endswith(f"docs/{lang.code}/{source.name}")
        if tracked(source):
            date = tree.css_first("time.kvm-updated-date")
            assert date is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.attributes.get("datetime") or "")
            assert tree.css_first(".kvm-authors-list").text().strip(), f"{page.name}: no contributors"
        assert tree.css_first("a.kvm-pdf") is not None, f"{page.name}: no link to the PDF book"
        for heading in article(page).css("h2[id]"):
            assert heading.css_first("a.headerlink") is not None, f"{page.name}: h2 without permalink"
    footers = [bool(parse(p).css("a.md-footer__link")) for p in pages]
    assert all(footers), "every page needs previous/next links"


# --- the traced path is tied to the source and the glossary --------------------------


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_every_nav_page_links_source_and_glossary(site_dir: Path, lang) -> None:
    """Each page in the navigation cites at least one pinned line and one glossary entry."""
    root = lang.at(site_dir).site
    glossary = CONFIG.glossary_page.replace(".md", ".html")
    lacking = []
    for page in CONFIG.nav:
        html = root / page.replace(".md", ".html")
        body = article(html)
        hrefs = [a.attributes.get("href") or "" for a in body.css("a[href]")]
        if not any("/source/" in h and "#L" in h for h in hrefs if h.startswith(CONFIG.base_url)):
            lacking.append(f"{page}: no pinned source link")
        if page != CONFIG.glossary_page and not any(h.split("#")[0].endswith(glossary) and "#" in h for h in hrefs):
            lacking.append(f"{page}: no link to a glossary entry")
    assert not lacking, "\n".join(lacking)


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_every_glossary_entry_is_linked_from_elsewhere(site_dir: Path, lang) -> None:
    root = lang.at(site_dir).site
    glossary = root / CONFIG.glossary_page.replace(".md", ".html")
    # Entries are the h3s; the h2s only group them.
    entries = {h.attributes["id"] for h in article(glossary).css("h3[id]")}
    assert entries, "the glossary has no entries"
    linked: set[str] = set()
    for page in content_pages(site_dir, lang):
        if page == glossary:
            continue
        for a in article(page).css("a[href]"):
            path, _, fragment = (a.attributes.get("href") or "").partition("#")
            if path.endswith(glossary.name) and fragment:
                linked.add(fragment)
    assert not entries - linked, f"glossary entries nobody links to: {sorted(entries - linked)}"


def test_lab_links_land_on_real_sections(site_dir: Path) -> None:
    """Every site link the lab prints names a page and section that exist in both languages."""
    from kvmlab import lab

    sections = {k.section for paths in lab.PATHS.values() for k in paths if k.section}
    assert sections
    missing = []
    for section in sorted(sections):
        page, _, fragment = section.partition("#")
        for lang in LANGUAGES:
            html = lang.at(site_dir).site / page
            if not html.is_file() or parse(html).css_first(f'[id="{fragment}"]') is None:
                missing.append(f"{lang.code}: {section}")
    assert not missing, missing
