"""Print the built site as one PDF book per language.

Toolchain (for the README): headless Chromium through Playwright, the Debian
Chromium the browser tests already use. It runs Mermaid, so every diagram is
the site's own vector SVG; it embeds the system Noto CJK fonts and writes
named destinations for internal links, from which pypdf builds the outline.
WeasyPrint (behind mkdocs-with-pdf) runs no JavaScript, so it prints no
diagrams, and took 50 s for both books against Chromium's 21 s
(scripts/bench_pdf.py, 2 busy cores, 146 + 153 pages, 11 diagrams each).

How a book is made: the articles of the built pages are read in navigation
order and assembled into one print page (cover, contents, pages), with ids
prefixed by the page slug and links rewritten to jump inside the book. The
page is served to Chromium from memory under a made-up origin that maps onto
``site/``, so relative asset URLs work, nothing is written into the site and
any request for another host is refused. Mermaid renders each diagram there;
one Mermaid error fails the book. Chromium prints twice: the first PDF says on
which page each heading landed (its named destinations), those numbers go into
the contents, the second print is the book. pypdf then adds the outline (pages
and their h2 sections) and the document's metadata.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import lxml.html
from lxml.html import HtmlElement

from kvmdocs.config import load, settings
from kvmdocs.paths import CHROMIUM, CHROMIUM_ARGS, LANGUAGES, ROOT, Language, language

CSS = Path(__file__).with_name("pdf.css")
# The print page and the site's files are served under this origin by a
# Playwright route; ".invalid" can never resolve, so nothing leaks out.
BOOK_ORIGIN = "http://kvm-book.invalid/"
PRINT_PAGE = "__kvm_book__.html"
MERMAID_ERROR = "Syntax error in text"
MAX_PRINTS = 3  # a contents page number that moves the layout gets one more pass
# The book's text is 12px where the site's is 16px; diagrams shrink alike.
DIAGRAM_SCALE = 0.75
PAPER_WIDTH_MM = 210  # A4
PAPER = {"format": "A4", "margin": {"top": "16mm", "bottom": "18mm", "left": "15mm", "right": "15mm"}}

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "contents": "目录",
        "language": "语言",
        "language_name": "简体中文",
        "kernel": "追踪的内核",
        "commit": "源码提交",
        "built": "生成日期",
        "uncommitted": "（另有未提交的修改）",
        "annotations": "代码注释",
        "def_open": "（",
        "def_close": "）",
    },
    "en": {
        "contents": "Contents",
        "language": "Language",
        "language_name": "English",
        "kernel": "Kernel traced",
        "commit": "Source commit",
        "built": "Built",
        "uncommitted": " (plus uncommitted changes)",
        "annotations": "Code annotations",
        "def_open": " (",
        "def_close": ")",
    },
}


class PdfError(RuntimeError):
    """A book could not be made (a diagram failed, the browser failed): exit 1."""


class PdfInputError(PdfError):
    """The input is unusable (no built site, a page missing, no Chromium): exit 2."""


@dataclass(frozen=True)
class GitFacts:
    """Which sources a book was printed from, for its cover."""

    commit: str  # short hash, "" without git history
    date: str  # committer date, ISO 8601
    dirty: bool  # docs/ differs from that commit


@dataclass
class BookPage:
    """One site page as it goes into the book."""

    slug: str  # id prefix, unique in the book ("vm", "sub-page")
    href: str  # built file, relative to the language root ("vm.html")
    title: str
    sections: list[tuple[str, str]]  # (book id, title) of each h2
    body: HtmlElement  # the article, rewritten for print
    ids: dict[str, str] = field(default_factory=dict)  # site id -> book id


@dataclass(frozen=True)
class BookReport:
    """What one export produced, for the command line and the benchmark."""

    lang: str
    path: Path
    pages: int
    diagrams: int
    prints: int
    seconds: float
    warnings: tuple[str, ...]


def book_name(code: str) -> str:
    """File name of a language's book, as the site's PDF links expect it."""
    return f"kvm-internals-{code}.pdf"


def git_facts(repo: Path = ROOT) -> GitFacts:
    """Last commit (short hash, date) and whether docs/ has changes on top."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit, _, date = git("log", "-1", "--format=%h %cI").partition(" ")
        dirty = bool(git("status", "--porcelain", "--", "docs", "includes"))
    except (OSError, subprocess.CalledProcessError):
        return GitFacts("", "", False)
    return GitFacts(commit, date, dirty)


