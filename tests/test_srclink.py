"""kvmdocs.srclink: short kernel links become tag-pinned URLs, or the build fails."""

from __future__ import annotations

import markdown
import pytest

from kvmdocs.srclink import SourceLinkError, parse

TAGS = {"src": "v3.8", "now": "v6.12.117"}
BASE = "https://elixir.bootlin.com/linux"


def render(text: str, tags: dict[str, str] = TAGS) -> str:
    return markdown.markdown(
        text, extensions=["kvmdocs.srclink"], extension_configs={"kvmdocs.srclink": {"tags": tags}}
    )


def test_src_link_expands_to_pinned_line() -> None:
    html = render("[`kvm_init`](src:virt/kvm/kvm_main.c#L2846)")
    assert f'href="{BASE}/v3.8/source/virt/kvm/kvm_main.c#L2846"' in html
    assert 'class="kvm-src"' in html


def test_second_tag_and_range() -> None:
    html = render("[x](now:arch/x86/kvm/vmx/vmenter.S#L10-L20)")
    assert f'href="{BASE}/v6.12.117/source/arch/x86/kvm/vmx/vmenter.S#L10-L20"' in html


def test_ordinary_links_untouched() -> None:
    html = render("[a](vm.md#vm-fd) [b](https://example.org/x) [c](mailto:a@b.c)")
    assert 'href="vm.md#vm-fd"' in html and 'href="https://example.org/x"' in html and 'href="mailto:a@b.c"' in html


@pytest.mark.parametrize(
    "href",
    [
        "srcc:virt/kvm/kvm_main.c#L1",  # typo in the scheme
        "src:virt/kvm/kvm_main.c#L0",  # no line 0
        "src:../etc/passwd",  # escapes the tree
        "src:virt/kvm/kvm_main.c#L20-L10",  # backwards range
        "src:virt/kvm/kvm_main.c#foo",  # not a line anchor
    ],
)
def test_bad_short_links_fail(href: str) -> None:
    with pytest.raises(SourceLinkError):
        parse(href, TAGS)


def test_branch_names_are_not_tags() -> None:
    with pytest.raises(SourceLinkError):
        render("[x](src:a.c#L1)", {"src": "master"})
