"""Exact, fast link and anchor checker for a built static HTML tree.

Why it is built this way: a documentation site is mostly links, and the
established checkers either crawl it like a browser over HTTP (slow) or skip
whole classes of faults (fragments, anchors behind directory URLs, ``srcset``).
This checker reads every HTML file once, parses it once with an HTML5 parser
(selectolax/lexbor, so malformed markup is seen the way a browser sees it),
extracts ids and references in one pass, and resolves every reference against
in-memory indexes of the tree: the file set from one directory walk and the
id set of each page. Parsing runs on all cores (one process per core, pages
handed out in chunks); only cross-page fragments and page ids travel back to
the parent, so the merge is cheap.

Parser choice, measured on the generated 10,000-page Material-like tree
(145 MB of HTML; ``scripts/bench_links.py --compare-parsers``; one core,
read + parse + extract ids and URL attributes of every page):

    selectolax 1.0.2 (lexbor) ...  1.61 s   90 MB/s   HTML5 tree construction
    lxml 6.1.3 (libxml2) ........  5.49 s   26 MB/s   not HTML5
    html.parser (stdlib) ........ 19.3 s     7.5 MB/s (timed on 1,000 pages)

On both cores the whole check of that tree takes 1.6 s, against a floor of
0.68 s for walking the tree and reading and parsing every page once; the
difference is extracting ~130 elements per page through selectolax and the
resolution itself (``scripts/bench_links.py`` prints both).

Reason codes (``Broken.reason``):

* ``missing-file``: the target file or directory does not exist;
* ``missing-index``: a directory URL whose directory has no ``index.html``;
* ``missing-anchor``: the target page has no element with that ``id`` and
  no ``a`` with that ``name``;
* ``escapes-site``: a relative URL climbs above SITE_DIR with ``..``, or a
  root-relative URL lies outside ``--base-path`` (root-relative URLs are
  resolved as a browser does over HTTP: ``/../`` is ``/``);
* ``bad-encoding``: the URL's percent-encoding is not UTF-8;
* ``bad-url``: an http(s) URL that cannot be parsed;
* external (``--external`` only): ``http-NNN``, ``timeout``,
  ``connection-error``, ``ssl-error``;
* page-level (``href`` is empty): ``unreadable`` (an I/O error: exit 2),
  ``binary``, ``too-large``, ``parse-error``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from selectolax.lexbor import LexborCSSSelector, LexborHTMLParser

HTML_SUFFIXES = (".html", ".htm", ".xhtml")
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a page larger than this is reported, not parsed
EXTERNAL_SCHEMES = frozenset({"http", "https"})  # any other scheme (mailto:, tel:, data:, ...) is not followed
# <link rel> values that name an origin or a hint, not a resource a browser must load
HINT_RELS = frozenset({"preconnect", "dns-prefetch"})

# :is() matches each element once; a plain selector list yields an element once per matching selector
_SELECTOR = ":is([id],a[name],[href],[src],[srcset],[poster])"
_HREF_TAGS = frozenset({"a", "area", "link"})
_SRC_TAGS = frozenset({"img", "script", "source", "iframe", "audio", "video", "embed", "track"})
_SRCSET_TAGS = frozenset({"img", "source"})
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_CHARSET_RE = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_URL_TRIM = "\t\n\x0c\r "
_WS_IN_URL = str.maketrans("", "", "\t\n\r")


@dataclass
class Broken:
    """One broken reference (or a page that could not be checked, with ``href == ""``)."""

    page: str
    href: str
    reason: str
    source: str | None = None
    pos: int = 0  # document order within the page, for stable grouping
    text: str = ""  # link text, used to find the Markdown line

    def as_dict(self) -> dict[str, str | None]:
        """The JSON shape promised by the CLI."""
        return {"page": self.page, "href": self.href, "reason": self.reason, "source": self.source}


@dataclass
class Report:
    """Result of one run; ``io_errors`` non-empty means exit status 2."""

    pages: int = 0
    links: int = 0
    broken: list[Broken] = field(default_factory=list)
    io_errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 broken, 2 I/O error."""
        if self.io_errors:
            return 2
        return 1 if self.broken else 0


class CheckError(Exception):
    """A usage or I/O problem that stops the run before checking (exit 2)."""


