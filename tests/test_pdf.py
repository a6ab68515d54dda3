"""The PDF books, read back with pypdf and poppler's pdftotext.

``make test`` prints the books before pytest runs; run alone, the session
fixture prints them once into the site under test. What a book must match
(titles, sections, terms, links) is read from the same built HTML the book was
printed from, so a page added or renamed later is checked too. A few tests
need no browser: they feed kvmdocs.pdf a made-up article.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, IndirectObject
from selectolax.lexbor import LexborHTMLParser

from kvmdocs import pdf
from kvmdocs.config import settings
from kvmdocs.paths import LANGUAGES, ROOT, Language

CODES = [lang.code for lang in LANGUAGES]
CJK_RE = re.compile(r"[\u4e00-\u9fff]")


# --- fixtures and readers --------------------------------------------------------


@pytest.fixture(scope="session")
def books(site_dir: Path) -> dict[str, Path]:
    """Both books: the ones `make pdf` wrote, or printed here once."""
    paths = {code: site_dir / "pdf" / pdf.book_name(code) for code in CODES}
    if not all(path.is_file() for path in paths.values()):
        # A separate process: the browser tests may already hold Playwright's
        # sync API in this one, and it cannot be started twice.
        script = Path(__file__).resolve().parent.parent / "scripts" / "export_pdf.py"
        result = subprocess.run([sys.executable, str(script), str(site_dir)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    return paths


@cache
def reader(path: Path) -> PdfReader:
    return PdfReader(path)


@cache
def page_texts(path: Path) -> tuple[str, ...]:
    """Text of each PDF page above the footer, as poppler extracts it (what search and copy see)."""
    box = reader(path).pages[0].mediabox
    bottom_margin = float(pdf.PAPER["margin"]["bottom"].removesuffix("mm")) / 25.4 * 72
    crop = ["-x", "0", "-y", "0", "-W", str(int(box.width)), "-H", str(int(box.height - bottom_margin))]
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *crop, str(path), "-"], capture_output=True, text=True, check=True
    )
    return tuple(out.stdout.split("\f"))


def squash(text: str) -> str:
    """Compare text without whitespace or hyphens: lines break anywhere in Chinese, and pdftotext
    joins a word broken after a hyphen ("4-" + "level") without it."""
    return "".join(unicodedata.normalize("NFKC", text).replace("-", "").split())


@cache
def book_text(path: Path) -> str:
    """The book's running text, pages joined (without their footers)."""
    return squash("".join(page_texts(path)))


def lang_of(code: str) -> Language:
    return next(lang for lang in LANGUAGES if lang.code == code)


def built(site_dir: Path, lang: Language, source: str) -> LexborHTMLParser:
    page = site_dir / lang.prefix / (source.removesuffix(".md") + ".html")
    return LexborHTMLParser(page.read_text(encoding="utf-8"))


def heading_text(node: Any) -> str:
    for link in node.css("a.headerlink"):
        link.decompose()
    return " ".join(node.text().split())


def nav_pages(site_dir: Path, code: str) -> list[tuple[str, str, list[str]]]:
    """(slug, h1 title, h2 titles) of every nav page, from the built HTML."""
    lang = lang_of(code)
    pages = []
    for source in settings(lang).nav:
        tree = built(site_dir, lang, source)
        article = tree.css_first("article.md-content__inner")
        assert article is not None, f"{source}: no article in the built page"
        h1 = article.css_first("h1")
        assert h1 is not None, f"{source}: no h1 in the built page"
        pages.append((pdf.page_slug(source), heading_text(h1), [heading_text(h2) for h2 in article.css("h2")]))
    return pages


def outline(path: Path) -> list[tuple[str, int, list[str]]]:
    """Top-level outline entries: (title, 0-based page, child titles)."""
    doc = reader(path)
    entries: list[tuple[str, int, list[str]]] = []
    for item in doc.outline:
        if isinstance(item, list):
            assert entries, "the outline starts with a nested list"
            entries[-1][2].extend(str(child.title) for child in item if not isinstance(child, list))
        else:
            entries.append((str(item.title), doc.get_destination_page_number(item), []))
    return entries