def build_date() -> str:
    """Today (UTC), or SOURCE_DATE_EPOCH's day for a reproducible build."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch and epoch.isdigit() else datetime.now(UTC)
    return moment.date().isoformat()


# --- reading and rewriting the built pages -----------------------------------


def _classes(el: HtmlElement) -> set[str]:
    return set((el.get("class") or "").split())


def _by_class(root: HtmlElement, name: str, tag: str = "*") -> list[HtmlElement]:
    return root.xpath(f".//{tag}[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")


def _in_svg(el: HtmlElement) -> bool:
    return any(parent.tag == "svg" for parent in el.iterancestors())


def _text(el: HtmlElement) -> str:
    return " ".join(el.text_content().split())


def _replace_tag(el: HtmlElement, tag: str, classes: str) -> None:
    """Turn ``el`` into another element in place, keeping its children."""
    el.tag = tag
    for attr in list(el.attrib):
        del el.attrib[attr]
    el.set("class", classes)


def _insert_after(el: HtmlElement, new: HtmlElement) -> None:
    """``el.addnext`` that keeps ``el``'s tail text after the new element."""
    new.tail, el.tail = el.tail, None
    el.addnext(new)


def page_slug(source: str) -> str:
    """Id prefix for a page: its Markdown path without .md, slashes as hyphens."""
    return source.removesuffix(".md").replace("/", "-")


