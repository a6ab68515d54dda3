"""Markdown extension: expand short kernel-source links into pinned URLs.

Pages write ``[vmx_init()](src:arch/x86/kvm/vmx.c#L7594)``. The scheme
(``src``) names a tag configured once in ``mkdocs.base.yml``; the extension
rewrites the link to ``<base_url>/<tag>/source/<path>#L<line>``. Writers never
type a full URL, so a tag change is one edit, and no link can point at a
moving branch: an unknown scheme or a malformed path fails the build.

Config (``mkdocs.base.yml``, shared by both languages)::

    markdown_extensions:
      kvmdocs.srclink:
        base_url: https://elixir.bootlin.com/linux
        tags: {src: v3.8, now: v6.12.117}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree import ElementTree as etree  # noqa: N813 (Python-Markdown's own name for it)

from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

# path/to/file.c, optionally #L12 or #L12-L20 (a range highlights on Elixir)
SHORT_LINK_RE = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9-]*):(?P<path>[A-Za-z0-9_][A-Za-z0-9_./+-]*)"
    r"(?:#L(?P<line>[1-9][0-9]*)(?:-L(?P<end>[1-9][0-9]*))?)?$"
)
TAG_RE = re.compile(r"v\d+\.\d+(\.\d+)?(-rc\d+)?")  # a release tag, never a branch name
# Schemes a browser understands are never ours, so they pass through untouched.
FOREIGN_SCHEMES = frozenset({"http", "https", "mailto", "tel", "data", "javascript", "ftp", "file"})


class SourceLinkError(ValueError):
    """A short link that cannot be expanded; the build must stop on it."""


@dataclass(frozen=True)
class SourceLink:
    """One parsed short link: which tag, which file, which lines."""

    scheme: str
    tag: str
    path: str
    line: int | None
    end: int | None

    def url(self, base_url: str) -> str:
        """The pinned URL on the configured source browser."""
        url = f"{base_url.rstrip('/')}/{self.tag}/source/{self.path}"
        if self.line is not None:
            # Elixir highlights a range written as #L10-L20
            url += f"#L{self.line}" + (f"-L{self.end}" if self.end else "")
        return url


def parse(href: str, tags: dict[str, str]) -> SourceLink | None:
    """Parse ``href`` if it uses a configured scheme; None if it is not ours."""
    scheme, sep, rest = href.partition(":")
    if not sep or scheme in FOREIGN_SCHEMES:
        return None
    if scheme not in tags:
        # "srcc:virt/kvm/kvm_main.c" is a typo, not a URL: refuse it loudly.
        if re.fullmatch(r"[a-z][a-z0-9-]*", scheme) and "/" in rest:
            known = ", ".join(sorted(tags))
            raise SourceLinkError(f"unknown source scheme {scheme!r} in {href!r} (configured: {known})")
        return None
    match = SHORT_LINK_RE.match(href)
    if not match or ".." in match["path"].split("/"):
        raise SourceLinkError(f"malformed source link {href!r}: expected {scheme}:path/to/file.c#L123")
    line = int(match["line"]) if match["line"] else None
    end = int(match["end"]) if match["end"] else None
    if end is not None and line is not None and end < line:
        raise SourceLinkError(f"source link {href!r} ends before it starts")
    return SourceLink(scheme, tags[scheme], match["path"], line, end)


class SourceLinkTreeprocessor(Treeprocessor):
    """Rewrite ``<a href="src:...">`` after inline parsing, before MkDocs sees links."""

    def __init__(self, md: Markdown, base_url: str, tags: dict[str, str]) -> None:
        super().__init__(md)
        self.base_url = base_url
        self.tags = tags

    def run(self, root: etree.Element) -> None:
        for link in root.iter("a"):
            href = link.get("href", "")
            parsed = parse(href, self.tags)
            if parsed is None:
                continue
            link.set("href", parsed.url(self.base_url))
            link.set("class", (link.get("class", "") + " kvm-src").strip())
            link.set("data-tag", parsed.tag)
            if not link.get("title"):
                where = parsed.path + (f":{parsed.line}" if parsed.line else "")
                link.set("title", f"{where} @ {parsed.tag}")


class SourceLinkExtension(Extension):
    """Registers the tree processor with the configured base URL and tags."""

    def __init__(self, **kwargs: object) -> None:
        self.config = {
            "base_url": ["https://elixir.bootlin.com/linux", "source browser base URL"],
            "tags": [{}, "scheme -> tag, e.g. {src: v3.8}"],
        }
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Markdown's API name)
        tags = dict(self.getConfig("tags"))
        if not tags:
            raise SourceLinkError("kvmdocs.srclink needs at least one tag, e.g. tags: {src: v3.8}")
        for scheme, tag in tags.items():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", scheme) or not TAG_RE.fullmatch(str(tag)):
                raise SourceLinkError(f"kvmdocs.srclink: {scheme}: {tag!r} is not a release tag like v3.8")
        # After inline patterns (priority 20) have made <a> elements; before
        # MkDocs' relative-path processor (priority 0) validates links.
        md.treeprocessors.register(SourceLinkTreeprocessor(md, self.getConfig("base_url"), tags), "kvm_srclink", 15)


def makeExtension(**kwargs: object) -> SourceLinkExtension:  # noqa: N802 (Markdown's API name)
    """Entry point used by Python-Markdown when the extension is named in config."""
    return SourceLinkExtension(**kwargs)