def fonts(doc: PdfReader) -> dict[int, Any]:
    """Every font the document uses, in page resources, form XObjects and Type 3 glyph resources."""
    found: dict[int, Any] = {}
    seen: set[int] = set()

    def walk(resources: Any) -> None:
        resources = resources.get_object() if resources is not None else None
        if not resources or id(resources) in seen:
            return
        seen.add(id(resources))
        for ref in (resources.get("/Font") or {}).values():
            font = ref.get_object()
            key = ref.idnum if isinstance(ref, IndirectObject) else id(font)
            if key not in found:
                found[key] = font
                walk(font.get("/Resources"))
        for ref in (resources.get("/XObject") or {}).values():
            walk(ref.get_object().get("/Resources"))

    for page in doc.pages:
        walk(page.get("/Resources"))
    return found


def embedded(font: Any) -> bool:
    if font.get("/Subtype") == "/Type3":
        return True  # glyphs are drawn by the font's own content streams
    descriptor_owner = font["/DescendantFonts"][0].get_object() if font.get("/Subtype") == "/Type0" else font
    descriptor = descriptor_owner.get("/FontDescriptor")
    descriptor = descriptor.get_object() if descriptor is not None else {}
    return any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))


def font_name(font: Any) -> str:
    if font.get("/Subtype") == "/Type0":
        return str(font["/DescendantFonts"][0].get_object().get("/BaseFont", ""))
    return str(font.get("/BaseFont", ""))


def maps_cjk(font: Any) -> bool:
    """Whether a font's ToUnicode map produces Chinese characters (Type 3 fonts carry no name)."""
    to_unicode = font.get("/ToUnicode")
    if to_unicode is None:
        return False
    cmap = to_unicode.get_object().get_data().decode("latin-1")
    return any(0x4E00 <= int(code, 16) <= 0x9FFF for code in re.findall(r"<([0-9A-Fa-f]{4})>", cmap))


def links(path: Path) -> list[tuple[int, Any]]:
    """(0-based page, annotation) for every /Link annotation."""
    found = []
    for number, page in enumerate(reader(path).pages):
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/Subtype") == "/Link":
                found.append((number, annot))
    return found


def internal_target(doc: PdfReader, annot: Any) -> str | int | None:
    """Where an internal link goes (destination name or page), None for a link out."""
    dest = annot.get("/Dest")
    action = annot.get("/A")
    if dest is None and action is not None and action.get("/S") == "/GoTo":
        dest = action.get("/D")
    if dest is None:
        return None
    dest = dest.get_object() if isinstance(dest, IndirectObject) else dest
    if isinstance(dest, ArrayObject):
        return doc.get_page_number(dest[0].get_object())
    return str(dest).removeprefix("/")


# --- the books -----------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_book_exists_with_every_page(books: dict[str, Path], site_dir: Path, code: str) -> None:
    """Cover, contents and at least one PDF page per site page."""
    doc = reader(books[code])
    nav = nav_pages(site_dir, code)
    assert len(doc.pages) >= len(nav) + 2, f"{len(doc.pages)} PDF pages for {len(nav)} site pages"
    assert doc.metadata is not None and doc.metadata.title, "no document title in the PDF metadata"
    assert str(doc.trailer["/Root"].get("/Lang")) == code


@pytest.mark.parametrize("code", CODES)
def test_outline_follows_the_navigation(books: dict[str, Path], site_dir: Path, code: str) -> None:
    """One bookmark per nav page, in nav order, each with the page's h2 sections under it."""
    entries = outline(books[code])
    nav = nav_pages(site_dir, code)
    assert [title for title, _, _ in entries] == [title for _, title, _ in nav]
    for (title, _, children), (_, _, sections) in zip(entries, nav, strict=True):
        assert children == sections, f"bookmarks under {title!r} differ from its h2 sections"
    pages = [page for _, page, _ in entries]
    assert pages == sorted(pages) and len(set(pages)) == len(pages), f"pages out of order or shared: {pages}"
    assert pages[0] >= 2, "the first site page must come after the cover and the contents"