def read_article(path: Path) -> tuple[HtmlElement, HtmlElement]:
    """The page and its ``article.md-content__inner``; PdfInputError if either is missing."""
    try:
        doc = lxml.html.document_fromstring(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise PdfInputError(f"cannot read {path}: {error}") from error
    found = _by_class(doc, "md-content__inner", "article")
    if not found:
        raise PdfInputError(f"{path} has no article.md-content__inner (not a page built by this site)")
    return doc, found[0]


def prepare_page(article: HtmlElement, source: str, href: str, lang_code: str, src_tag: str) -> BookPage:
    """Rewrite one article for print, except its links (they need every page's ids)."""
    body = deepcopy(article)
    strings = STRINGS.get(lang_code, STRINGS["en"])
    slug = page_slug(source)
    # Site chrome inside the article: edit/PDF buttons, permalinks, git facts.
    for el in [
        *_by_class(body, "md-content__button"),
        *_by_class(body, "headerlink", "a"),
        *_by_class(body, "md-source-file"),
        *body.xpath(".//script"),
    ]:
        el.drop_tree()
    h1 = next(iter(body.xpath(".//h1")), None)
    title = _text(h1) if h1 is not None else slug
    # Ids unique in the book: the title becomes the slug, the rest slug--id.
    ids: dict[str, str] = {}
    for el in body.xpath(".//*[@id]"):
        if _in_svg(el):
            continue
        old = el.get("id")
        new = slug if el is h1 else f"{slug}--{old}"
        ids.setdefault(old, new)
        el.set("id", new)
    if h1 is None:
        body.set("id", slug)
    for el in body.xpath(".//a[@name] | .//label[@for]"):
        attr = "name" if el.tag == "a" else "for"
        el.set(attr, f"{slug}--{el.get(attr)}")
    sections = [(h2.get("id"), _text(h2)) for h2 in body.xpath(".//h2[@id]")]
    # Collapsed blocks print open.
    for details in body.xpath(".//details"):
        details.set("open", "")
    _show_term_definitions(body, strings)
    _show_source_locations(body, src_tag)
    _print_annotations(body, strings)
    _mark_diagrams(body, slug)
    _break_points_in_tables(body)
    body.set("class", "kvm-page md-typeset")
    body.set("data-slug", slug)
    return BookPage(slug=slug, href=href, title=title, sections=sections, body=body, ids=ids)


def _show_term_definitions(body: HtmlElement, strings: dict[str, str]) -> None:
    """After a term's first use on a page, its tooltip text in brackets."""
    seen: set[tuple[str, str]] = set()
    for abbr in body.xpath(".//abbr[@title]"):
        key = (_text(abbr), abbr.get("title", "").strip())
        if not key[1] or key in seen:
            continue
        seen.add(key)
        parent = abbr.getparent()
        anchor = parent if parent is not None and "kvm-term" in _classes(parent) else abbr
        note = lxml.html.Element("span", {"class": "kvm-def"})
        note.text = f"{strings['def_open']}{key[1]}{strings['def_close']}"
        _insert_after(anchor, note)


SRC_TITLE_RE = re.compile(r"^(?P<path>[^\s:@]+)(?::(?P<line>[\d-]+))?\s*@\s*(?P<tag>\S+)$")


def _show_source_locations(body: HtmlElement, src_tag: str) -> None:
    """After a pinned kernel link, the file:line its tooltip names (and the tag if not the traced one)."""
    for link in _by_class(body, "kvm-src", "a"):
        match = SRC_TITLE_RE.match(link.get("title", "").strip())
        if not match:
            continue
        name, text = posixpath.basename(match["path"]), _text(link)
        if name in text or (match["line"] and match["line"] in text):
            continue  # the link text already says where ("kvm_main.c", "line 2332")
        where = name + (f":{match['line']}" if match["line"] else "")
        if match["tag"] != src_tag:
            where += f" @ {match['tag']}"
        loc = lxml.html.Element("span", {"class": "kvm-src-loc"})
        loc.text = where
        _insert_after(link, loc)


ANNOTATION_RE = re.compile(r"\((\d+)\)!?")


def _print_annotations(body: HtmlElement, strings: dict[str, str]) -> None:
    """Keep Material's annotation lists as printed lists, markers as numbered bubbles.

    On the site Material's JavaScript moves each item of the list after an
    annotated block into a tooltip behind a "(1)" marker; in the book the list
    stays under its block and the marker becomes the number it refers to.
    """
    for block in [*_by_class(body, "highlight"), *_by_class(body, "annotate")]:
        following = block.getnext()
        if following is None or following.tag != "ol" or "kvm-annotations" in _classes(following):
            continue
        count = len(following.xpath("./li"))
        code = "highlight" in _classes(block)
        carriers = block.xpath(".//span[starts-with(@class, 'c')]") if code else [block]
        found = False
        for carrier in carriers:
            if code:
                _strip_comment(carrier)
            found |= _bubble_markers(carrier, count)
        if found:
            following.set("class", (following.get("class", "") + " kvm-annotations").strip())
            following.set("data-label", strings["annotations"])


STRIP_COMMENT_RE = re.compile(r"^(\s*)(?:/\*|//|#|--|;|<!--)?\s*(\(\d+\))!\s*(?:\*/|-->)?\s*$")


def _strip_comment(span: HtmlElement) -> None:
    """Material's "(1)!" form: the comment is only there for the marker, so print only the marker."""
    match = STRIP_COMMENT_RE.match(span.text or "") if len(span) == 0 else None
    if match:
        span.text = f"{match[1]}{match[2]}"


def _bubble_markers(el: HtmlElement, count: int) -> bool:
    """Replace "(n)" in the text directly inside ``el`` (and its children's tails) by bubbles."""
    found = False

    def split(text: str) -> list[str | HtmlElement]:
        nonlocal found
        parts: list[str | HtmlElement] = []
        last = 0
        for match in ANNOTATION_RE.finditer(text):
            if not 1 <= int(match[1]) <= count:
                continue
            found = True
            parts.append(text[last : match.start()])
            bubble = lxml.html.Element("span", {"class": "kvm-anno-marker"})
            bubble.text = match[1]
            parts.append(bubble)
            last = match.end()
        parts.append(text[last:])
        return parts

    def place(parts: list[str | HtmlElement], parent: HtmlElement, after: HtmlElement | None) -> None:
        # parts alternate text, bubble, text, ...: parts[0] stays where the text
        # was, each bubble carries the text that follows it as its tail.
        position = 0 if after is None else parent.index(after) + 1
        for i in range(1, len(parts), 2):
            bubble = parts[i]
            assert isinstance(bubble, HtmlElement)
            bubble.tail = parts[i + 1]  # type: ignore[assignment]
            parent.insert(position, bubble)
            position += 1

    if el.text and ANNOTATION_RE.search(el.text):
        parts = split(el.text)
        if len(parts) > 1:
            el.text = parts[0]  # type: ignore[assignment]
            place(parts, el, None)
    for child in list(el):
        if child.tail and ANNOTATION_RE.search(child.tail) and "kvm-anno-marker" not in _classes(child):
            parts = split(child.tail)
            if len(parts) > 1:
                child.tail = parts[0]  # type: ignore[assignment]
                place(parts, el, child)
    return found


WBR_AFTER_RE = re.compile(r"(?<=[_/(,])(?=\w)")


def _break_points_in_tables(body: HtmlElement) -> None:
    """Let long identifiers in table cells wrap after "_", "/", "(" or "," (a <wbr>, not a character).

    The site scrolls a wide table; paper cannot, and Chromium would shrink
    every page of the book to fit the widest one.
    """

    def pieces(text: str) -> list[str]:
        return WBR_AFTER_RE.split(text)

    for cell in body.xpath(".//td | .//th"):
        for el in [cell, *cell.iterdescendants()]:
            if el.tag in ("pre", "svg") or not isinstance(el.tag, str):
                continue
            if el.text and WBR_AFTER_RE.search(el.text):
                first, *rest = pieces(el.text)
                el.text = first
                for position, piece in enumerate(rest):
                    wbr = lxml.html.Element("wbr")
                    wbr.tail = piece
                    el.insert(position, wbr)
            if el is not cell and el.tail and WBR_AFTER_RE.search(el.tail):
                first, *rest = pieces(el.tail)
                el.tail = first
                anchor = el
                for piece in rest:
                    wbr = lxml.html.Element("wbr")
                    wbr.tail = piece
                    anchor.addnext(wbr)
                    anchor = wbr


def _mark_diagrams(body: HtmlElement, slug: str) -> None:
    """Hand each diagram's text (not its HTML: the <code> tag breaks Mermaid) to the print page."""
    for diagram in _by_class(body, "mermaid"):
        if diagram.tag not in ("pre", "div"):
            continue
        source = diagram.text_content().strip("\n")
        figure = lxml.html.Element("figure", {"class": "kvm-diagram"})
        pre = lxml.html.Element("pre", {"class": "kvm-mermaid-src", "data-page": slug})
        pre.text = source
        figure.append(pre)
        figure.tail = diagram.tail
        diagram.getparent().replace(diagram, figure)


@dataclass(frozen=True)
class _LinkContext:
    """What a link rewrite needs to know about the book and the site."""

    lang: Language
    pages: dict[str, BookPage]  # href relative to the language root -> page
    site_dir: Path


def _source_url(site_path: str, site_dir: Path) -> str | None:
    """A page of the site that is not in this book: its Markdown on the forge, if known."""
    owner = max((lang for lang in LANGUAGES if site_path.startswith(lang.prefix)), key=lambda lang: len(lang.prefix))
    rel = site_path[len(owner.prefix) :]
    if not rel.endswith(".html"):
        return None
    source = rel.removesuffix(".html") + ".md"
    if not (owner.docs / source).is_file():
        return None
    config = load(owner.config)
    repo, edit = str(config.get("repo_url", "")).rstrip("/"), str(config.get("edit_uri", ""))
    if not repo.startswith(("http://", "https://")) or not edit.startswith("edit/"):
        return None
    return f"{repo}/blob/{edit.removeprefix('edit/').rstrip('/')}/{source}"


def rewrite_links(page: BookPage, ctx: _LinkContext, warnings: list[str]) -> None:
    """Point every link of a page inside the book, at the forge, or nowhere.

    Links to a book page (with or without a fragment) become ``#slug--id``;
    external links stay as they are; a site page outside the book links to its
    source on the forge (the site has no fixed URL); anything else (an asset,
    the other book) loses its link but keeps its text.
    """
    page_site_path = ctx.lang.prefix + page.href
    for link in page.body.xpath(".//a[@href]"):
        if _in_svg(link):
            continue
        href = link.get("href", "")
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            continue
        fragment = unquote(parts.fragment)
        if not parts.path:
            target: BookPage | None = page
        else:
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_site_path), unquote(parts.path)))
            if href.endswith("/") or resolved == ".":
                resolved = posixpath.join(resolved, "index.html").removeprefix("./")
            if resolved == ".." or resolved.startswith("../"):
                target = None
            else:
                in_lang = resolved[len(ctx.lang.prefix) :] if resolved.startswith(ctx.lang.prefix) else None
                target = ctx.pages.get(in_lang) if in_lang is not None else None
                if target is None:
                    url = _source_url(resolved, ctx.site_dir)
                    if url:
                        link.set("href", url)
                        continue
        if target is None:
            _replace_tag(link, "span", "kvm-unlinked")
            continue
        if fragment and target is page and link.get("id") and page.ids.get(fragment) == link.get("id"):
            del link.attrib["href"]  # a code line's own anchor: a link to itself
            continue
        book_id = target.ids.get(fragment) if fragment else target.slug
        if book_id is None:
            warnings.append(f"{page.href}: {href} names no id on {target.href}; linking the page")
            book_id = target.slug
        link.set("href", f"#{book_id}")