# --------------------------------------------------------------------------- walking


def walk_site(site: Path) -> tuple[set[str], set[str], list[str]]:
    """Index every file and directory under ``site`` once: (files, dirs, errors).

    Paths are site-relative with ``/``. Symlinks to files count as files (a web
    server follows them); directory symlinks are followed once.
    """
    files: set[str] = set()
    dirs: set[str] = {""}
    errors: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(str(site), "")]
    while stack:
        abs_dir, rel_dir = stack.pop()
        try:
            st = os.stat(abs_dir)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            with os.scandir(abs_dir) as it:
                entries = list(it)
        except OSError as exc:
            errors.append(f"cannot read directory {rel_dir or '.'}: {exc.strerror or exc}")
            continue
        prefix = rel_dir + "/" if rel_dir else ""
        for e in entries:
            rel = prefix + e.name
            try:
                is_dir = e.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                dirs.add(rel)
                stack.append((e.path, rel))
            else:
                files.add(rel)  # includes dangling symlinks and specials: reported when read
    return files, dirs, errors


def is_html(path: str) -> bool:
    """Pages are the files a browser would render as HTML."""
    return path.lower().endswith(HTML_SUFFIXES)


# --------------------------------------------------------------------------- URL helpers


def parse_srcset(value: str) -> list[str]:
    """Candidate URLs of a ``srcset``, following the HTML standard's parsing algorithm."""
    urls: list[str] = []
    i, n = 0, len(value)
    ws = " \t\n\r\x0c"
    while True:
        while i < n and (value[i] in ws or value[i] == ","):
            i += 1
        if i >= n:
            return urls
        start = i
        while i < n and value[i] not in ws:
            i += 1
        url = value[start:i]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0  # skip descriptors up to the next comma outside parentheses
            while i < n:
                c = value[i]
                if c == "(":
                    depth += 1
                elif c == ")" and depth:
                    depth -= 1
                elif c == "," and not depth:
                    break
                i += 1
        if url:
            urls.append(url)


def normalize_base_path(prefix: str | None) -> str:
    """``--base-path`` as ``/prefix/`` (decoded), or ``/`` when the site is at the root."""
    if not prefix or prefix == "/":
        return "/"
    if not prefix.startswith("/"):
        raise CheckError(f"--base-path must start with '/': {prefix!r}")
    try:
        prefix = unquote(prefix, errors="strict")
    except UnicodeDecodeError as exc:
        raise CheckError(f"--base-path is not valid UTF-8 when decoded: {prefix!r}") from exc
    return prefix.rstrip("/") + "/"


def fragment_ok(frag: str, ids: frozenset[str] | set[str]) -> bool:
    """True when a browser would find ``#frag`` in a page with these ids/names (HTML 'indicated part')."""
    if not frag or frag in ids:
        return True
    try:
        decoded = unquote(frag, errors="strict")
    except UnicodeDecodeError:
        decoded = frag
    return decoded in ids or decoded.lower() == "top"


# --------------------------------------------------------------------------- per-page work (runs in workers)


@dataclass
class _Context:
    """What every worker needs, inherited by fork (or pickled once on spawn)."""

    site: str
    files: set[str]
    dirs: set[str]
    base_path: str
    external: bool
    max_bytes: int
    want_text: bool = False


_CTX: _Context | None = None
# Verdicts of (base directory, raw URL), memoised per worker: nav, header and footer
# links repeat on every page of a directory, so most references cost one lookup.
_OK, _SKIP, _EXT, _BROKEN, _FRAG = range(5)
_VERDICTS: dict[str, dict[str, tuple]] = {}  # base directory -> raw URL -> verdict
_PATHS: dict[tuple[str, str], tuple[str | None, str | None]] = {}
_OK_V = (_OK,)
_ABSENT = object()
# One CSS engine per process: selectolax creates one per document otherwise, and
# that set-up costs as much as a third of parsing a Material page.
_ENGINE: list[LexborCSSSelector] = []
_SKIP_V = (_SKIP,)

PageResult = tuple[
    str,  # page
    str | None,  # page-level problem reason
    str,  # page problem detail (for I/O messages)
    str,  # ids and a[name] joined by NUL
    list[tuple[int, str, str, str]],  # broken: (pos, href, reason, text)
    list[tuple[int, str, str, str, str]],  # cross-page fragments: (pos, href, target, fragment, text)
    list[tuple[int, str, str]],  # external: (pos, href, url)
    int,  # references checked
]