@pytest.mark.parametrize("code", CODES)
def test_contents_page_numbers_are_right(books: dict[str, Path], code: str) -> None:
    """The contents print each page's number, and it is the page its bookmark opens."""
    entries = outline(books[code])
    first = min(page for _, page, _ in entries)
    # -layout keeps a title and its number (far right) on one line.
    contents = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", "-f", "2", "-l", str(first), str(books[code]), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    contents = squash(contents)
    position = 0
    for title, page, _ in entries:  # in order, so a same-named section earlier is not taken for it
        match = re.compile(re.escape(squash(title)) + r"(\d+)").search(contents, position)
        assert match, f"{title!r} has no page number in the contents"
        assert int(match[1]) == page + 1, f"{title!r}: contents say {match[1]}, the page is {page + 1}"
        position = match.end()


@pytest.mark.parametrize("code", CODES)
def test_fonts_are_embedded(books: dict[str, Path], code: str) -> None:
    found = fonts(reader(books[code]))
    assert found, "no fonts found: the text is not text"
    missing = [font_name(font) or str(font.get("/Subtype")) for font in found.values() if not embedded(font)]
    assert not missing, f"fonts not embedded: {missing}"


def test_chinese_book_has_a_cjk_font(books: dict[str, Path], site_dir: Path) -> None:
    """Chromium embeds Noto CJK as Type 3 (no name), so a CJK font is also one whose glyphs map to Hanzi."""
    found = fonts(reader(books["zh"])).values()
    assert any("CJK" in font_name(font) or maps_cjk(font) for font in found), "no font maps to Chinese characters"
    titles = [title for _, title, _ in nav_pages(site_dir, "zh") if CJK_RE.search(title)]
    assert titles, "no Chinese page title to look for"
    text = book_text(books["zh"])
    assert all(squash(title) in text for title in titles), "Chinese titles are not extractable text"


@pytest.mark.parametrize("code", CODES)
def test_text_has_every_title_and_mnemonic(books: dict[str, Path], site_dir: Path, code: str) -> None:
    """Every page title, every section title and every VMX mnemonic is searchable in the book."""
    text = book_text(books[code])
    nav = nav_pages(site_dir, code)
    for _, title, sections in nav:
        assert squash(title) in text, f"page title {title!r} missing from the text"
        missing = [s for s in sections if squash(s) not in text]
        assert not missing, f"sections of {title!r} missing from the text: {missing}"
    # Every configured instruction has an entry on the site (test_site.py), so the book has them all.
    missing = [m for m in settings(lang_of(code)).instructions if not re.search(rf"{m}(?![A-Z])", text)]
    assert not missing, f"VMX mnemonics missing from the book: {missing}"


@pytest.mark.parametrize("code", CODES)
def test_no_diagram_is_an_error_picture(books: dict[str, Path], site_dir: Path, code: str) -> None:
    texts = page_texts(books[code])
    bad = [n + 1 for n, text in enumerate(texts) if pdf.MERMAID_ERROR in text]
    assert not bad, f"Mermaid's error text on PDF pages {bad}"
    # Each diagram's participants/nodes are drawn as text: a sequence diagram's first participant.
    lang = lang_of(code)
    for source in settings(lang).nav:
        for node in built(site_dir, lang, source).css("pre.mermaid"):
            match = re.search(r"^\s*participant\s+\S+\s+as\s+(.+)$", node.text(), re.M)
            if match:
                assert squash(match[1]) in book_text(books[code]), f"{source}: diagram label {match[1]!r} not drawn"


