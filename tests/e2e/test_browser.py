"""The site in a real browser: diagrams, search, language switch, file://.

Playwright drives Debian's Chromium (see conftest.py). Material draws each
Mermaid diagram into a closed shadow root, so an init script opens them for
inspection; nothing else about the page is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmdocs.paths import LANGUAGES, built_pages

pytestmark = pytest.mark.browser

OPEN_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) { return attach.call(this, {...init, mode: "open"}); };
"""
# Messages Chromium logs about itself, not about the page.
IGNORED_CONSOLE = ("Download the React DevTools",)


class Tab:
    """A page plus everything it complained about."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        # ERR_ABORTED is the browser cancelling a request when the test navigates on.
        page.on(
            "requestfailed",
            lambda r: (
                self.errors.append(f"requestfailed: {r.url} {r.failure}")
                if "ERR_ABORTED" not in (r.failure or "")
                else None
            ),
        )
        page.on("request", lambda r: self.requests.append(r.url))

    def real_errors(self) -> list[str]:
        return [e for e in self.errors if not any(i in e for i in IGNORED_CONSOLE)]


@pytest.fixture()
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(OPEN_SHADOW_ROOTS)
    yield Tab(context.new_page())
    context.close()


def pages_with_diagrams(site: Path) -> list[str]:
    found = []
    for lang in LANGUAGES:
        for page in built_pages(lang.at(site)):
            if 'class="mermaid"' in page.read_text(encoding="utf-8"):
                found.append(page.relative_to(site).as_posix())
    return found


def diagram_report(tab: Tab) -> list[dict]:
    """Wait until every diagram has an SVG, then describe each one."""
    tab.page.wait_for_function(
        """() => [...document.querySelectorAll('.mermaid')].every(
               el => el.shadowRoot && el.shadowRoot.querySelector('svg'))""",
        timeout=20_000,
    )
    return tab.page.evaluate(
        """() => [...document.querySelectorAll('.mermaid')].map(el => {
               const svg = el.shadowRoot.querySelector('svg');
               const box = svg.getBoundingClientRect();
               return {
                 error: svg.getAttribute('aria-roledescription') === 'error'
                        || /Syntax error in text|Parse error/.test(svg.textContent),
                 width: box.width, height: box.height,
                 title: (svg.querySelector('title') || {}).textContent || '',
                 desc: (svg.querySelector('desc') || {}).textContent || '',
               };
           })"""
    )


def test_every_diagram_renders_without_errors(site_dir: Path, http_root: str, tab: Tab) -> None:
    pages = pages_with_diagrams(site_dir)
    assert pages, "no page has a diagram"
    problems = []
    for name in pages:
        tab.errors.clear()
        tab.page.goto(http_root + name)
        for index, diagram in enumerate(diagram_report(tab)):
            if diagram["error"]:
                problems.append(f"{name} diagram {index}: Mermaid error picture")
            if diagram["width"] < 50 or diagram["height"] < 30:
                problems.append(f"{name} diagram {index}: rendered at {diagram['width']}x{diagram['height']}")
            if not diagram["title"].strip() or not diagram["desc"].strip():
                problems.append(f"{name} diagram {index}: no accessible title/description in the SVG")
        problems += [f"{name}: {error}" for error in tab.real_errors()]
    assert not problems, "\n".join(problems)


def test_diagrams_legible_in_dark_palette(site_dir: Path, http_root: str, tab: Tab) -> None:
    """Text in a diagram keeps contrast with the slate background."""
    name = pages_with_diagrams(site_dir)[0]
    tab.page.emulate_media(color_scheme="dark")
    tab.page.goto(http_root + name)
    diagram_report(tab)
    scheme = tab.page.evaluate("document.body.getAttribute('data-md-color-scheme')")
    assert scheme == "slate"
    colors = tab.page.evaluate(
        """() => {
             const svg = document.querySelector('.mermaid').shadowRoot.querySelector('svg');
             const label = svg.querySelector('text, .nodeLabel, span');
             return [getComputedStyle(label).color || getComputedStyle(label).fill,
                     getComputedStyle(document.body).backgroundColor];
           }"""
    )

    def luminance(css: str) -> float:
        parts = [float(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        return sum(w * (c / 255) for w, c in zip((0.2126, 0.7152, 0.0722), parts, strict=True))

    text, background = colors
    assert abs(luminance(text) - luminance(background)) > 0.4, f"text {text} on {background}"


def search(tab: Tab, root: str, page: str, query: str) -> list[str]:
    """Type a query into Material's search box and return the result links."""
    tab.page.goto(root + page)
    box = tab.page.locator("input[data-md-component=search-query]")
    box.click()
    # Material reads the box on keyup. Chinese arrives through an IME without
    # per-character key events, so set the text, then send one key (End).
    box.fill(query)
    box.press("End")
    # The worker answers asynchronously; an empty answer is a result too.
    for _ in range(40):
        hits = tab.page.eval_on_selector_all(".md-search-result__item a", "els => els.map(a => a.getAttribute('href'))")
        if hits:
            return hits
        tab.page.wait_for_timeout(250)
    return []


