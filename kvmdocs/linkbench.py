"""Generate Material-like static sites with known link faults, for benchmarking link checkers.

The benchmark (``scripts/bench_links.py``) and the tests share this generator so
that "every injected fault is found and nothing sound is reported" is checked on
exactly the tree that is timed. Pages look like MkDocs Material output with
``use_directory_urls: false``: a primary nav, a table of contents, heading
permalinks, code blocks with line anchors (``id`` and ``a[name]``), figures with
``srcset``, prev/next footer links, and Chinese page names and anchors, written
both raw and percent-encoded. Every fault href carries a unique token so the
output of any checker can be matched back to the fault it found.
"""

from __future__ import annotations

import os
import posixpath
import random
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PAGES_PER_SECTION = 30
SECTIONS_PER_PART = 16
FAULT_EVERY = 20  # one injected fault per this many pages

# Kinds of injected fault. linkchecker cannot see anchors behind directory
# URLs; linkinator without --check-fragments sees no fragment at all.
FAULT_KINDS: tuple[str, ...] = (
    "missing-page",
    "missing-anchor",
    "missing-local-anchor",
    "dir-url-anchor",
    "missing-image",
    "missing-srcset",
    "missing-zh-page",
    "missing-zh-anchor",
    "missing-stylesheet",
    "missing-dir-index",
)

ZH_ANCHOR = "概述"
# hosts of the external links in the tree: benchmarks tell crawlers to skip them (offline)
EXTERNAL_HOSTS: tuple[str, ...] = ("example.org", "elixir.bootlin.com", "squidfunk.github.io")


@dataclass(frozen=True)
class Fault:
    """One injected broken reference: where it is and how a checker can recognise it."""

    page: str  # path relative to the site root, with /
    href: str  # URL exactly as written (for srcset: the broken candidate)
    kind: str
    token: str  # unique ASCII marker contained in the decoded href


def page_paths(n: int) -> list[str]:
    """Return ``n`` page paths: home, part indexes, section indexes and pages (some with Chinese names)."""
    paths = ["index.html"]
    part = 0
    while len(paths) < n:
        part += 1
        paths.append(f"p{part:02d}/index.html")
        for sec in range(1, SECTIONS_PER_PART + 1):
            if len(paths) >= n:
                break
            paths.append(f"p{part:02d}/s{sec:02d}/index.html")
            for k in range(1, PAGES_PER_SECTION + 1):
                if len(paths) >= n:
                    break
                name = f"页面-{k:03d}.html" if k % 10 == 0 else f"page-{k:03d}.html"
                paths.append(f"p{part:02d}/s{sec:02d}/{name}")
    return paths[:n]


def _rel(target: str, page: str) -> str:
    """Relative href from ``page`` to ``target`` (both site-relative), the way MkDocs writes it."""
    rel = posixpath.relpath(target, posixpath.dirname(page) or ".")
    return rel


def _enc(href: str, rng: random.Random) -> str:
    """Write non-ASCII hrefs raw or percent-encoded: browsers accept both, so must a checker."""
    if href.isascii() or rng.random() < 0.5:
        return href
    return quote(href, safe="/#:?=&.-_~%")


ASSETS: tuple[str, ...] = (
    "assets/stylesheets/main.css",
    "assets/stylesheets/palette.css",
    "assets/javascripts/bundle.js",
    "assets/javascripts/workers/search.js",
    "assets/images/favicon.png",
    "assets/images/logo.svg",
    "assets/files/spec.pdf",
    "assets/media/clip.mp4",
    *(f"assets/images/fig-{i}.png" for i in range(10)),
    *(f"assets/images/fig-{i}@2x.png" for i in range(10)),
)

LOREM = (
    "vmx_vcpu_run() enters the guest with VMLAUNCH or VMRESUME and comes back on a VM exit. "
    "客户机退出后，内核根据退出原因调用相应的处理函数，再决定是否返回用户态。"
)


