"""The content rules, written once: the lint and the site tests both call them.

Each rule has an ID that CONTRIBUTING.md anchors (``#head-id-1``) and every
finding carries ``path:line``. Rules read Markdown source; the tests add the
checks that only the built HTML can answer.

Errors: HEAD-ID-1, SRC-1, HTML-1, TERM-1, TERM-2, PARITY-1, PARITY-2, GAP-1,
ALLOW-1, SEED-1. Warnings (listed, never failing): PARITY-3, ZH-SPACE-1.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kvmdocs.config import settings
from kvmdocs.paths import INCLUDES, LANGUAGES, ROOT, SEED_OVERLAP, Language
from kvmdocs.srclink import SourceLinkError, parse

HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*(?:\{(?P<attrs>[^{}]*)\})?\s*$")
ID_ATTR_RE = re.compile(r"(?:^|\s)#(?P<id>[^\s}]+)")
ASCII_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
INLINE_CODE_RE = re.compile(r"(`+)(?:.+?)\1")
LINK_RE = re.compile(
    r"!?\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<href>[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)(?:\s+\"[^\"]*\")?\)"
)
ABBR_DEF_RE = re.compile(r"^\*\[(?P<term>[^\]]+)\]:\s*(?P<title>.+)$")
# Hosts where a hand-typed kernel link would bypass the pinned short form.
KERNEL_SOURCE_HOSTS_RE = re.compile(
    r"https?://(?:elixir\.bootlin\.com|git\.kernel\.org|github\.com/torvalds|lxr\.[a-z.]+|"
    r"kernel\.googlesource\.com|sourcegraph\.com/github\.com/torvalds)",
    re.I,
)
# What a VMX instruction mnemonic looks like, to catch one the glossary lacks.
MNEMONIC_RE = re.compile(
    r"\b(?:VM(?:X?ON|XOFF|CLEAR|PTR(?:LD|ST)|READ|WRITE|LAUNCH|RESUME|CALL|FUNC|[A-Z]{3,})|INV(?:EPT|VPID))\b"
)
# Words that match MNEMONIC_RE but are not instructions.
NOT_MNEMONICS = frozenset(
    {
        "VMCS",
        "VMM",
        "VMX",
        "VMEXIT",
        "VMENTRY",  # concepts and spellings, not instructions
        "VMMCALL",
        "VMRUN",
        "VMLOAD",
        "VMSAVE",  # AMD SVM: out of scope, named only in passing
    }
)
RAW_HTML_RES = (
    (re.compile(r"<\s*script\b", re.I), "raw <script>"),
    (re.compile(r"<\s*iframe\b", re.I), "raw <iframe>"),
    (re.compile(r"<[^>]*\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
)
HAN = "\u3400-\u4dbf\u4e00-\u9fff"
HAN_LATIN_RE = re.compile(rf"[{HAN}][A-Za-z0-9_]|[A-Za-z0-9_][{HAN}]")
# The translation-gap marker: an admonition carrying this class, above the
# first h2 (``!!! warning translation-pending "尚未翻译"``). Python-Markdown
# takes every word after ``!!!`` as a class, so the box is styled as the first
# one and the lint finds the page by the second, in any language.
GAP_CLASS = "translation-pending"
GAP_MARKER_RE = re.compile(rf"^!!!\s+(?:[\w-]+\s+)*{GAP_CLASS}(?:\s|$)")
# Intended zh/en differences that PARITY-3 should not report: "page kind # reason".
ALLOW_FILE = ROOT / "docs" / "parity-allow.txt"
ALLOW_KINDS = ("links", "code")
GUIDE = "CONTRIBUTING.md"
# For ZH-SPACE-1: Han touching a Latin word or an inline-code span; the attr
# lists ({ #id }) and link targets (](vm.md#x)) around them are not prose.
ZH_LATIN_RE = re.compile(rf"(?<=[{HAN}])[A-Za-z0-9_`][A-Za-z0-9_…`]*|[A-Za-z0-9_`][A-Za-z0-9_…`]*(?=[{HAN}])")
ATTR_LIST_RE = re.compile(r"\{[^{}]*\}")
LINK_HREF_RE = re.compile(r"\]\([^()\s]*(?:\([^()\s]*\)[^()\s]*)*(?:\s+\"[^\"]*\")?\)")


@dataclass(frozen=True, order=True)
class Finding:
    """One rule violation, printable as ``path:line: RULE message``."""

    path: str
    line: int
    rule: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning" if self.warning else "error"
        return f"{self.path}:{self.line}: {self.rule} {kind}: {self.message}"

    @property
    def guide(self) -> str:
        """Where the contributor guide explains this rule (``CONTRIBUTING.md#head-id-1``)."""
        return f"{GUIDE}#{self.rule.lower()}"


@dataclass(frozen=True)
class Line:
    """A Markdown source line, and whether it is inside a fenced code block."""

    number: int
    text: str
    in_code: bool
    fence: bool  # the fence line itself


def rel(path: Path) -> str:
    """Path as shown in findings: relative to the repository when possible."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def scan(text: str) -> Iterator[Line]:
    """Lines with code-fence state, so rules can skip code."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE_RE.match(line)
        if fence is None and match:
            fence = match["fence"][0] * len(match["fence"])
            yield Line(number, line, True, True)
        elif fence is not None and match and match["fence"].startswith(fence) and not match["info"].strip():
            fence = None
            yield Line(number, line, True, True)
        else:
            yield Line(number, line, fence is not None, False)


def prose(line: Line) -> str:
    """A line without inline code, for rules about text."""
    return INLINE_CODE_RE.sub(" ", line.text)


@dataclass(frozen=True)
class Heading:
    """A Markdown heading and its explicit id, if any."""

    line: int
    level: int
    title: str
    id: str | None


def headings(text: str) -> list[Heading]:
    """ATX headings outside code blocks."""
    found = []
    for line in scan(text):
        if line.in_code:
            continue
        match = HEADING_RE.match(line.text)
        if not match:
            continue
        attrs = match["attrs"] or ""
        id_match = ID_ATTR_RE.search(attrs)
        found.append(Heading(line.number, len(match["hashes"]), match["title"], id_match["id"] if id_match else None))
    return found


def links(text: str) -> list[tuple[int, str, str]]:
    """(line, text, href) of every inline link and image outside code."""
    found = []
    for line in scan(text):
        if line.in_code:
            continue
        for match in LINK_RE.finditer(prose(line)):
            found.append((line.number, match["text"], match["href"]))
    return found


def code_blocks(text: str) -> list[tuple[int, str]]:
    """(line, info string) of every fenced block opening."""
    blocks = []
    inside = False
    for line in scan(text):
        if line.fence:
            if not inside:
                match = FENCE_RE.match(line.text)
                blocks.append((line.number, match["info"].strip() if match else ""))
            inside = not inside
    return blocks


def pages(lang: Language) -> dict[str, Path]:
    """Markdown pages of one language by path relative to its docs dir."""
    return {p.relative_to(lang.docs).as_posix(): p for p in sorted(lang.docs.rglob("*.md"))}


def defined_terms(lang: Language) -> dict[str, str]:
    """Abbreviations appended to every page of a language: term -> tooltip."""
    terms = {}
    for line in (INCLUDES / lang.code / "abbr.md").read_text(encoding="utf-8").splitlines():
        match = ABBR_DEF_RE.match(line)
        if match:
            terms[match["term"]] = match["title"]
    return terms


# --- the rules ---------------------------------------------------------------


def check_heading_ids(path: Path, text: str) -> list[Finding]:
    """HEAD-ID-1: every h2-h6 has an explicit lowercase ASCII id; ids are unique."""
    findings = []
    seen: dict[str, int] = {}
    for heading in headings(text):
        if heading.level == 1:
            continue
        if heading.id is None:
            findings.append(
                Finding(rel(path), heading.line, "HEAD-ID-1", f"heading {heading.title!r} has no {{ #id }}")
            )
        elif not ASCII_ID_RE.match(heading.id):
            findings.append(Finding(rel(path), heading.line, "HEAD-ID-1", f"id #{heading.id} is not lowercase ASCII"))
        elif heading.id in seen:
            msg = f"id #{heading.id} already used on line {seen[heading.id]}"
            findings.append(Finding(rel(path), heading.line, "HEAD-ID-1", msg))
        else:
            seen[heading.id] = heading.line
    return findings


def check_source_links(path: Path, text: str, tags: dict[str, str]) -> list[Finding]:
    """SRC-1: kernel source is linked only through a configured short form (src:, now:)."""
    findings = []
    for line, _, href in links(text):
        if KERNEL_SOURCE_HOSTS_RE.match(href):
            msg = f"hand-typed kernel link {href!r}: write it as {next(iter(tags), 'src')}:path#Lnn"
            findings.append(Finding(rel(path), line, "SRC-1", msg))
            continue
        try:
            parse(href, tags)
        except SourceLinkError as error:
            findings.append(Finding(rel(path), line, "SRC-1", str(error)))
    return findings


def check_raw_html(path: Path, text: str) -> list[Finding]:
    """HTML-1: no raw script, iframe, inline handlers or javascript: URLs in Markdown."""
    findings = []
    for line in scan(text):
        if line.in_code:
            continue
        for pattern, what in RAW_HTML_RES:
            if pattern.search(prose(line)):
                findings.append(Finding(rel(path), line.number, "HTML-1", f"{what} is not allowed in Markdown"))
    return findings


def check_mnemonics(path: Path, text: str, lang: Language, known: set[str]) -> list[Finding]:
    """TERM-1: a VMX mnemonic in prose is one the glossary defines.

    TERM-2: in Chinese, a mnemonic touching a Han character gets no tooltip.
    """
    findings = []
    for line in scan(text):
        if line.in_code:
            continue
        words = prose(line)
        for match in MNEMONIC_RE.finditer(words):
            word = match.group(0)
            if word not in known and word not in NOT_MNEMONICS:
                msg = f"{word} looks like a VMX instruction but has no glossary entry (includes/{lang.code}/abbr.md)"
                findings.append(Finding(rel(path), line.number, "TERM-1", msg))
        if lang.code == "zh":
            for word in known:
                for match in re.finditer(rf"[{HAN}]{re.escape(word)}|{re.escape(word)}[{HAN}]", words):
                    msg = f"put spaces around {word} in {match.group(0)!r}, or it gets no tooltip"
                    findings.append(Finding(rel(path), line.number, "TERM-2", msg))
    return findings


def check_zh_spacing(path: Path, text: str, known: set[str]) -> list[Finding]:
    """ZH-SPACE-1 (warning): in Chinese prose, a space separates Han characters from Latin words and code.

    One finding per line, so a dense paragraph is one hint, not twenty. Known
    terms are left to TERM-2, which is an error because their tooltip breaks.
    """
    findings = []
    for line in scan(text):
        if line.in_code or ABBR_DEF_RE.match(line.text):
            continue
        words = INLINE_CODE_RE.sub("`…`", line.text)
        words = LINK_HREF_RE.sub("]", ATTR_LIST_RE.sub("", words))
        for match in ZH_LATIN_RE.finditer(words):
            if match.group(0).strip("`") in known:
                continue
            snippet = words[max(0, match.start() - 2) : match.end() + 2]
            msg = f"put a space between Chinese and Latin text in {snippet!r}"
            findings.append(Finding(rel(path), line.number, "ZH-SPACE-1", msg, warning=True))
            break
    return findings


def gap_marker(text: str) -> int | None:
    """Line of the translation-gap marker when it stands above the first section, else None."""
    first_section = min((h.line for h in headings(text) if h.level > 1), default=sys.maxsize)
    for line in scan(text):
        if line.number > first_section:
            break
        if not line.in_code and GAP_MARKER_RE.match(line.text):
            return line.number
    return None


def check_gap_marker(path: Path, text: str) -> list[Finding]:
    """GAP-1: the translation-pending marker sits at the top, where readers and PARITY-3 look for it."""
    top = gap_marker(text)
    return [
        Finding(rel(path), line.number, "GAP-1", f"the {GAP_CLASS} marker must come before the first ## section")
        for line in scan(text)
        if not line.in_code and GAP_MARKER_RE.match(line.text) and line.number != top
    ]


def _parity(zh: Language, en: Language) -> Iterator[tuple[tuple[str, str] | None, Finding]]:
    """Every parity finding, keyed by (page, kind) when an allow-list entry may silence it."""
    left, right = pages(zh), pages(en)
    for name in sorted(left.keys() ^ right.keys()):
        have, lack = (zh, en) if name in left else (en, zh)
        where = rel(have.docs / name)
        yield None, Finding(where, 1, "PARITY-1", f"page exists in {have.code} but not in {lack.code}")
    for name in sorted(left.keys() & right.keys()):
        texts = {zh.code: left[name].read_text(encoding="utf-8"), en.code: right[name].read_text(encoding="utf-8")}
        ids = {code: {h.id: h.line for h in headings(t) if h.id} for code, t in texts.items()}
        for code, other in (("zh", "en"), ("en", "zh")):
            path = (zh if code == "zh" else en).docs / name
            for heading_id, line in sorted(ids[code].items(), key=lambda item: item[1]):
                if heading_id not in ids[other]:
                    msg = f"heading id #{heading_id} is missing from the {other} page"
                    yield None, Finding(rel(path), line, "PARITY-2", msg)
        if any(gap_marker(t) is not None for t in texts.values()):
            continue  # a marked translation gap: the ids must match, the body may not yet
        targets = {code: sorted(h for _, _, h in links(t)) for code, t in texts.items()}
        if targets["zh"] != targets["en"]:
            only_zh = sorted(set(targets["zh"]) - set(targets["en"]))
            only_en = sorted(set(targets["en"]) - set(targets["zh"]))
            detail = f"only zh: {only_zh[:3]}, only en: {only_en[:3]}" if only_zh or only_en else "counts differ"
            msg = f"links differ between zh and en ({detail})"
            yield (name, "links"), Finding(rel(zh.docs / name), 1, "PARITY-3", msg, warning=True)
        blocks = {code: [info for _, info in code_blocks(t)] for code, t in texts.items()}
        if blocks["zh"] != blocks["en"]:
            msg = f"code blocks differ between zh and en ({len(blocks['zh'])} vs {len(blocks['en'])})"
            yield (name, "code"), Finding(rel(zh.docs / name), 1, "PARITY-3", msg, warning=True)


def check_parity(zh: Language, en: Language, allow: set[tuple[str, str]] | None = None) -> list[Finding]:
    """PARITY-1/2 (errors) and PARITY-3 (warning): the languages have the same pages, ids, links, code.

    PARITY-3 skips a page marked as a translation gap and any (page, kind) in ``allow``.
    """
    allow = allow or set()
    return [finding for key, finding in _parity(zh, en) if key not in allow]


def check_allow_list(path: Path, zh: Language, en: Language) -> tuple[set[tuple[str, str]], list[Finding]]:
    """ALLOW-1: each allow-list line is ``page kind # reason``, names a page, and still silences something.

    A stale entry is an error so the list only shrinks (CPython's .nitignore ratchet).
    Returns the valid entries and the findings.
    """
    if not path.is_file():
        return set(), []
    both = pages(zh).keys() | pages(en).keys()
    differing = {key for key, _ in _parity(zh, en) if key is not None}
    allow: set[tuple[str, str]] = set()
    findings = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        entry, _, reason = raw.partition("#")
        fields = entry.split()
        if not fields:
            continue
        problem = None
        if len(fields) != 2 or fields[1] not in ALLOW_KINDS:
            problem = f"expected 'page.md {'|'.join(ALLOW_KINDS)} # reason', got {raw.strip()!r}"
        elif not reason.strip():
            problem = f"{fields[0]} {fields[1]}: say why after '#'"
        elif fields[0] not in both:
            problem = f"no page {fields[0]} in docs/zh or docs/en"
        elif (fields[0], fields[1]) not in differing:
            problem = f"{fields[0]} {fields[1]} no longer differ: remove this line"
        if problem:
            findings.append(Finding(rel(path), number, "ALLOW-1", problem))
        else:
            allow.add((fields[0], fields[1]))
    return allow, findings


def check_seed_overlap(docs: Path) -> list[Finding]:
    """SEED-1: no sentence or listing copied from the 2015 post (the shared checker decides)."""
    if not SEED_OVERLAP.is_file():
        return [Finding(rel(docs), 1, "SEED-1", f"seed checker not found at {SEED_OVERLAP}", warning=True)]
    result = subprocess.run(
        [sys.executable, str(SEED_OVERLAP), "--format", "json", str(docs)], capture_output=True, text=True
    )
    if result.returncode == 0:
        return []
    if result.returncode != 1:
        return [Finding(rel(docs), 1, "SEED-1", f"seed checker failed: {result.stderr.strip()[:200]}")]
    findings = []
    for hit in json.loads(result.stdout).get("hits", []):
        path = Path(hit["path"])
        msg = f"{hit['kind']} copied from the 2015 post ({hit.get('chars', '?')} chars): rewrite it in your own words"
        findings.append(Finding(rel(path if path.is_absolute() else ROOT / path), hit["line"], "SEED-1", msg))
    return findings


def check_page(path: Path, lang: Language, tags: dict[str, str], known: set[str]) -> list[Finding]:
    """Every per-file rule on one Markdown page."""
    text = path.read_text(encoding="utf-8")
    return [
        *check_heading_ids(path, text),
        *check_source_links(path, text, tags),
        *check_raw_html(path, text),
        *check_mnemonics(path, text, lang, known),
        *check_gap_marker(path, text),
        *(check_zh_spacing(path, text, known) if lang.code == "zh" else []),
    ]


def languages(docs: Path | None = None) -> tuple[Language, ...]:
    """The site's languages, or the same languages reading Markdown from ``docs/<code>`` (fixtures)."""
    if docs is None:
        return LANGUAGES
    return tuple(dataclasses.replace(lang, docs=docs / lang.code) for lang in LANGUAGES)


def check_all(seed: bool = True, allow: set[tuple[str, str]] | None = None, docs: Path | None = None) -> list[Finding]:
    """Every rule on every page of every language.

    ``allow`` None reads the allow list (``docs/parity-allow.txt``) and checks it
    (ALLOW-1); ``docs`` points the rules at another tree with ``zh/`` and ``en/``
    (the configuration, tags and glossary stay the site's own).
    """
    root = docs if docs is not None else ROOT / "docs"
    zh, en = langs = languages(docs)
    findings: list[Finding] = []
    for lang in langs:
        config = settings(lang)
        known = set(defined_terms(lang)) | set(config.instructions)
        for path in pages(lang).values():
            findings.extend(check_page(path, lang, config.tags, known))
    if allow is None:
        allow, allow_findings = check_allow_list(root / ALLOW_FILE.name, zh, en)
        findings.extend(allow_findings)
    findings.extend(check_parity(zh, en, allow))
    if seed:
        findings.extend(check_seed_overlap(root))
    return sorted(findings)