def _tune_malloc() -> None:
    """Keep freed heap in the process instead of returning it to the kernel after every page.

    lexbor allocates and frees a few hundred KiB per document; with glibc's
    defaults that memory is trimmed on free and page-faulted back on the next
    parse, which measured as 2.3x slower parsing (0.58 s against 0.25 s for
    3,000 Material-like pages). Harmless elsewhere: it only sets allocator knobs.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_top_pad = -1, -2
    mallopt(m_trim_threshold, 256 * 1024 * 1024)
    mallopt(m_top_pad, 64 * 1024 * 1024)


def _init_worker(ctx: _Context) -> None:
    """Install the shared context in a worker process."""
    global _CTX
    _tune_malloc()
    _CTX = ctx
    _VERDICTS.clear()
    _PATHS.clear()


def _resolve_path(base_dir: str, path: str) -> tuple[str | None, str | None]:
    """Map a URL path (no query, no fragment) seen in ``base_dir`` to (site file, None) or (None, reason)."""
    key = (base_dir, path)
    hit = _PATHS.get(key)
    if hit is None:
        hit = _PATHS[key] = _resolve_path_uncached(base_dir, path)
    return hit


def _resolve_path_uncached(base_dir: str, path: str) -> tuple[str | None, str | None]:
    ctx = _CTX
    assert ctx is not None
    decoded = path
    if "%" in path or "\\" in path:
        try:
            decoded = unquote(path.replace("\\", "/"), errors="strict")
        except UnicodeDecodeError:
            return (None, "bad-encoding")
    parts: list[str] = []
    if decoded.startswith("/"):
        # A root-relative URL is resolved as a browser does over HTTP ('..' stops at
        # '/'), then must lie under the base path, where SITE_DIR is served.
        segs = decoded.split("/")
        for seg in segs:
            if seg == "..":
                if parts:
                    parts.pop()
            elif seg and seg != ".":
                parts.append(seg)
        prefix = ctx.base_path.strip("/").split("/") if ctx.base_path != "/" else []
        if parts[: len(prefix)] != prefix:
            return (None, "escapes-site")
        want_dir = segs[-1] in ("", ".", "..") or len(parts) == len(prefix)  # the base path is a directory
        parts = parts[len(prefix) :]
    else:
        # A relative URL that climbs above SITE_DIR leaves the site (and breaks on file://).
        parts = base_dir.split("/") if base_dir else []
        rest = decoded
        while rest.startswith("../"):  # the form MkDocs writes: only leading '..'
            if not parts:
                return (None, "escapes-site")
            parts.pop()
            rest = rest[3:]
        if "./" in rest or "//" in rest or rest.endswith("."):
            for seg in rest.split("/"):  # anything else: the general algorithm
                if seg == "..":
                    if not parts:
                        return (None, "escapes-site")
                    parts.pop()
                elif seg and seg != ".":
                    parts.append(seg)
            want_dir = rest == "" or rest.endswith(("/", "/.", "/..")) or rest in (".", "..")
        else:
            want_dir = rest == "" or rest.endswith("/")
            if rest:
                parts.append(rest.rstrip("/"))
    target = "/".join(parts)
    files, dirs = ctx.files, ctx.dirs
    if not want_dir and target in files:
        return (target, None)
    if want_dir or target in dirs:
        index = f"{target}/index.html" if target else "index.html"
        if index in files:
            return (index, None)
        if target in dirs:
            return (None, "missing-index")
    return (None, "missing-file")


def _classify(base_dir: str, raw: str, has_base: bool, base_external: str | None) -> tuple:
    """Verdict for one URL, independent of the page it is on (target None means that page)."""
    ctx = _CTX
    assert ctx is not None
    url = (raw or "").strip(_URL_TRIM)
    if not url.isprintable():
        url = url.translate(_WS_IN_URL)
    if ":" in url:
        m = _SCHEME_RE.match(url)
        if m:
            if m.group(1).lower() in EXTERNAL_SCHEMES:
                return (_EXT, url) if ctx.external else _SKIP_V
            return _SKIP_V  # mailto:, tel:, data:, javascript:, ... are not followed
    if url.startswith("//"):
        return (_EXT, "https:" + url) if ctx.external else _SKIP_V
    if base_external is not None:
        return (_EXT, urljoin(base_external, url)) if ctx.external else _SKIP_V
    path, _, frag = url.partition("#") if "#" in url else (url, "", "")
    if "?" in path:
        path = path.partition("?")[0]
    target: str | None = None  # this page
    if path or has_base:
        target, reason = _resolve_path(base_dir, path)
        if target is None:
            return (_BROKEN, reason)
    if not frag or (target is not None and not is_html(target)):
        return _OK_V
    return (_FRAG, target, frag)


def _no_text(node: object) -> str:
    """Link text is only needed to map back to Markdown (--docs)."""
    return ""


def _link_text(node: object) -> str:
    """Short visible text of a link, a last-resort needle for the Markdown line."""
    try:
        return " ".join(node.text(deep=True).split())[:120]  # type: ignore[attr-defined]
    except Exception:
        return ""


def check_page(page: str) -> PageResult:
    """Read, parse and check one page against the tree indexes; never raises."""
    try:
        return _check_page(page)
    except Exception as exc:  # a parser bug must not stop the run
        return (page, "parse-error", f"{type(exc).__name__}: {exc}", "", [], [], [], 0)


def _read_page(path: str, max_bytes: int) -> tuple[bytes | None, str | None, str]:
    """(data, None, "") or (None, problem, detail) for a page that cannot be parsed.

    One open, one fstat and (normally) one read: O_NONBLOCK so that a FIFO named
    ``.html`` cannot hang the run, and no buffered file object per page.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return None, "unreadable", exc.strerror or str(exc)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "unreadable", "not a regular file"
        if st.st_size > max_bytes:
            return None, "too-large", f"{st.st_size} bytes"
        data = os.read(fd, st.st_size + 1)
        if len(data) != st.st_size:  # a short read, or the file changed: read on to the end
            chunks, total = [data], len(data)
            while total <= max_bytes:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            data = b"".join(chunks)
    except OSError as exc:
        return None, "unreadable", exc.strerror or str(exc)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return None, "too-large", f"more than {max_bytes} bytes"
    if b"\0" in data[:8192]:
        return None, "binary", "NUL bytes"
    return data, None, ""