@pytest.mark.parametrize(
    ("page", "query", "expected"),
    [
        ("index.html", "vcpu_enter_guest", "run.html"),
        ("index.html", "中断注入", "run.html"),
        ("index.html", "虚拟机", "vm.html"),
        ("en/index.html", "vcpu_enter_guest", "run.html"),
        ("en/index.html", "anonymous inode", "vm.html"),
    ],
)
def test_search_finds_the_page(http_root: str, tab: Tab, page: str, query: str, expected: str) -> None:
    hits = search(tab, http_root, page, query)
    assert any(hit.split("?")[0].split("#")[0].endswith(expected) for hit in hits), f"{query!r} gave {hits[:8]}"
    assert not tab.real_errors(), tab.real_errors()


def test_language_switcher_keeps_the_page(http_root: str, tab: Tab) -> None:
    tab.page.goto(http_root + "vcpu.html")
    tab.page.locator("a.kvm-lang-switch[hreflang=en]").dispatch_event("click")
    tab.page.wait_for_url("**/en/vcpu.html")
    assert tab.page.evaluate("document.documentElement.lang") == "en"
    tab.page.locator("a.kvm-lang-switch[hreflang=zh]").dispatch_event("click")
    tab.page.wait_for_url(lambda url: url.endswith("/vcpu.html") and "/en/" not in url)
    assert tab.page.evaluate("document.documentElement.lang").startswith("zh")


def test_copy_button_on_code(site_dir: Path, http_root: str, tab: Tab) -> None:
    with_code = [
        p
        for p in built_pages(LANGUAGES[0].at(site_dir))
        if "<pre><span></span><code" in p.read_text(encoding="utf-8")
        or 'class="highlight"' in p.read_text(encoding="utf-8")
    ]
    assert with_code, "no page has a code block"
    tab.page.goto(http_root + with_code[0].relative_to(site_dir).as_posix())
    tab.page.wait_for_selector(
        "button.md-code__button[data-md-type=copy], button.md-clipboard", state="attached", timeout=10_000
    )


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_works_from_disk(site_dir: Path, tab: Tab, lang) -> None:
    """Opened from file://: a link to another page, search and a diagram all work."""
    root = (site_dir / lang.prefix).as_uri().rstrip("/") + "/"
    tab.page.goto(root + "index.html")
    tab.page.locator("a[href='vm.html']").first.click()
    tab.page.wait_for_url("**/vm.html")
    assert tab.page.locator("article h1").inner_text().strip()
    hits = search(tab, root, "index.html", "vcpu_enter_guest")
    assert any("run.html" in hit for hit in hits), hits
    tab.page.goto(root + "index.html")
    assert not any(d["error"] for d in diagram_report(tab))
    foreign = [u for u in tab.requests if not u.startswith(("file://", "data:", "blob:", "about:"))]
    assert not foreign, foreign[:5]
    assert not tab.real_errors(), tab.real_errors()