@dataclass
class _Tree:
    """Nav structure computed once: parts, their sections, and each section's pages."""

    parts: list[str]
    sections: dict[str, list[str]]
    pages: dict[str, list[str]]


def _tree(paths: list[str]) -> _Tree:
    """Index ``paths`` by part and section so rendering a page is linear in its nav size."""
    t = _Tree([], {}, {})
    for q in paths:
        bits = q.split("/")
        if len(bits) == 2:
            t.parts.append(bits[0])
            t.sections[bits[0]] = []
        elif len(bits) == 3 and bits[2] == "index.html":
            t.sections[bits[0]].append("/".join(bits[:2]))
            t.pages["/".join(bits[:2])] = []
        elif len(bits) == 3:
            t.pages["/".join(bits[:2])].append(q)
    return t


def _page_html(i: int, paths: list[str], tree: _Tree, rng: random.Random, extra_head: str, extra_body: str) -> str:
    """Render one Material-like page; ``extra_*`` carries the injected fault, if any."""
    page = paths[i]
    parts = tree.parts
    here = page.split("/")
    cur_part = here[0] if len(here) > 1 else None
    cur_sec = "/".join(here[:2]) if len(here) > 2 else None

    def link(target: str, frag: str = "") -> str:
        return _enc(_rel(target, page) + (f"#{frag}" if frag else ""), rng)

    base = posixpath.relpath(".", posixpath.dirname(page) or ".")
    nav: list[str] = []
    for p in parts:
        nav.append(
            f'<li class="md-nav__item"><a href="{link(p + "/index.html")}" class="md-nav__link">Part {p}</a></li>'
        )
        if p == cur_part:
            secs = tree.sections[p]
            nav.append('<li class="md-nav__item md-nav__item--nested"><nav class="md-nav"><ul class="md-nav__list">')
            for s in secs:
                nav.append(
                    f'<li class="md-nav__item"><a href="{link(s + "/index.html")}" class="md-nav__link">'
                    f"Section {s}</a></li>"
                )
                if s == cur_sec:
                    nav.append('<li class="md-nav__item"><nav class="md-nav"><ul class="md-nav__list">')
                    for q in tree.pages[s]:
                        cls = "md-nav__link md-nav__link--active" if q == page else "md-nav__link"
                        nav.append(
                            f'<li class="md-nav__item"><a href="{link(q)}" class="{cls}">'
                            f"{posixpath.basename(q)[:-5]}</a></li>"
                        )
                    nav.append("</ul></nav></li>")
            nav.append("</ul></nav></li>")
    toc = [
        f'<li class="md-nav__item"><a href="#section-{k}" class="md-nav__link">Section {k}</a></li>'
        for k in range(1, 7)
    ]
    toc.append(f'<li class="md-nav__item"><a href="{_enc("#" + ZH_ANCHOR, rng)}" class="md-nav__link">概述</a></li>')

    body: list[str] = [f'<h1 id="{ZH_ANCHOR}">Page {i}</h1>']
    for k in range(1, 7):
        tgt = paths[rng.randrange(len(paths))]
        choice = rng.random()
        if choice < 0.3:
            href = link(tgt, f"section-{rng.randrange(1, 7)}")
        elif choice < 0.4:
            href = link(tgt, ZH_ANCHOR)
        elif choice < 0.5 and tgt.endswith("/index.html"):
            d = posixpath.dirname(tgt)
            href = _rel(d, page) + "/" + ("#section-2" if rng.random() < 0.5 else "")
        elif choice < 0.55:
            href = link(tgt) + "?view=print"
        elif choice < 0.6:
            href = link(tgt, f"__codelineno-0-{rng.randrange(1, 7)}")
        else:
            href = link(tgt)
        body.append(
            f'<h2 id="section-{k}">Section {k}<a class="headerlink" href="#section-{k}" title="Permanent link">'
            f'&para;</a></h2>\n<p>{LOREM} See <a href="{href}">the related page</a>, '
            f'<code>vmx_handle_exit()</code> and <a href="#section-{rng.randrange(1, 7)}">above</a>.</p>'
        )
        if k == 2:
            lines = [
                f'<span id="__span-0-{n}"><a id="__codelineno-0-{n}" name="__codelineno-0-{n}" '
                f'href="#__codelineno-0-{n}"></a><span class="n">exit_reason</span> <span class="o">=</span> '
                f'<span class="n">vmcs_read32</span><span class="p">(</span><span class="n">VM_EXIT_REASON</span>'
                f'<span class="p">);</span>\n</span>'
                for n in range(1, 7)
            ]
            body.append(f'<div class="highlight"><pre><span></span><code>{"".join(lines)}</code></pre></div>')
        if k == 4:
            f = rng.randrange(10)
            body.append(
                f'<figure><img src="{base}/assets/images/fig-{f}.png" srcset="{base}/assets/images/fig-{f}.png 1x, '
                f'{base}/assets/images/fig-{f}@2x.png 2x" alt="figure {f}" loading="lazy">'
                f"<figcaption>Figure {f}</figcaption></figure>"
            )
        if k == 5 and i % 25 == 0:
            body.append(
                f'<video controls poster="{base}/assets/images/fig-1.png"><source src="{base}/assets/media/clip.mp4" '
                f'type="video/mp4"></video><p><a href="{base}/assets/files/spec.pdf#page=3">spec</a>, '
                f'<a href="mailto:kvm@vger.kernel.org">mail</a>, <a href="#top">top</a>, <a href="#">here</a>, '
                f'<a href="https://elixir.bootlin.com/linux/v3.8/source/arch/x86/kvm/vmx.c#L6001">source</a></p>'
            )
    body.append(extra_body)
    prev_link = f'<a href="{link(paths[i - 1])}" class="md-footer__link md-footer__link--prev">Prev</a>' if i else ""
    nxt = paths[(i + 1) % len(paths)]
    return f"""<!doctype html>
<html lang="zh" class="no-js">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="canonical" href="https://example.org/kvm/{quote(page)}">
<link rel="prev" href="{link(paths[i - 1])}"><link rel="next" href="{link(nxt)}">
<link rel="icon" href="{base}/assets/images/favicon.png">
<meta name="generator" content="mkdocs-1.6.1, mkdocs-material-9.6.0">
<title>Page {i} - KVM on VMX</title>
<link rel="stylesheet" href="{base}/assets/stylesheets/main.css">
<link rel="stylesheet" href="{base}/assets/stylesheets/palette.css">
{extra_head}
<script>__md_scope=new URL("{base}",location),__md_hash=e=>[...e].reduce(((e,_)=>(e<<5)-e+_.charCodeAt(0)),0)</script>
</head>
<body dir="ltr" data-md-color-scheme="default">
<input class="md-toggle" data-md-toggle="drawer" type="checkbox" id="__drawer" autocomplete="off">
<label class="md-overlay" for="__drawer"></label>
<div data-md-component="skip"><a href="#section-1" class="md-skip">跳转至</a></div>
<header class="md-header md-header--shadow" data-md-component="header">
<nav class="md-header__inner md-grid" aria-label="页眉">
<a href="{link("index.html")}" title="KVM on VMX" class="md-header__button md-logo" aria-label="KVM on VMX">
<img src="{base}/assets/images/logo.svg" alt="logo"></a>
<div class="md-header__title"><span class="md-ellipsis">Page {i}</span></div>
<form class="md-search__form" name="search"><input type="text" class="md-search__input" name="query"></form>
</nav></header>
<div class="md-container" data-md-component="container"><main class="md-main" data-md-component="main">
<div class="md-main__inner md-grid">
<div class="md-sidebar md-sidebar--primary" data-md-component="sidebar" data-md-type="navigation">
<nav class="md-nav md-nav--primary" aria-label="导航栏"><ul class="md-nav__list" data-md-scrollfix>
{"".join(nav)}
</ul></nav></div>
<div class="md-sidebar md-sidebar--secondary" data-md-component="sidebar" data-md-type="toc">
<nav class="md-nav md-nav--secondary" aria-label="目录"><ul class="md-nav__list" data-md-component="toc">
{"".join(toc)}
</ul></nav></div>
<div class="md-content" data-md-component="content"><article class="md-content__inner md-typeset">
{chr(10).join(body)}
</article></div></div></main>
<footer class="md-footer"><nav class="md-footer__inner md-grid" aria-label="页脚">{prev_link}
<a href="{link(nxt)}" class="md-footer__link md-footer__link--next">Next</a></nav>
<div class="md-copyright">Made with <a href="https://squidfunk.github.io/mkdocs-material/" target="_blank"
rel="noopener">Material for MkDocs</a></div></footer></div>
<script id="__config" type="application/json">{{"base": "{base}", "features": ["navigation.sections"]}}</script>
<script src="{base}/assets/javascripts/bundle.js"></script>
</body></html>
"""