def _markup(data: bytes) -> str | bytes:
    """Bytes are parsed as UTF-8 (MkDocs' encoding); a page declaring another charset is decoded first."""
    if data.isascii():
        return data
    m = _CHARSET_RE.search(data, 0, 1024)
    if m:
        name = m.group(1).decode("ascii", "replace")
        try:
            if codecs.lookup(name).name != "utf-8":
                return data.decode(name, errors="replace")
        except LookupError:
            pass
    return data


def _check_page(page: str) -> PageResult:
    ctx = _CTX
    assert ctx is not None
    data, problem, detail = _read_page(os.path.join(ctx.site, page), ctx.max_bytes)
    if data is None:
        return (page, problem, detail, "", [], [], [], 0)
    tree = LexborHTMLParser(_markup(data))
    root = tree.root
    if not _ENGINE:
        _ENGINE.append(LexborCSSSelector())
    nodes = _ENGINE[0].find(_SELECTOR, root) if root is not None else []
    result = _scan(page, nodes, None, ctx.want_text)
    if result is None:  # the page has a <base href>: every relative URL means something else
        base = next(n for n in nodes if n.tag == "base" and "href" in n.attributes)
        result = _scan(page, nodes, base.attributes["href"] or "", ctx.want_text)
    assert result is not None
    return result