def load_book(site_dir: Path, lang: Language) -> tuple[list[BookPage], HtmlElement, list[str]]:
    """The nav pages of one language, rewritten for print, plus the first page's document."""
    root = site_dir / lang.prefix
    config = settings(lang)
    if not config.nav:
        raise PdfInputError(f"{lang.config.name} has no pages in nav")
    src_tag = config.tags.get("src", "")
    pages: list[BookPage] = []
    first_doc: HtmlElement | None = None
    for source in config.nav:
        href = source.removesuffix(".md") + ".html"
        path = root / href
        if not path.is_file():
            raise PdfInputError(f"{path} is missing: build the site first (make build)")
        doc, article = read_article(path)
        first_doc = first_doc if first_doc is not None else doc
        pages.append(prepare_page(article, source, href, lang.code, src_tag))
    warnings: list[str] = []
    ctx = _LinkContext(lang, {page.href: page for page in pages}, site_dir)
    for page in pages:
        rewrite_links(page, ctx, warnings)
    assert first_doc is not None
    return pages, first_doc, warnings


# --- the print page ------------------------------------------------------------


def _cover(lang: Language, facts: GitFacts, built: str) -> str:
    config = load(lang.config)
    strings = STRINGS.get(lang.code, STRINGS["en"])
    kernel = settings(lang).tags.get("src", "")
    commit = f"{facts.commit} ({facts.date})" if facts.commit else "—"
    if facts.commit and facts.dirty:
        commit += strings["uncommitted"]
    rows = [
        (strings["language"], strings["language_name"]),
        (strings["kernel"], f"Linux {kernel}"),
        (strings["commit"], commit),
        (strings["built"], built),
    ]
    facts_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    legal = escape(str(config.get("copyright", "")))
    repo = str(config.get("repo_url", ""))
    if repo.startswith(("https://", "http://")):
        legal += f'{" · " if legal else ""}<a href="{escape(repo)}">{escape(repo)}</a>'
    return (
        '<section class="kvm-cover md-typeset" id="kvm-book-cover">'
        f'<p class="kvm-cover-title">{escape(str(config.get("site_name", "")))}</p>'
        f'<p class="kvm-cover-subtitle">{escape(str(config.get("site_description", "")))}</p>'
        f'<dl class="kvm-cover-facts">{facts_html}</dl>'
        f'<p class="kvm-cover-legal">{legal}</p>'
        "</section>"
    )


