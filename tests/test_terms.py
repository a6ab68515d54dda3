"""kvmdocs.terms: tooltips link to their entry, never inside headings, links or code."""

from __future__ import annotations

import markdown

ABBRS = "\n\n*[VMXON]: enter VMX root operation\n*[VMCS]: control structure\n"


def render(text: str) -> str:
    return markdown.markdown(
        text + ABBRS,
        extensions=["abbr", "attr_list", "kvmdocs.terms"],
        extension_configs={"kvmdocs.terms": {"instructions": ["VMXON"]}},
    )


def test_instruction_links_to_its_entry() -> None:
    html = render("Run VMXON first.")
    assert (
        '<a class="kvm-term" href="vmx-instructions.md#vmxon"><abbr title="enter VMX root operation">VMXON</abbr></a>'
        in html
    )


def test_concept_links_to_glossary() -> None:
    assert 'href="glossary.md#vmcs"' in render("Load the VMCS.")


def test_not_in_heading_link_or_code() -> None:
    html = render("## VMXON { #vmxon }\n\n[VMXON here](x.md) and `VMXON`")
    assert "<abbr" not in html
    assert "<h2" in html and ">VMXON</h2>" in html
    assert '<a href="x.md">VMXON here</a>' in html


def test_every_prose_mention_is_wrapped() -> None:
    html = render("VMXON, then VMXON again.")
    assert html.count('class="kvm-term"') == 2