def _scan(page: str, nodes: list, base_href: str | None, want_text: bool) -> PageResult | None:
    """Collect ids and check references of one parsed page; None asks for a rescan with ``<base href>``.

    This loop runs about 130 times per Material page, so it is written for speed:
    one attribute dict per element, one dict lookup per reference in the common case.
    """
    page_dir = page.rpartition("/")[0]
    has_base = base_href is not None
    base_dir, base_external = _base_dir(page_dir, base_href) if base_href is not None else (page_dir, None)
    cache_key = f"{base_dir}\0{base_external}" if has_base else page_dir
    verdicts = _VERDICTS.get(cache_key)
    if verdicts is None:
        verdicts = _VERDICTS[cache_key] = {}
    text = _link_text if want_text else _no_text

    ids: list[str] = []
    add_id = ids.append
    broken: list[tuple[int, str, str, str]] = []
    xrefs: list[tuple[int, str, str, str, str]] = []
    ext: list[tuple[int, str, str]] = []
    local: list[tuple[int, str, str, object]] = []  # same-page fragments, checked once all ids are known
    n_refs = skipped = 0
    for node in nodes:
        attrs = node.attributes
        tag = node.tag
        v = attrs.get("id")
        if v:
            add_id(v)
        if tag == "a":
            v = attrs.get("name")
            if v:
                add_id(v)
            url = attrs.get("href", _ABSENT)
        elif tag == "link":
            url = attrs.get("href", _ABSENT)
            rel = attrs.get("rel")
            if rel and HINT_RELS.intersection(rel.lower().split()):
                continue
        elif tag == "area":
            url = attrs.get("href", _ABSENT)
        elif tag == "base":
            if not has_base and "href" in attrs:
                return None
            continue
        elif tag in _SRC_TAGS:
            if "srcset" in attrs or "poster" in attrs:
                urls = [] if "src" not in attrs else [attrs["src"] or ""]
                if tag in _SRCSET_TAGS:
                    urls += parse_srcset(attrs.get("srcset") or "")
                if tag == "video" and "poster" in attrs:
                    urls.append(attrs["poster"] or "")
                for url in urls:
                    n_refs += 1
                    verdict = verdicts.get(url)
                    if verdict is None:
                        verdict = verdicts[url] = _classify(base_dir, url, has_base, base_external)
                    if verdict is not _OK_V:
                        skipped += _file_ref(page, n_refs, url, verdict, node, text, broken, xrefs, ext, local)
                continue
            url = attrs.get("src", _ABSENT)
        else:
            continue
        if url is _ABSENT:
            continue
        if url is None:
            url = ""
        n_refs += 1
        verdict = verdicts.get(url)
        if verdict is None:
            verdict = verdicts[url] = _classify(base_dir, url, has_base, base_external)
        if verdict is _OK_V:
            continue
        if verdict[0] == _FRAG and verdict[1] is None:  # the commonest: a TOC or permalink anchor
            local.append((n_refs, url, verdict[2], node))
        else:
            skipped += _file_ref(page, n_refs, url, verdict, node, text, broken, xrefs, ext, local)
    if local:
        id_set = set(ids)
        for pos, url, frag, node in local:
            if frag not in id_set and not fragment_ok(frag, id_set):
                broken.append((pos, url, "missing-anchor", text(node)))
        broken.sort()
    return (page, None, "", "\0".join(ids), broken, xrefs, ext, n_refs - skipped)


def _file_ref(
    page: str,
    pos: int,
    url: str,
    verdict: tuple,
    node: object,
    text: Callable[[object], str],
    broken: list[tuple[int, str, str, str]],
    xrefs: list[tuple[int, str, str, str, str]],
    ext: list[tuple[int, str, str]],
    local: list[tuple[int, str, str, object]],
) -> int:
    """File a reference that is not plainly fine; return 1 when it is not followed at all."""
    kind = verdict[0]
    if kind == _SKIP:
        return 1
    if kind == _FRAG:
        target = verdict[1]
        if target is None or target == page:
            local.append((pos, url, verdict[2], node))
        else:
            xrefs.append((pos, url, target, verdict[2], text(node)))
    elif kind == _BROKEN:
        broken.append((pos, url, verdict[1], text(node)))
    else:
        ext.append((pos, url, verdict[1]))
    return 0


def _base_dir(page_dir: str, base_href: str) -> tuple[str, str | None]:
    """Directory that relative URLs resolve against after ``<base href>``, or an external base URL."""
    url = base_href.strip(_URL_TRIM)
    m = _SCHEME_RE.match(url)
    if (m and m.group(1).lower() in EXTERNAL_SCHEMES) or url.startswith("//"):
        return page_dir, ("https:" + url if url.startswith("//") else url)
    path = url.partition("#")[0].partition("?")[0]
    if not path:
        return page_dir, None
    ctx = _CTX
    assert ctx is not None
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return page_dir, None
    if decoded.startswith("/"):
        if not decoded.startswith(ctx.base_path):
            return page_dir, None
        full = decoded[len(ctx.base_path) :]
    else:
        full = f"{page_dir}/{decoded}" if page_dir else decoded
    parts: list[str] = []
    for seg in full.split("/"):
        if seg == "..":
            if parts:
                parts.pop()
        elif seg and seg != ".":
            parts.append(seg)
    if not full.endswith("/") and parts:
        parts.pop()  # <base href="dir/page.html"> resolves against dir/
    return "/".join(parts), None