def _toc_entry(target: str, title: str) -> str:
    return (
        f'<a href="#{escape(target)}"><span class="kvm-toc-title">{escape(title)}</span>'
        f'<span class="kvm-toc-leader"></span><span class="kvm-toc-num" data-target="{escape(target)}"></span></a>'
    )


def _contents(pages: Sequence[BookPage], title: str) -> str:
    items = []
    for page in pages:
        sections = "".join(f"<li>{_toc_entry(sid, text)}</li>" for sid, text in page.sections)
        items.append(f"<li>{_toc_entry(page.slug, page.title)}{f'<ol>{sections}</ol>' if sections else ''}</li>")
    return f'<nav class="kvm-toc md-typeset"><h1 id="kvm-book-toc">{escape(title)}</h1><ol>{"".join(items)}</ol></nav>'


def toc_targets(pages: Sequence[BookPage]) -> list[str]:
    """Every id the contents link to: each page, then its h2 sections."""
    return [target for page in pages for target in (page.slug, *(sid for sid, _ in page.sections))]


def print_html(
    site_dir: Path, lang: Language, pages: Sequence[BookPage], first_doc: HtmlElement, facts: GitFacts, built: str
) -> str:
    """The whole book as one HTML page, to be loaded from the language root."""
    config = load(lang.config)
    strings = STRINGS.get(lang.code, STRINGS["en"])
    first = pages[0].href
    styles = []
    for link in first_doc.xpath("//head/link[@rel='stylesheet'][@href]"):
        href = link.get("href")
        if not urlsplit(href).scheme:
            styles.append(posixpath.normpath(posixpath.join(posixpath.dirname(first), href)))
    body_attrs = {k: v for k, v in first_doc.body.attrib.items() if k.startswith("data-md-color-") or k == "dir"}
    has_diagrams = any(_by_class(page.body, "kvm-mermaid-src") for page in pages)
    scripts = ""
    if has_diagrams:
        mermaid = str(config.get("extra", {}).get("mermaid", ""))
        if not mermaid or not (site_dir / lang.prefix / mermaid).is_file():
            raise PdfInputError(
                f"Mermaid ({mermaid or 'extra.mermaid'}) is not in {site_dir / lang.prefix}: run make build"
            )
        scripts = f'<script src="{escape(mermaid)}"></script>'
    head = (
        f'<meta charset="utf-8"><title>{escape(str(config.get("site_name", "")))}</title>'
        + "".join(f'<link rel="stylesheet" href="{escape(href)}">' for href in styles)
        + f"<style>{CSS.read_text(encoding='utf-8')}</style>"
        + scripts
    )
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in body_attrs.items())
    articles = "".join(lxml.html.tostring(page.body, encoding="unicode", method="html") for page in pages)
    return (
        f'<!doctype html><html lang="{escape(lang.code)}"><head>{head}</head><body{attrs}>'
        f'<div class="kvm-book">{_cover(lang, facts, built)}{_contents(pages, strings["contents"])}{articles}</div>'
        "</body></html>"
    )