def _fault(i: int, paths: list[str], kind: str) -> tuple[Fault, str, str]:
    """Build the fault of ``kind`` for page ``i``: (fault, head html, body html)."""
    page = paths[i]
    token = f"f{i:05d}"
    base = posixpath.relpath(".", posixpath.dirname(page) or ".")
    other = next(p for p in (paths[(i + 3) % len(paths)], paths[0]) if p != page)
    other_rel = _rel(other, page)
    some_dir = next(posixpath.dirname(p) for p in paths[1:] if p.endswith("/index.html"))
    head = body = ""
    if kind == "missing-page":
        href = f"nope-{token}.html"
    elif kind == "missing-anchor":
        href = f"{other_rel}#nope-{token}"
    elif kind == "missing-local-anchor":
        href = f"#nope-{token}"
    elif kind == "dir-url-anchor":
        href = f"{_rel(some_dir, page)}/#nope-{token}"
    elif kind == "missing-image":
        href = f"{base}/assets/images/nope-{token}.png"
        body = f'<p><img src="{href}" alt="missing"></p>'
    elif kind == "missing-srcset":
        href = f"{base}/assets/images/nope-{token}@2x.png"  # the candidate, as checkers report it
        srcset = f"{base}/assets/images/fig-1.png 1x, {href} 2x"
        body = f'<p><img src="{base}/assets/images/fig-1.png" srcset="{srcset}" alt="missing 2x"></p>'
    elif kind == "missing-zh-page":
        href = quote(f"缺失-{token}.html")
    elif kind == "missing-zh-anchor":
        href = f"{other_rel}#{quote('不存在-' + token)}"
    elif kind == "missing-stylesheet":
        href = f"{base}/assets/stylesheets/nope-{token}.css"
        head = f'<link rel="stylesheet" href="{href}">'
    elif kind == "missing-dir-index":
        href = f"{base}/nope-{token}/"
    else:  # pragma: no cover - guarded by FAULT_KINDS
        raise ValueError(kind)
    if not head and not body:
        body = f'<p>Broken on purpose: <a href="{href}">here</a>.</p>'
    return Fault(page, href, kind, token), head, body


def generate_site(root: Path, n_pages: int, seed: int = 1) -> list[Fault]:
    """Write an ``n_pages`` Material-like site under ``root``; return the injected faults."""
    rng = random.Random(seed)
    paths = page_paths(n_pages)
    faults: list[Fault] = []
    for asset in ASSETS:
        dst = root / asset
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(b"asset " + asset.encode())
    made: set[str] = set()
    tree = _tree(paths)
    for i, page in enumerate(paths):
        head = body = ""
        if i % FAULT_EVERY == FAULT_EVERY // 2 and len(paths) > 3:
            kind = FAULT_KINDS[(i // FAULT_EVERY) % len(FAULT_KINDS)]
            fault, head, body = _fault(i, paths, kind)
            faults.append(fault)
        d = posixpath.dirname(page)
        if d and d not in made:
            os.makedirs(root / d, exist_ok=True)
            made.add(d)
        (root / page).write_text(_page_html(i, paths, tree, rng, head, body), encoding="utf-8")
    return faults
