"""Markdown extension: turn known abbreviations into linked tooltips.

The abbreviation lists (``includes/<lang>/abbr.md``) are appended to every
page by ``pymdownx.snippets`` and turned into ``<abbr title=...>`` by
Python-Markdown's ``abbr`` extension. This processor runs right after it and:

* links each VMX mnemonic to its entry on the instruction page, and each
  concept to its glossary entry, so a tooltip is also a way in;
* removes the markup again inside headings and link text, where a tooltip
  would clutter the table of contents or nest a link in a link.

Code is never touched: inline code is an AtomicString, so ``abbr`` skips it.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as etree  # noqa: N813 (Python-Markdown's own name for it)

from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

NO_TOOLTIP_PARENTS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "a", "abbr", "code", "pre"})


def term_id(term: str) -> str:
    """Glossary/instruction anchor for a term: lowercase ASCII, hyphens (``VM exit`` -> ``vm-exit``)."""
    return re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


class TermTreeprocessor(Treeprocessor):
    """Wrap ``<abbr>`` for known terms in a link; unwrap it where it must not be."""

    def __init__(self, md: Markdown, instructions_page: str, instructions: set[str], glossary_page: str) -> None:
        super().__init__(md)
        self.instructions_page = instructions_page
        self.instructions = instructions
        self.glossary_page = glossary_page

    def target(self, term: str) -> str:
        """Where a term is explained: its instruction entry, else its glossary entry."""
        page = self.instructions_page if term in self.instructions else self.glossary_page
        return f"{page}#{term_id(term)}"

    def run(self, root: etree.Element) -> None:
        parents = {child: parent for parent in root.iter() for child in parent}
        for abbr in list(root.iter("abbr")):
            parent = parents[abbr]
            if self._inside(abbr, parents, NO_TOOLTIP_PARENTS):
                self._unwrap(abbr, parent)
                continue
            link = etree.Element("a", {"href": self.target(abbr.text or ""), "class": "kvm-term"})
            index = list(parent).index(abbr)
            parent.remove(abbr)
            link.tail, abbr.tail = abbr.tail, None
            link.append(abbr)
            parent.insert(index, link)
            parents[link] = parent

    @staticmethod
    def _inside(el: etree.Element, parents: dict[etree.Element, etree.Element], tags: frozenset[str]) -> bool:
        node = parents.get(el)
        while node is not None:
            if node.tag in tags:
                return True
            node = parents.get(node)
        return False

    @staticmethod
    def _unwrap(abbr: etree.Element, parent: etree.Element) -> None:
        """Put the abbreviation back as plain text, merged into its neighbour."""
        text = (abbr.text or "") + (abbr.tail or "")
        index = list(parent).index(abbr)
        if index == 0:
            parent.text = (parent.text or "") + text
        else:
            previous = parent[index - 1]
            previous.tail = (previous.tail or "") + text
        parent.remove(abbr)


class TermExtension(Extension):
    """Registers the term processor after ``abbr`` (priority 7)."""

    def __init__(self, **kwargs: object) -> None:
        self.config = {
            "instructions_page": ["vmx-instructions.md", "page with one entry per VMX instruction"],
            "instructions": [[], "mnemonics that link to the instruction page"],
            "glossary_page": ["glossary.md", "page with one entry per concept"],
        }
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Markdown's API name)
        processor = TermTreeprocessor(
            md,
            self.getConfig("instructions_page"),
            set(self.getConfig("instructions")),
            self.getConfig("glossary_page"),
        )
        md.treeprocessors.register(processor, "kvm_terms", 6.5)


def makeExtension(**kwargs: object) -> TermExtension:  # noqa: N802 (Markdown's API name)
    """Entry point used by Python-Markdown when the extension is named in config."""
    return TermExtension(**kwargs)