def mermaid_theme_css(lang_root: Path) -> str | None:
    """Material's own Mermaid theme CSS, read from its bundle, so diagrams look as on the site."""
    for bundle in sorted((lang_root / "assets" / "javascripts").glob("bundle.*.min.js")):
        match = re.search(r'"(\.node circle,(?:[^"\\]|\\.)*)"', bundle.read_text(encoding="utf-8"))
        if match:
            return json.loads(f'"{match[1]}"')
    return None


RENDER_DIAGRAMS = """
async ({themeCSS, fontFamily, errorText, scale}) => {
  await document.fonts.ready;
  const sources = [...document.querySelectorAll("pre.kvm-mermaid-src")];
  const errors = [];
  if (sources.length && typeof mermaid === "undefined") return {count: 0, errors: ["mermaid.min.js did not load"]};
  if (sources.length) {
    mermaid.initialize({
      startOnLoad: false, securityLevel: "strict", fontFamily, themeCSS: themeCSS || undefined,
      sequence: {actorFontSize: "16px", messageFontSize: "16px", noteFontSize: "16px"},
    });
  }
  let n = 0;
  for (const pre of sources) {
    const id = `kvm-mermaid-${n++}`;
    try {
      const {svg} = await mermaid.render(id, pre.textContent);
      const holder = document.createElement("div");
      holder.innerHTML = svg;
      const el = holder.querySelector("svg");
      const box = el.viewBox && el.viewBox.baseVal;
      if (box && box.width && box.height) {
        // Intrinsic size from the drawing; print CSS caps it at the page.
        el.setAttribute("width", box.width * scale);
        el.setAttribute("height", box.height * scale);
        el.style.removeProperty("max-width");
      }
      pre.replaceWith(el);
    } catch (e) {
      const lines = String((e && e.message) || e).split("\\n").map((l) => l.trim()).filter(Boolean);
      errors.push(`${pre.dataset.page}: diagram ${n}: ${lines.slice(0, 4).join(" | ").slice(0, 300)}`);
    }
    document.getElementById("d" + id)?.remove();
  }
  if (document.body.textContent.includes(errorText)) errors.push(`the page shows "${errorText}"`);
  return {count: n, errors};
}
"""

TOO_WIDE = """
(width) => {
  if (document.documentElement.scrollWidth <= width + 1) return [];
  const wide = (el) => el.getBoundingClientRect().right > width + 1;
  const found = [];
  for (const el of document.querySelectorAll(".kvm-book *")) {
    if (wide(el) && !(el.parentElement && wide(el.parentElement))) {
      const page = el.closest("[data-slug]");
      const text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
      found.push(`${page ? page.dataset.slug : "front matter"}: <${el.tagName.toLowerCase()}> ${text}`);
    }
  }
  return found;
}
"""