@pytest.mark.parametrize("code", CODES)
def test_internal_links_jump_inside_the_book(books: dict[str, Path], site_dir: Path, code: str) -> None:
    """Contents and cross-page links are GoTo links to destinations that exist; links out are http(s)."""
    doc = reader(books[code])
    names = {str(name).removeprefix("/") for name in doc.named_destinations}
    nav = nav_pages(site_dir, code)
    internal: list[tuple[int, str | int]] = []
    for number, annot in links(books[code]):
        target = internal_target(doc, annot)
        if target is None:
            uri = str(annot["/A"]["/URI"])
            assert uri.startswith(("https://", "http://", "mailto:")), f"page {number + 1}: link to {uri}"
            assert "kvm-book.invalid" not in uri, f"page {number + 1}: a site link was not rewritten: {uri}"
            continue
        assert isinstance(target, int) or target in names, f"page {number + 1}: no destination {target!r}"
        internal.append((number, target))
    expected = len(nav) + sum(len(sections) for _, _, sections in nav)  # the contents alone
    assert len(internal) >= expected, f"{len(internal)} internal links, the contents alone have {expected}"
    slugs = {target for _, target in internal}
    assert all(slug in slugs for slug, _, _ in nav), "a page has no link to it"
    # Links between site pages (glossary, instructions) jump inside the PDF too.
    first_page = min(page for _, page, _ in outline(books[code]))
    lang = lang_of(code)
    hrefs = {source.removesuffix(".md") + ".html": pdf.page_slug(source) for source in settings(lang).nav}
    for source in settings(lang).nav:
        for node in built(site_dir, lang, source).css("article.md-content__inner a[href]"):
            page = (node.attributes.get("href") or "").split("#")[0]
            if page in hrefs and page != source.removesuffix(".md") + ".html":
                slug = hrefs[page]
                assert any(n >= first_page and str(t).split("--")[0] == slug for n, t in internal), (
                    f"{source} links to {page}, but no link in the pages jumps to #{slug}…"
                )