def _check_chunk(pages: list[str]) -> list[PageResult]:
    """Worker entry point: one task checks a chunk of pages to keep IPC per page small."""
    return [check_page(p) for p in pages]


# --------------------------------------------------------------------------- external links


@dataclass
class ExternalChecker:
    """Checks http(s) URLs concurrently: bounded workers, a per-host limit, a timeout, one request per URL."""

    timeout: float = 10.0
    workers: int = 16
    per_host: int = 4
    user_agent: str = "kvmdocs-linkcheck/1.0 (+https://www.mkdocs.org/)"
    cache: dict[str, str | None] = field(default_factory=dict)  # URL without fragment -> reason
    _host_locks: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _host_sem(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._host_locks.get(host)
            if sem is None:
                sem = self._host_locks[host] = threading.BoundedSemaphore(self.per_host)
            return sem

    def fetch(self, url: str) -> str | None:
        """Return None when the URL answers, else a reason code."""
        import http.client
        import socket
        import ssl
        import urllib.error
        import urllib.request

        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            if not host:
                return "bad-url"
        except ValueError:
            return "bad-url"
        request_url = url.partition("#")[0]
        with self._host_sem(host.lower()):
            reason: str | None = None
            for method in ("HEAD", "GET"):
                req = urllib.request.Request(request_url, method=method, headers={"User-Agent": self.user_agent})
                try:
                    with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                        if method == "GET":
                            resp.read(1)
                        return None
                except urllib.error.HTTPError as exc:
                    if exc.code == 429:
                        return None  # rate limited: no evidence the link is broken
                    reason = f"http-{exc.code}"
                    # some servers refuse HEAD or answer it wrongly: GET is the browser's view
                except TimeoutError:
                    return "timeout"
                except urllib.error.URLError as exc:
                    if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                        return "timeout"
                    if isinstance(exc.reason, ssl.SSLError):
                        return "ssl-error"
                    return "connection-error"
                except ssl.SSLError:
                    return "ssl-error"
                except (OSError, http.client.HTTPException, ValueError):
                    reason = "connection-error"
            return reason

    def check(self, urls: Iterable[str], progress: Callable[[int, int], None] | None = None) -> dict[str, str | None]:
        """Check each distinct URL (fragment ignored) once, cached across calls; return url -> reason or None."""
        wanted = {u: u.partition("#")[0] for u in urls}
        todo = sorted({k for k in wanted.values() if k not in self.cache})
        total, done = len(todo), 0
        if todo:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
                for key, reason in zip(todo, pool.map(self.fetch, todo), strict=True):
                    self.cache[key] = reason
                    done += 1
                    if progress:
                        progress(done, total)
        return {u: self.cache[k] for u, k in wanted.items()}


def _tty_progress(stream: object) -> Callable[[int, int], None] | None:
    """A one-line progress meter, only when stderr is a terminal."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 0.1:
            last[0] = now
            end = "\n" if done == total else ""
            stream.write(f"\rexternal links: {done}/{total} checked{end}")  # type: ignore[attr-defined]
            stream.flush()  # type: ignore[attr-defined]

    return show


# --------------------------------------------------------------------------- Markdown source mapping


class SourceMapper:
    """Best-effort map from a broken reference on a built page to ``docs path:line``.

    A page ``a/b.html`` comes from ``a/b.md`` (or ``a/b/index.md``, ``a/README.md``)
    directly under DOCS_DIR, or under a language folder of DOCS_DIR: a folder that
    is also a top-level folder of the site keeps its name in the URL (``en/``),
    the others are the default language, built to the site root (``zh/``).
    """

    def __init__(self, docs: Path, site_dirs: set[str], shown: str | None = None) -> None:
        self.docs = docs
        self.shown = shown if shown is not None else str(docs)
        self.site_top = {d for d in site_dirs if d and "/" not in d}
        self._lines: dict[Path, list[str] | None] = {}
        try:
            self.lang_dirs = sorted(p.name for p in docs.iterdir() if p.is_dir())
        except OSError:
            self.lang_dirs = []

    def candidates(self, page: str) -> list[Path]:
        """Markdown files that could have produced ``page``, most likely first."""
        stem = page.rsplit(".", 1)[0]
        rels = [stem + ".md"]
        if stem == "index" or stem.endswith("/index"):
            d = stem[: -len("index")]
            rels += [d + "README.md", d + "readme.md"]
        else:
            rels.append(stem + "/index.md")
        out: list[Path] = []
        first = page.split("/", 1)[0] if "/" in page else ""
        for rel in rels:
            out.append(self.docs / rel)  # docs/a/b.md -> a/b.html, and docs/en/x.md -> en/x.html
        for lang in self.lang_dirs:
            if lang != first and lang not in self.site_top:
                out += [self.docs / lang / rel for rel in rels]  # default language at the site root
        return [p for p in out if p.is_file()]

    def _read(self, path: Path) -> list[str] | None:
        if path not in self._lines:
            try:
                self._lines[path] = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self._lines[path] = None
        return self._lines[path]

    @staticmethod
    def needles(href: str, text: str = "") -> list[str]:
        """Search strings for a broken href, most specific first."""
        out: list[str] = []

        def add(s: str) -> None:
            if s and s not in out and s not in ("#", ".", "/"):
                out.append(s)

        url = href.strip()
        add(url)
        try:
            dec = unquote(url)
        except Exception:
            dec = url
        add(dec)
        for u in (url, dec):
            path, sharp, frag = u.partition("#")
            path = path.partition("?")[0]
            tail = sharp + frag
            if path.endswith(".html"):
                md = path[: -len(".html")] + ".md"
                add(md + tail)
                if md.endswith("index.md"):
                    add(md[: -len("index.md")] + "README.md" + tail)
            segs = path.split("//", 1)[-1].split("/") if "://" in path else path.split("/")
            if "://" in path:
                segs = segs[1:]  # drop the host of an external URL: the source writes a short form
            for i in range(len(segs)):
                rest = "/".join(segs[i:])
                if rest and rest not in ("..", "."):
                    add(rest + tail)
                    if rest.endswith(".html"):
                        add(rest[: -len(".html")] + ".md" + tail)
            if frag:
                add("#" + frag)
                add("{#" + frag)
        if text:
            add("[" + text + "]")
            add(text)
        return out

    def locate(self, page: str, href: str, text: str = "") -> str | None:
        """``shown-docs/rel.md:line`` of the first line holding the most specific needle, or None."""
        if not href:
            return None
        files = [(p, self._read(p)) for p in self.candidates(page)]
        for needle in self.needles(href, text):
            for path, lines in files:
                if not lines:
                    continue
                for n, line in enumerate(lines, 1):
                    if needle in line:
                        rel = path.relative_to(self.docs).as_posix()
                        return f"{self.shown.rstrip('/')}/{rel}:{n}"
        return None


# --------------------------------------------------------------------------- orchestration


def _chunks(pages: list[str], jobs: int) -> list[list[str]]:
    """About twenty chunks per worker: IPC stays cheap and the last chunk leaves a core idle only briefly."""
    size = max(16, -(-len(pages) // (jobs * 20)))
    return [pages[i : i + size] for i in range(0, len(pages), size)]


def _run_pages(ctx: _Context, pages: list[str], jobs: int) -> Iterator[PageResult]:
    """Check pages in this process (small trees, --jobs 1) or on ``jobs`` forked workers."""
    if jobs <= 1 or len(pages) < 64:
        _init_worker(ctx)
        for p in pages:
            yield check_page(p)
        return
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    mp = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_init_worker, initargs=(ctx,)) as pool:
        for results in pool.map(_check_chunk, _chunks(pages, jobs)):
            yield from results


def default_jobs() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_site(
    site: Path | str,
    *,
    jobs: int | None = None,
    base_path: str | None = None,
    external: bool = False,
    docs: Path | str | None = None,
    max_page_bytes: int = MAX_PAGE_BYTES,
    external_checker: ExternalChecker | None = None,
    progress_stream: object = None,
) -> Report:
    """Check every HTML page under ``site``; raise CheckError for problems that stop the run."""
    site_path = Path(site)
    if not site_path.exists():
        raise CheckError(f"site directory not found: {site}")
    if not site_path.is_dir():
        raise CheckError(f"not a directory: {site}")
    docs_path = Path(docs) if docs is not None else None
    if docs_path is not None and not docs_path.is_dir():
        raise CheckError(f"docs directory not found: {docs}")
    ctx = _Context(
        site=str(site_path),
        files=set(),
        dirs=set(),
        base_path=normalize_base_path(base_path),
        external=external,
        max_bytes=max_page_bytes,
        want_text=docs_path is not None,
    )
    files, dirs, walk_errors = walk_site(site_path)
    ctx.files, ctx.dirs = files, dirs
    pages = sorted(p for p in files if is_html(p))
    report = Report(pages=len(pages), io_errors=list(walk_errors))

    ids_raw: dict[str, str] = {}
    unchecked: set[str] = set()  # pages whose ids are unknown: no anchor verdicts into them
    xrefs: list[tuple[str, int, str, str, str, str]] = []
    exts: list[tuple[str, int, str, str]] = []
    try:
        for page, problem, detail, ids, broken, page_xrefs, page_ext, checked in _run_pages(
            ctx, pages, jobs or default_jobs()
        ):
            report.links += checked
            if problem is not None:
                report.broken.append(Broken(page, "", problem, pos=-1))
                if problem == "unreadable":
                    report.io_errors.append(f"cannot read {page}: {detail}")
                unchecked.add(page)
            ids_raw[page] = ids
            report.broken += [Broken(page, href, reason, pos=pos, text=text) for pos, href, reason, text in broken]
            xrefs += [(page, *x) for x in page_xrefs]
            exts += [(page, *x) for x in page_ext]
    except BrokenProcessPool as exc:
        raise CheckError("a parser process died; rerun with --jobs 1 to find the page") from exc

    id_sets: dict[str, frozenset[str]] = {}
    for page, pos, href, target, frag, text in xrefs:
        if target in unchecked:
            continue
        ids_of = id_sets.get(target)
        if ids_of is None:
            raw = ids_raw.get(target, "")
            ids_of = id_sets[target] = frozenset(raw.split("\0")) if raw else frozenset()
        if not fragment_ok(frag, ids_of):
            report.broken.append(Broken(page, href, "missing-anchor", pos=pos, text=text))

    if external and exts:
        checker = external_checker or ExternalChecker()
        verdicts = checker.check((u for *_, u in exts), _tty_progress(progress_stream or sys.stderr))
        for page, pos, href, url in exts:
            reason = verdicts.get(url)
            if reason:
                report.broken.append(Broken(page, href, reason, pos=pos))

    seen: set[tuple[str, str, str]] = set()
    unique: list[Broken] = []
    for b in sorted(report.broken, key=lambda b: (b.page, b.pos)):
        key = (b.page, b.href, b.reason)
        if key not in seen:
            seen.add(key)
            unique.append(b)
    report.broken = unique
    if docs_path is not None:
        mapper = SourceMapper(docs_path, dirs, shown=str(docs))
        for b in report.broken:
            b.source = mapper.locate(b.page, b.href, b.text)
    return report


# --------------------------------------------------------------------------- output


def format_json(report: Report) -> str:
    """One JSON object: pages, links, broken[]."""
    return json.dumps(
        {"pages": report.pages, "links": report.links, "broken": [b.as_dict() for b in report.broken]},
        ensure_ascii=False,
        indent=2,
    )


def format_text(report: Report) -> str:
    """One line per broken reference, grouped by page, then a summary line."""
    lines: list[str] = []
    for b in report.broken:  # already sorted by page, then document order
        where = f"  ({b.source})" if b.source else ""
        what = f" {b.href}" if b.href else ""
        lines.append(f"{b.page}: {b.reason}:{what}{where}")
    n = len(report.broken)
    verdict = "no broken links" if not n else f"{n} broken reference{'s' if n != 1 else ''}"
    lines.append(f"checked {report.pages} pages, {report.links} links: {verdict}")
    return "\n".join(lines)