FILL_CONTENTS = """
(numbers) => {
  for (const el of document.querySelectorAll(".kvm-toc-num")) el.textContent = numbers[el.dataset.target] ?? "";
}
"""


def _footer(title: str) -> str:
    # Chromium renders the footer in its own tiny document: sizes must be explicit.
    return (
        '<div style="width:100%;margin:0 15mm;font-size:8pt;color:#777;'
        "font-family:'Liberation Sans','Noto Sans CJK SC',sans-serif;display:flex;justify-content:space-between\">"
        f'<span>{escape(title)}</span><span><span class="pageNumber"></span> / <span class="totalPages"></span></span>'
        "</div>"
    )


def destination_pages(pdf: bytes) -> dict[str, int]:
    """Named destination -> 1-based page number, as Chromium wrote them for link targets."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    pages: dict[str, int] = {}
    for name, dest in reader.named_destinations.items():
        number = reader.get_destination_page_number(dest)
        if number is not None and number >= 0:
            pages[str(name).removeprefix("/")] = number + 1
    return pages


def finish(pdf: bytes, lang: Language, pages: Sequence[BookPage], creator: str = "") -> bytes:
    """The outline (each page, then its h2 sections), document metadata, bookmarks shown on open.

    The outline is built from the named destinations Chromium wrote for the
    contents links, not with Chromium's own ``outline=True``: that one also
    lists h3 and lower, and Chromium 156 doubles the title of a heading that
    opens a page ("目录目录").
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import Fit, NameObject, TextStringObject

    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    if "/Outlines" in writer.root_object:
        del writer.root_object["/Outlines"]
    dests = {str(name).removeprefix("/"): dest for name, dest in reader.named_destinations.items()}

    def add(title: str, target: str, parent: Any) -> Any:
        dest = dests.get(target)
        if dest is None:
            raise PdfError(f"the {lang.code} book has no destination #{target} for its outline")
        fit = Fit.xyz(left=dest.left, top=dest.top) if dest.typ == "/XYZ" else Fit.fit()
        page = reader.get_destination_page_number(dest)
        return writer.add_outline_item(title, page, parent=parent, fit=fit, is_open=False)

    for page in pages:
        parent = add(page.title, page.slug, None)
        for target, title in page.sections:
            add(title, target, parent)
    config = load(lang.config)
    writer.add_metadata(
        {
            "/Title": str(config.get("site_name", "")),
            "/Subject": str(config.get("site_description", "")),
            "/Author": str(config.get("site_author", "")),
            "/Keywords": f"KVM, VMX, Linux {settings(lang).tags.get('src', '')}",
            "/Creator": creator or "kvmdocs.pdf",
        }
    )
    writer.root_object[NameObject("/Lang")] = TextStringObject(lang.code)
    writer.page_mode = "/UseOutlines"
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _write_atomically(data: bytes, target: Path) -> None:
    """Write next to the target and rename, so a reader never sees half a book."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp makes the file private (0600); a book is served with the site.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless; never a downloaded browser."""
    if not Path(CHROMIUM).exists():
        raise PdfInputError(f"{CHROMIUM} is missing: run `make deps` (installs Debian's chromium)")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
            try:
                yield browser
            finally:
                browser.close()
    except PlaywrightError as error:
        raise PdfError(f"Chromium failed: {str(error).splitlines()[0]}") from error