@pytest.mark.parametrize("code", CODES)
def test_cover_shows_commit_and_kernel(books: dict[str, Path], code: str) -> None:
    cover = page_texts(books[code])[0]
    assert squash(f"Linux {settings(lang_of(code)).tags['src']}") in squash(cover)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("no git history here: the cover says so instead of a commit")
    # Other commits may land between printing and testing: the hash must be a commit, not HEAD.
    hashes = re.findall(r"\b[0-9a-f]{7,40}\b", cover)
    assert hashes, f"no commit hash on the cover: {cover!r}"
    kinds = [
        subprocess.run(["git", "cat-file", "-t", h], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        for h in hashes
    ]
    assert "commit" in kinds, f"{hashes} on the cover, none is a commit of this repository"


@pytest.mark.parametrize("code", CODES)
def test_no_site_chrome(books: dict[str, Path], site_dir: Path, code: str) -> None:
    """No header, search box, sidebars or footer: their own words must not appear."""
    lang = lang_of(code)
    tree = built(site_dir, lang, settings(lang).nav[0])
    chrome = ["Made with", "Material for MkDocs"]
    for selector in ("a.md-skip", "label.md-search__icon", "div.md-footer__direction"):
        node = tree.css_first(selector)
        if node is not None and node.text().strip():
            chrome.append(node.text().strip())
    search = tree.css_first("input.md-search__input")
    if search is not None and search.attributes.get("placeholder"):
        chrome.append(str(search.attributes["placeholder"]))
    text = "".join(page_texts(books[code]))
    assert not [words for words in chrome if words in text], "site chrome printed in the book"


def fragments(el: Any) -> list[str]:
    """An element's text, cut where the book adds words (after a term, after a kernel link)."""
    el = lxml.html.fromstring(lxml.html.tostring(el))
    for mark in el.xpath(".//abbr | .//a[contains(@class, 'kvm-term')] | .//a[contains(@class, 'kvm-src')]"):
        mark.tail = "\ue000" + (mark.tail or "")
    return [squash(part) for part in el.text_content().split("\ue000") if squash(part)]


def coverage(parts: list[str], text: str, size: int = 10) -> float:
    """Share of a block's text, in pieces of ``size`` characters, found in the book.

    Not one string: where a block runs onto the next page, poppler may put a
    word or a code block from the other page in between.
    """
    pieces = [part[i : i + size] for part in parts for i in range(0, len(part), size)]
    return sum(piece in text for piece in pieces) / len(pieces) if pieces else 1.0


@pytest.mark.parametrize("code", CODES)
def test_hover_and_click_content_is_printed(books: dict[str, Path], site_dir: Path, code: str) -> None:
    """Tooltip definitions, collapsed blocks and code annotations are on paper."""
    lang = lang_of(code)
    text = book_text(books[code])
    definitions: set[str] = set()
    blocks: list[Any] = []
    for source in settings(lang).nav:
        page = site_dir / lang.prefix / (source.removesuffix(".md") + ".html")
        article = lxml.html.parse(str(page)).xpath("//article[contains(@class, 'md-content__inner')]")[0]
        definitions |= {abbr.get("title") for abbr in article.xpath(".//abbr[@title]")}
        blocks += article.xpath(".//details")
        # Material's annotation lists: the <ol> right after an annotated code block.
        blocks += article.xpath(".//div[contains(@class, 'highlight')]/following-sibling::*[1][self::ol]/li")
    missing = [d for d in definitions if squash(d) not in text]
    assert not missing, f"tooltip definitions not printed: {missing[:3]}"
    missing = [" ".join(b.text_content().split())[:60] for b in blocks if coverage(fragments(b), text) < 0.75]
    assert not missing, f"{len(missing)} collapsed blocks or code annotations not printed, e.g. {missing[:3]}"


# --- the rewrite, without a browser --------------------------------------------

ARTICLE = """
<article class="md-content__inner md-typeset">
<a class="md-content__button kvm-edit" href="https://example.org/edit">edit</a>
<h1 id="page-title">Title<a class="headerlink" href="#page-title">¶</a></h1>
<p>Run <a class="kvm-term" href="vmx-instructions.html#vmxon"><abbr title="enter VMX">VMXON</abbr></a> twice:
<a class="kvm-term" href="vmx-instructions.html#vmxon"><abbr title="enter VMX">VMXON</abbr></a>.
See <a href="#later">below</a>, <a href="other.html">other</a>, <a href="other.html#sec">its section</a>,
<a href="pdf/book.pdf">the book</a>, <a href="https://example.org/x">out</a> and
<a class="kvm-src" href="https://elixir.bootlin.com/linux/v3.8/source/virt/kvm/kvm_main.c#L10"
   title="virt/kvm/kvm_main.c:10 @ v3.8"><code>kvm_init</code></a>.</p>
<h2 id="later">Later</h2>
<details><summary>More</summary><p>hidden</p></details>
<pre class="mermaid"><code>graph TD
  A--&gt;B</code></pre>
<div class="language-c highlight"><pre><span></span><code>x = 1; <span class="cm">/* (1)! */</span>
y = 2; <span class="c1">// see (2)</span></code></pre></div>
<ol><li>one</li><li>two</li></ol>
<table><tr><td>KVM_CREATE_VM on <code>kvm_vm_ioctl(vcpu)</code></td></tr></table>
<aside class="md-source-file">updated</aside>
</article>
"""


def rewritten(page_href: str = "page.html") -> tuple[pdf.BookPage, list[str]]:
    zh = LANGUAGES[0]
    article = lxml.html.fragment_fromstring(ARTICLE.strip())
    page = pdf.prepare_page(article, page_href.replace(".html", ".md"), page_href, "en", "v3.8")
    others = [
        pdf.prepare_page(
            lxml.html.fragment_fromstring(f'<article><h1 id="t">{slug}</h1><h2 id="{h2}">S</h2></article>'),
            f"{slug}.md",
            f"{slug}.html",
            "en",
            "v3.8",
        )
        for slug, h2 in (("other", "sec"), ("vmx-instructions", "vmxon"))
    ]
    warnings: list[str] = []
    ctx = pdf._LinkContext(zh, {p.href: p for p in (page, *others)}, ROOT / "site")
    pdf.rewrite_links(page, ctx, warnings)
    return page, warnings


def test_ids_are_prefixed_and_links_rewritten() -> None:
    page, warnings = rewritten()
    body = page.body
    assert body.xpath(".//h1/@id") == ["page"] and body.xpath(".//h2/@id") == ["page--later"]
    hrefs = body.xpath(".//a/@href")
    assert {"#page--later", "#other", "#other--sec", "#vmx-instructions--vmxon"} <= set(hrefs)
    assert "https://example.org/x" in hrefs, "an external link must stay as it is"
    assert all(h.startswith(("#", "https://")) for h in hrefs), hrefs
    assert body.xpath(".//span[@class='kvm-unlinked']/text()") == ["the book"]
    assert page.sections == [("page--later", "Later")]
    assert not warnings


def test_chrome_removed_and_hidden_content_shown() -> None:
    body = rewritten()[0].body
    html = lxml.html.tostring(body, encoding="unicode")
    assert "md-content__button" not in html and "headerlink" not in html and "md-source-file" not in html
    assert body.xpath(".//span[@class='kvm-def']/text()") == [" (enter VMX)"], "definition once, at first use"
    assert body.xpath(".//details/@open") == [""]
    assert body.xpath(".//span[@class='kvm-src-loc']/text()") == ["kvm_main.c:10"]
    ol = body.xpath(".//ol")[0]
    assert "kvm-annotations" in ol.get("class", "")
    assert body.xpath(".//span[@class='kvm-anno-marker']/text()") == ["1", "2"]
    assert body.xpath(".//span[@class='cm']")[0].text_content() == "1", "(1)! drops the comment around it"


def test_table_cells_get_break_points_not_characters() -> None:
    """Identifiers in a cell may wrap after "_" (a <wbr>), so no table is wider than the paper."""
    cell = rewritten()[0].body.xpath(".//td")[0]
    assert cell.text_content() == "KVM_CREATE_VM on kvm_vm_ioctl(vcpu)", "the text itself must not change"
    assert len(cell.xpath(".//wbr")) == 5


def test_mermaid_gets_the_diagram_text_not_html() -> None:
    body = rewritten()[0].body
    sources = body.xpath(".//pre[@class='kvm-mermaid-src']")
    assert len(sources) == 1 and not len(sources[0]), "the <code> tag must not reach Mermaid"
    assert sources[0].text == "graph TD\n  A-->B"


# --- the command line ----------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "scripts" / "export_pdf.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize("args", [[], ["/nonexistent/site"], ["site", "--lang", "xx"]])
def test_cli_usage_errors_are_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr


def test_broken_diagram_fails_without_a_book(site_dir: Path, tmp_path: Path) -> None:
    """A diagram Mermaid cannot parse stops the export (exit 1) and leaves no file behind."""
    lang = LANGUAGES[0]
    copy = tmp_path / "site"
    nested = [other.prefix.strip("/") for other in LANGUAGES if other.prefix]
    shutil.copytree(site_dir, copy, ignore=shutil.ignore_patterns("pdf", *nested))
    first = copy / (settings(lang).nav[0].removesuffix(".md") + ".html")
    html = first.read_text(encoding="utf-8")
    broken = '<pre class="mermaid"><code>graph TD\n  A--&gt;&gt;&gt;</code></pre>'
    first.write_text(html.replace("</article>", broken + "</article>", 1), encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(str(copy), "--lang", lang.code, "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert "Mermaid" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() or not list(out.iterdir()), "a failed export left a file"
