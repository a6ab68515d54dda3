"""Tests for the link checker (kvmdocs/linkcheck.py, scripts/check_links.py).

Each rule of the checker has a sound case and a broken case in a generated
fixture site; the tests assert the exact set of (page, href, reason) reported,
so a missed fault and a false alarm both fail. No test touches the network:
external links are checked against an http.server on 127.0.0.1 started here.
"""

from __future__ import annotations

import http.server
import importlib.util
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from kvmdocs import linkcheck
from kvmdocs.linkbench import FAULT_KINDS, generate_site
from kvmdocs.linkcheck import ExternalChecker, check_site, parse_srcset

REPO = Path(__file__).resolve().parent.parent


def _load_cli() -> object:
    """Import scripts/check_links.py by path: scripts/ is not a package."""
    spec = importlib.util.spec_from_file_location("check_links_cli", REPO / "scripts" / "check_links.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


main = _load_cli().main  # type: ignore[attr-defined]

ZH_PAGE = "中文页面.html"
ZH_PAGE_ENC = "%E4%B8%AD%E6%96%87%E9%A1%B5%E9%9D%A2.html"
ZH_ID = "概述"
ZH_ID_ENC = "%E6%A6%82%E8%BF%B0"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (path -> text or bytes) under ``root``."""
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
    return root


def html(body: str, head: str = "") -> str:
    return f"<!doctype html><html><head><meta charset='utf-8'><title>t</title>{head}</head><body>{body}</body></html>"


def triples(report: linkcheck.Report) -> set[tuple[str, str, str]]:
    return {(b.page, b.href, b.reason) for b in report.broken}


# One sound and one broken case per rule; SOUND must produce nothing.
SOUND = f"""
<p id="self-id">sound references</p>
<a href="page.html">plain</a>
<a href="./page.html#intro">id fragment</a>
<a href="page.html#legacy">a[name] fragment</a>
<a href="sub/">directory URL</a>
<a href="sub/#in-sub">fragment on a directory URL</a>
<a href="sub">directory without slash</a>
<a href="sub/deep/page.html">nested</a>
<a href="/page.html#intro">root-relative</a> <a href="/../page.html#intro">'..' stops at '/' in a URL</a>
<a href="page.html?x=1&amp;y=2#intro">query string</a>
<a href="{ZH_PAGE_ENC}#{ZH_ID_ENC}">percent-encoded Chinese page and anchor</a>
<a href="{ZH_PAGE}#{ZH_ID}">raw Chinese page and anchor</a>
<a href="page.html#a%20b">encoded space in id</a>
<a href="#">hash</a> <a href="#top">top</a> <a href="#TOP">TOP</a> <a href="">empty</a>
<a href="#self-id">same page</a>
<a href="doc.pdf#page=2">fragment on non-HTML</a>
<a href="mailto:kvm@example.org">m</a> <a href="tel:+100">t</a> <a href="data:text/plain,x">d</a>
<a href="javascript:void(0)">j</a> <a href="https://example.invalid/x">external, not checked offline</a>
<a href="//cdn.example.invalid/x.js">protocol-relative</a>
<a href="  page.html  ">padded</a> <a href="pa
ge.html">newline inside</a>
<img src="img/logo.png" srcset="img/logo.png 1x, img/logo@2x.png 2x" alt="">
<picture><source srcset="img/logo@2x.png 2x, img/logo.png?a,b 1x"><img src="img/logo.png" alt=""></picture>
<video src="media/clip.mp4" poster="media/poster.jpg"><track src="media/sub.vtt"></video>
<audio src="media/clip.mp4"></audio> <script src="js/app.js"></script>
<iframe src="frame.html#f"></iframe> <embed src="doc.pdf">
<map name="m"><area href="page.html#intro" alt=""></map>
<template><a href="template-content-is-inert.html">t</a></template>
<!-- <a href="commented-out.html"> -->
<textarea><a href="text-not-markup.html"></textarea>
"""

BROKEN = f"""
<a href="missing.html">missing file</a>
<a href="page.html#nope">missing anchor</a>
<a href="#nope-here">missing anchor on this page</a>
<a href="sub/#nope">missing anchor behind a directory URL</a>
<a href="nodir/">directory without index.html</a>
<a href="/missing-root.html">missing root-relative</a>
<a href="../outside.html">escapes the site</a>
<a href="sub/../../outside.html">escapes through a subdirectory</a>
<a href="%E7%BC%BA.html">missing Chinese page</a>
<a href="{ZH_PAGE_ENC}#%E6%97%A0">missing Chinese anchor</a>
<a href="%FF.html">not UTF-8</a>
<a href="page.html?x=1#nope2">missing anchor after a query</a>
<img src="img/missing.png" srcset="img/logo.png 1x, img/missing@2x.png 2x" alt="">
<picture><source srcset="img/missing-source.webp"></picture>
<video src="media/missing.mp4" poster="media/missing-poster.jpg"><source src="media/missing.webm"></video>
<audio src="media/missing.ogg"></audio> <script src="js/missing.js"></script>
<iframe src="missing-frame.html"></iframe> <embed src="missing.swf">
<map name="m2"><area href="missing-area.html" alt=""></map>
"""

EXPECTED_BROKEN = {
    ("index.html", "missing.html", "missing-file"),
    ("index.html", "page.html#nope", "missing-anchor"),
    ("index.html", "#nope-here", "missing-anchor"),
    ("index.html", "sub/#nope", "missing-anchor"),
    ("index.html", "nodir/", "missing-index"),
    ("index.html", "/missing-root.html", "missing-file"),
    ("index.html", "../outside.html", "escapes-site"),
    ("index.html", "sub/../../outside.html", "escapes-site"),
    ("index.html", "%E7%BC%BA.html", "missing-file"),
    ("index.html", f"{ZH_PAGE_ENC}#%E6%97%A0", "missing-anchor"),
    ("index.html", "%FF.html", "bad-encoding"),
    ("index.html", "page.html?x=1#nope2", "missing-anchor"),
    ("index.html", "img/missing.png", "missing-file"),
    ("index.html", "img/missing@2x.png", "missing-file"),
    ("index.html", "img/missing-source.webp", "missing-file"),
    ("index.html", "media/missing.mp4", "missing-file"),
    ("index.html", "media/missing-poster.jpg", "missing-file"),
    ("index.html", "media/missing.webm", "missing-file"),
    ("index.html", "media/missing.ogg", "missing-file"),
    ("index.html", "js/missing.js", "missing-file"),
    ("index.html", "missing-frame.html", "missing-file"),
    ("index.html", "missing.swf", "missing-file"),
    ("index.html", "missing-area.html", "missing-file"),
    # the nested page resolves '..' against its own directory
    ("sub/deep/page.html", "../missing.html", "missing-file"),
    ("sub/deep/page.html", "../../../up-too-far.html", "escapes-site"),
    # <base href> changes what relative URLs mean
    ("base.html", "page.html", "missing-file"),
    # malformed markup is read the way a browser reads it
    ("malformed.html", "unquoted-missing.html", "missing-file"),
    ("malformed.html", "first-wins-missing.html", "missing-file"),
    ("malformed.html", "UPPER-MISSING.html", "missing-file"),
}

ASSETS = {
    "img/logo.png": b"\x89PNG",
    "img/logo@2x.png": b"\x89PNG",
    "media/clip.mp4": b"\0\0",
    "media/poster.jpg": b"\xff\xd8",
    "media/sub.vtt": "WEBVTT",
    "js/app.js": "1;",
    "css/site.css": "body{}",
    "doc.pdf": b"%PDF-1.4",
    "nodir/file.txt": "x",
}


def fixture_site(root: Path) -> Path:
    """The one-case-per-rule site."""
    files: dict[str, str | bytes] = dict(ASSETS)
    files.update(
        {
            "index.html": html(
                SOUND + BROKEN,
                head='<link rel="stylesheet" href="css/site.css"><link rel="icon" href="img/logo.png">'
                '<link rel="preconnect" href="/not-a-resource/"><link rel="dns-prefetch" href="//x.invalid">',
            ),
            "page.html": html(
                '<h2 id="intro">Intro</h2><a name="legacy"></a><h2 id="a b">space</h2>'
                '<a href="index.html#self-id">back</a>'
            ),
            "frame.html": html('<div id="f"></div>'),
            ZH_PAGE: html(f'<h2 id="{ZH_ID}">概述</h2>'),
            "sub/index.html": html('<p id="in-sub"></p><a href="../page.html#intro">up</a>'),
            "sub/deep/page.html": html(
                '<a href="../index.html#in-sub">up</a><a href="../../page.html">top</a>'
                '<a href="../missing.html">m</a><a href="../../../up-too-far.html">far</a>'
            ),
            "base.html": html(
                '<a href="deep/page.html">resolved against sub/</a><a href="page.html">sub/page.html is missing</a>'
                '<a href="../page.html#intro">back up</a>',
                head='<base href="sub/">',
            ),
            "malformed.html": (
                "<html><body><div><p <a href='attribute-of-p.html'>not a link</p></div></span>"
                "<table><tr><td><a href=unquoted-missing.html>x</a><a href=page.html#intro>ok</td></table>"
                "<a href='first-wins-missing.html' href='page.html'>dup</a>"
                "<script>var s = '<a href=\"in-script.html\">';</script>"
                "<A HREF='UPPER-MISSING.html'>tags and attribute names are case-insensitive</A><a href>no value</a>"
                "<a href='page.html' <b>junk</b><a href='truncated-at-eof.html"
            ),
        }
    )
    return write(root, files)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return fixture_site(tmp_path / "site")


# --------------------------------------------------------------------------- rules


def test_every_rule_exact_set(site: Path) -> None:
    report = check_site(site, jobs=1)
    assert triples(report) == EXPECTED_BROKEN
    assert report.exit_code == 1
    assert report.pages == 8


def test_parallel_run_matches_serial(site: Path) -> None:
    for i in range(80):  # enough pages to take the multiprocessing path
        write(site, {f"many/p{i}.html": html(f'<a href="p{(i + 1) % 80}.html#x{i}">n</a><b id="x{i - 1}">')})
    serial = check_site(site, jobs=1)
    parallel = check_site(site, jobs=2)
    assert triples(serial) == triples(parallel)
    assert serial.links == parallel.links
    extra = triples(serial) - EXPECTED_BROKEN
    assert extra == {("many/p79.html", "p0.html#x79", "missing-anchor")}


def test_base_path(tmp_path: Path) -> None:
    root = write(
        tmp_path / "s",
        {
            "index.html": html(
                '<a href="/kvm/page.html#a">ok</a><a href="/kvm/">root dir</a><a href="/kvm">bare prefix</a>'
                '<a href="/kvm/x/../page.html">dot-dot inside the prefix</a><a href="/kvm/missing.html">m</a>'
                '<a href="/other/page.html">o</a><a href="/page.html">p</a><a href="/kvm/../page.html">up and out</a>'
                '<a href="/kvmx/page.html">prefix is a path segment, not a string prefix</a>'
            ),
            "page.html": html('<i id="a"></i>'),
        },
    )
    report = check_site(root, base_path="/kvm/", jobs=1)
    assert triples(report) == {
        ("index.html", "/kvm/missing.html", "missing-file"),
        ("index.html", "/other/page.html", "escapes-site"),
        ("index.html", "/page.html", "escapes-site"),
        ("index.html", "/kvm/../page.html", "escapes-site"),
        ("index.html", "/kvmx/page.html", "escapes-site"),
    }
    # without --base-path the same root-relative links resolve against SITE_DIR;
    # '..' stops at '/' as in a browser, so /kvm/../page.html is /page.html
    assert triples(check_site(root, jobs=1)) == {
        ("index.html", "/kvm/page.html#a", "missing-file"),
        ("index.html", "/kvm/", "missing-file"),
        ("index.html", "/kvm", "missing-file"),
        ("index.html", "/kvm/x/../page.html", "missing-file"),
        ("index.html", "/kvm/missing.html", "missing-file"),
        ("index.html", "/other/page.html", "missing-file"),
        ("index.html", "/kvmx/page.html", "missing-file"),
    }


def test_srcset_parsing() -> None:
    assert parse_srcset("a.png 1x, b.png 2x") == ["a.png", "b.png"]
    assert parse_srcset(" a.png,b.png 2x ,, c.png 100w") == ["a.png,b.png", "c.png"]  # commas inside a URL
    assert parse_srcset("a.png, b.png 2x") == ["a.png", "b.png"]
    assert parse_srcset("a,b.png 1x, c.png") == ["a,b.png", "c.png"]
    assert parse_srcset("img.png (max-width: 1px, x) 1x, d.png") == ["img.png", "d.png"]
    assert parse_srcset("") == []


def test_duplicates_reported_once_in_document_order(tmp_path: Path) -> None:
    root = write(
        tmp_path / "s",
        {"index.html": html('<a href="z.html">1</a><a href="a.html">2</a><a href="z.html">3</a><img src="z.html">')},
    )
    report = check_site(root, jobs=1)
    assert [b.href for b in report.broken] == ["z.html", "a.html"]


# --------------------------------------------------------------------------- pages that cannot be read


def test_binary_huge_and_unreadable_pages(tmp_path: Path) -> None:
    root = write(
        tmp_path / "s",
        {
            "index.html": html('<a href="binary.html#x">b</a><a href="huge.html#x">h</a><a href="big.html">g</a>'),
            "binary.html": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4,
            "huge.html": html("<p>" + "x" * 400_000 + "</p>"),
            "big.html": html("<p>filler</p>" * 20_000 + '<a href="deep-in-a-big-page.html">x</a>'),
        },
    )
    os.symlink("does-not-exist.html", root / "dangling.html")
    report = check_site(root, jobs=1, max_page_bytes=300_000)
    assert triples(report) == {
        ("binary.html", "", "binary"),
        ("huge.html", "", "too-large"),
        ("dangling.html", "", "unreadable"),
        ("big.html", "deep-in-a-big-page.html", "missing-file"),
    }
    assert report.exit_code == 2  # an unreadable file is an I/O error
    assert report.io_errors == ["cannot read dangling.html: No such file or directory"]


def test_fifo_named_html_does_not_block(tmp_path: Path) -> None:
    root = write(tmp_path / "s", {"index.html": html("")})
    os.mkfifo(root / "pipe.html")
    assert triples(check_site(root, jobs=1)) == {("pipe.html", "", "unreadable")}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_page(tmp_path: Path) -> None:
    root = write(tmp_path / "s", {"index.html": html(""), "secret.html": html("")})
    (root / "secret.html").chmod(0)
    report = check_site(root, jobs=1)
    assert triples(report) == {("secret.html", "", "unreadable")}
    assert report.exit_code == 2


def test_cli_exit_2_for_unreadable_page_keeps_reporting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path / "s", {"index.html": html('<a href="gone.html">x</a>')})
    os.symlink("nowhere", root / "dangling.html")
    assert main([str(root), "--format", "json"]) == 2
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert {(b["page"], b["reason"]) for b in data["broken"]} == {
        ("dangling.html", "unreadable"),
        ("index.html", "missing-file"),
    }
    assert err.strip().count("\n") == 0 and "dangling.html" in err


# --------------------------------------------------------------------------- CLI: exit codes and formats


def test_exit_codes(tmp_path: Path, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write(tmp_path / "clean", {"index.html": html('<a href="#">x</a>')})
    assert main([str(clean)]) == 0
    assert main([str(site)]) == 1
    capsys.readouterr()
    for argv in (
        [str(tmp_path / "nope")],
        [str(clean / "index.html")],
        [str(clean), "--format", "xml"],
        [str(clean), "--jobs", "0"],
        [str(clean), "--jobs", "two"],
        [str(clean), "--docs", str(tmp_path / "no-docs")],
        [str(clean), "--base-path", "kvm"],
        [],
        [str(clean), "--bogus"],
    ):
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--base-path" in out and "exit status" in out


def test_json_shape(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(site), "--format", "json", "--jobs", "1"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"pages", "links", "broken"}
    assert data["pages"] == 8
    assert isinstance(data["links"], int) and data["links"] > 60
    for item in data["broken"]:
        assert set(item) == {"page", "href", "reason", "source"}
        assert item["source"] is None
    assert {(b["page"], b["href"], b["reason"]) for b in data["broken"]} == EXPECTED_BROKEN


def test_links_count(tmp_path: Path) -> None:
    root = write(
        tmp_path / "s",
        {
            "index.html": html(
                '<a href="#">1</a><img src="i.png" srcset="i.png 1x, i.png 2x"><a href="mailto:x@y">no</a>'
                '<a href="https://example.invalid/">not without --external</a><link rel="preconnect" href="/">'
            ),
            "i.png": b"",
        },
    )
    assert check_site(root, jobs=1).links == 4


def test_text_format(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(site), "--jobs", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    links = check_site(site, jobs=1).links
    assert lines[-1] == f"checked 8 pages, {links} links: {len(EXPECTED_BROKEN)} broken references"
    body = lines[:-1]
    assert len(body) == len(EXPECTED_BROKEN)
    pages = [line.split(":", 1)[0] for line in body]
    assert pages == sorted(pages)  # grouped by page
    assert "index.html: missing-anchor: page.html#nope" in body


# --------------------------------------------------------------------------- Markdown line mapping


def test_markdown_line_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = write(
        tmp_path / "docs",
        {
            "zh/guide.md": "# 指南\n\n见[概述](index.md#不存在)。\n\n![图](img/missing.png)\n\n[下一页](gone.md)\n",
            "zh/index.md": "# 首页\n\n[指南](guide.md#intro)\n",
            "en/guide.md": (
                "# Guide\n\nIntro.\n\nSee [overview](index.md#nowhere).\n\n![figure](img/missing.png)\n"
                "\n[next](gone.md)\n"
            ),
            "en/index.md": "# Home\n",
        },
    )
    nav = '<nav><a href="theme-only.html">from the theme, not the page source</a></nav>'
    site = write(
        tmp_path / "site",
        {
            "guide.html": html(
                nav + '<p>见<a href="index.html#%E4%B8%8D%E5%AD%98%E5%9C%A8">概述</a>。</p>'
                '<p><img src="img/missing.png"></p><a href="gone.html">下一页</a>'
            ),
            "index.html": html(nav + '<a href="guide.html#intro">指南</a>'),
            "en/guide.html": html(
                nav + '<a href="index.html#nowhere">overview</a><img src="img/missing.png"><a href="gone.html">next</a>'
            ),
            "en/index.html": html(nav),
        },
    )
    report = check_site(site, jobs=1, docs=docs)
    got = {(b.page, b.href, b.reason, b.source) for b in report.broken}
    d = str(docs)
    assert got == {
        ("guide.html", "theme-only.html", "missing-file", None),
        ("guide.html", "index.html#%E4%B8%8D%E5%AD%98%E5%9C%A8", "missing-anchor", f"{d}/zh/guide.md:3"),
        ("guide.html", "img/missing.png", "missing-file", f"{d}/zh/guide.md:5"),
        ("guide.html", "gone.html", "missing-file", f"{d}/zh/guide.md:7"),
        ("index.html", "guide.html#intro", "missing-anchor", f"{d}/zh/index.md:3"),
        ("index.html", "theme-only.html", "missing-file", None),
        ("en/guide.html", "theme-only.html", "missing-file", None),
        ("en/guide.html", "index.html#nowhere", "missing-anchor", f"{d}/en/guide.md:5"),
        ("en/guide.html", "img/missing.png", "missing-file", f"{d}/en/guide.md:7"),
        ("en/guide.html", "gone.html", "missing-file", f"{d}/en/guide.md:9"),
        ("en/index.html", "theme-only.html", "missing-file", None),
    }
    # the CLI prints the same sources
    assert main([str(site), "--docs", d, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {(b["page"], b["href"], b["source"]) for b in data["broken"]} == {(p, h, s) for p, h, _, s in got}


def test_markdown_mapping_of_generated_source_links(tmp_path: Path, http_server: str) -> None:
    """A ``(src:path#L1)`` link becomes an external URL; the line is found by the URL's tail."""
    docs = write(tmp_path / "docs", {"zh/run.md": "# 运行\n\n入口在 [vmx_vcpu_run](src:arch/x86/kvm/vmx.c#L6001)。\n"})
    url = f"{http_server}/linux/v3.8/source/arch/x86/kvm/vmx.c#L6001"
    site = write(tmp_path / "site", {"run.html": html(f'<p>入口在 <a href="{url}">vmx_vcpu_run</a>。</p>')})
    report = check_site(site, jobs=1, docs=docs, external=True, external_checker=ExternalChecker(timeout=2))
    assert [(b.href, b.reason, b.source) for b in report.broken] == [(url, "http-404", f"{docs}/zh/run.md:3")]


def test_source_mapper_candidates(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", {"zh/a/index.md": "", "zh/b.md": "", "en/b.md": "", "en/a/index.md": ""})
    m = linkcheck.SourceMapper(docs, {"", "en", "a", "en/a"})
    assert m.candidates("b.html") == [docs / "zh/b.md"]
    assert m.candidates("en/b.html") == [docs / "en/b.md"]
    assert m.candidates("a/index.html") == [docs / "zh/a/index.md"]
    assert m.candidates("en/a/index.html") == [docs / "en/a/index.md"]
    assert m.candidates("missing.html") == []


# --------------------------------------------------------------------------- external links (local server only)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers by path; counts requests and the most requests in flight at once."""

    hits: ClassVar[dict[str, int]] = {}
    active: ClassVar[int] = 0
    max_active: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bool) -> None:
        cls = type(self)
        with cls.lock:
            cls.hits[self.path] = cls.hits.get(self.path, 0) + 1
            cls.active += 1
            cls.max_active = max(cls.max_active, cls.active)
        try:
            path = self.path.split("?")[0]
            if path == "/slow":
                time.sleep(1.5)
            if path.startswith("/busy"):
                time.sleep(0.2)
            if path == "/nohead" and self.command == "HEAD":
                code = 405
            elif path == "/redirect":
                self.send_response(301)
                self.send_header("Location", "/ok")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            elif path in ("/ok", "/nohead", "/slow") or path.startswith("/busy"):
                code = 200
            else:
                code = 404
            self.send_response(code)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "2")
            self.end_headers()
            if body:
                self.wfile.write(b"ok")
        finally:
            with cls.lock:
                cls.active -= 1

    def do_HEAD(self) -> None:
        self._answer(False)

    def do_GET(self) -> None:
        self._answer(True)


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An http.server on 127.0.0.1 (port chosen by the OS), stopped after the test."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    _Handler.hits, _Handler.active, _Handler.max_active = {}, 0, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_external_links(tmp_path: Path, http_server: str) -> None:
    base = http_server
    refused = "http://127.0.0.1:1/closed"
    body = (
        f'<a href="{base}/ok">ok</a><a href="{base}/ok#frag">same URL, other fragment</a>'
        f'<a href="{base}/missing">404</a><a href="{base}/nohead">HEAD refused, GET fine</a>'
        f'<a href="{base}/redirect">redirect to ok</a><a href="{base}/slow">slow</a><a href="{refused}">refused</a>'
        f'<a href="http://[::1">bad</a>'
    )
    root = write(tmp_path / "s", {"a.html": html(body), "b.html": html(f'<a href="{base}/ok">again</a>')})
    offline = check_site(root, jobs=1)
    assert triples(offline) == set() and _Handler.hits == {}  # nothing fetched without --external
    checker = ExternalChecker(timeout=0.5, per_host=2)
    report = check_site(root, jobs=1, external=True, external_checker=checker)
    assert triples(report) == {
        ("a.html", f"{base}/missing", "http-404"),
        ("a.html", f"{base}/slow", "timeout"),
        ("a.html", refused, "connection-error"),
        ("a.html", "http://[::1", "bad-url"),
    }
    assert _Handler.hits["/ok"] == 2  # HEAD for /ok and HEAD for the redirect target: one request per URL
    assert _Handler.hits["/nohead"] == 2  # HEAD refused, then GET
    # a second run with the same checker answers from its cache
    before = dict(_Handler.hits)
    check_site(root, jobs=1, external=True, external_checker=checker)
    assert _Handler.hits == before


def test_external_per_host_limit(tmp_path: Path, http_server: str) -> None:
    links = "".join(f'<a href="{http_server}/busy{i}">b</a>' for i in range(8))
    root = write(tmp_path / "s", {"index.html": html(links)})
    report = check_site(root, jobs=1, external=True, external_checker=ExternalChecker(timeout=5, per_host=2))
    assert report.broken == []
    assert 1 <= _Handler.max_active <= 2
    assert sum(v for k, v in _Handler.hits.items() if k.startswith("/busy")) == 8


def test_external_via_cli(tmp_path: Path, http_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = write(tmp_path / "s", {"index.html": html(f'<a href="{http_server}/missing">x</a>')})
    assert main([str(root), "--external", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["broken"] == [
        {"page": "index.html", "href": f"{http_server}/missing", "reason": "http-404", "source": None}
    ]
    assert data["links"] == 1


def test_progress_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert linkcheck._tty_progress(io.StringIO()) is None
    stream = Tty()
    show = linkcheck._tty_progress(stream)
    assert show is not None
    show(1, 2)
    show(2, 2)
    assert stream.getvalue().endswith("\rexternal links: 2/2 checked\n")


# --------------------------------------------------------------------------- the benchmark tree


@pytest.mark.parametrize("jobs", [1, 2])
def test_benchmark_tree_faults_found_exactly(tmp_path: Path, jobs: int) -> None:
    faults = generate_site(tmp_path / "bench", 300)
    assert {f.kind for f in faults} == set(FAULT_KINDS)
    report = check_site(tmp_path / "bench", jobs=jobs)
    assert {(b.page, b.href) for b in report.broken} == {(f.page, f.href) for f in faults}