def print_book(
    browser: Any,
    site_dir: Path,
    lang: Language,
    target: Path,
    facts: GitFacts | None = None,
    built: str | None = None,
    tagged: bool = False,
) -> BookReport:
    """Print one language's book to ``target``; raise PdfError and leave no file on failure.

    ``tagged`` adds the PDF structure tree (for screen readers and reflow);
    it is off by default because it makes the book about 2.5 times as large and
    as slow to print and to post-process (4.6 MB and ~20 s against 1.9 MB and
    ~8 s for the English book, measured on the 71-page build).
    """
    start = time.perf_counter()
    site_dir = site_dir.resolve()
    pages, first_doc, warnings = load_book(site_dir, lang)
    html = print_html(site_dir, lang, pages, first_doc, facts or git_facts(), built or build_date())
    url = BOOK_ORIGIN + lang.prefix + PRINT_PAGE
    missing: list[str] = []

    def serve(route: Any) -> None:
        request_url = route.request.url.split("#")[0]
        if request_url == url:
            route.fulfill(body=html, content_type="text/html; charset=utf-8")
        elif request_url.startswith(BOOK_ORIGIN):
            rel = unquote(urlsplit(request_url).path).lstrip("/")
            file = (site_dir / rel).resolve()
            if file.is_relative_to(site_dir) and file.is_file():
                route.fulfill(path=file)
            else:
                missing.append(rel)
                route.fulfill(status=404, body="")
        else:
            warnings.append(f"refused a request for {request_url} (the book is made offline)")
            route.abort()

    context = browser.new_context()
    try:
        context.route("**/*", serve)
        page = context.new_page()
        # Lay the page out at the width Chromium prints at, to see what would not fit.
        margins = sum(float(PAPER["margin"][side].removesuffix("mm")) for side in ("left", "right"))
        text_width = int((PAPER_WIDTH_MM - margins) / 25.4 * 96)
        page.set_viewport_size({"width": text_width, "height": 1200})
        page.emulate_media(media="print")
        page.goto(url, wait_until="load")
        if missing:
            raise PdfError(f"the {lang.code} book needs files the site does not have: {', '.join(sorted(missing))}")
        result = page.evaluate(
            RENDER_DIAGRAMS,
            {
                "themeCSS": mermaid_theme_css(site_dir / lang.prefix),
                "fontFamily": page.evaluate("getComputedStyle(document.body).fontFamily"),
                "errorText": MERMAID_ERROR,
                "scale": DIAGRAM_SCALE,
            },
        )
        if result["errors"]:
            raise PdfError(f"Mermaid failed in the {lang.code} book: {'; '.join(result['errors'])}")
        too_wide = page.evaluate(TOO_WIDE, text_width)
        if too_wide:
            warnings.append(
                f"{len(too_wide)} elements are wider than the paper, so Chromium shrinks every page: "
                + "; ".join(too_wide[:5])
            )
        config = load(lang.config)
        options = {
            **PAPER,
            "print_background": True,
            "display_header_footer": True,
            "header_template": "<span></span>",
            "footer_template": _footer(str(config.get("site_name", ""))),
            "tagged": tagged,
        }
        targets = toc_targets(pages)
        numbers: dict[str, int] = {}
        prints = 0
        while True:
            prints += 1
            page.evaluate(FILL_CONTENTS, numbers)
            pdf = page.pdf(**options)
            found = destination_pages(pdf)
            now = {t: found[t] for t in targets if t in found}
            if now == numbers:
                break
            numbers = now
            if prints == MAX_PRINTS:
                warnings.append(f"contents page numbers still moving after {MAX_PRINTS} prints")
                break
        lost = [t for t in targets if t not in numbers]
        if lost:
            raise PdfError(f"the {lang.code} book lost its contents targets: {', '.join(lost[:5])}")
        final = finish(pdf, lang, pages, f"kvmdocs.pdf, Chromium {browser.version} via Playwright")
    finally:
        context.close()
    _write_atomically(final, target)
    from pypdf import PdfReader

    count = len(PdfReader(io.BytesIO(final)).pages)
    return BookReport(lang.code, target, count, result["count"], prints, time.perf_counter() - start, tuple(warnings))


def export_books(
    site_dir: Path, codes: Iterable[str] | None = None, out_dir: Path | None = None, tagged: bool = False
) -> list[BookReport]:
    """Print the books of ``codes`` (default: every language) into ``out_dir`` (default SITE_DIR/pdf)."""
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise PdfInputError(f"{site_dir} has no index.html: build the site first (make build)")
    try:
        langs = [language(code) for code in codes] if codes else list(LANGUAGES)
    except KeyError as error:
        raise PdfInputError(str(error.args[0])) from error
    out_dir = Path(out_dir) if out_dir else site_dir / "pdf"
    facts, built = git_facts(), build_date()
    reports = []
    with chromium() as browser:
        for lang in langs:
            target = out_dir / book_name(lang.code)
            reports.append(print_book(browser, site_dir, lang, target, facts, built, tagged))
    return reports
