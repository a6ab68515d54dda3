#!/usr/bin/env python3
"""Start a new note: the page in both languages from a template, and its place in the nav.

Usage: python scripts/new_note.py SLUG --title-zh "标题" --title-en "Title" [--after PAGE]

Creates docs/zh/SLUG.md and docs/en/SLUG.md (an h1 title, an overview section
with an explicit id, a pinned source-link example, a `next` section) and adds
SLUG.md to `nav`, after PAGE or else before the closing pages
(contributing.md). The nav is edited where it is defined: the file that
mkdocs.yml INHERITs it from (mkdocs.base.yml, shared by both languages). An
existing page is never overwritten; if the nav cannot be updated, the new
pages are removed again.
Exit status: 0 created, 1 refused or failed (the reason follows), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(DEFAULT_ROOT))

import yaml  # noqa: E402 (after the path set-up, so the script runs from anywhere)

# The config reader's own loader, nav walk and INHERIT resolution, so the check reads the nav as the site does.
from kvmdocs.config import _Loader, _nav_paths, defined_in, inherit_chain  # noqa: E402
from kvmdocs.paths import LANGUAGES  # noqa: E402

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Names the build or the site already uses at the top level: a page there
# would clash with a folder (assets/, en/, pdf/, search/) or a generated page.
RESERVED = frozenset({"index", "404", "assets", "search", "pdf", "en", "zh", "sitemap", "tags"})
# Pages that close the nav; a new note goes before them unless --after says otherwise.
CLOSING = ("contributing.md",)
NAV_RE = re.compile(r"^nav:\s*(?:#.*)?$")
ITEM_RE = re.compile(r"^(?P<indent>\s+)-\s+(?:[^:#]+:\s+)?(?P<page>[\w./-]+\.md)\s*(?:#.*)?$")

TEMPLATES = {
    "zh": """\
# {title}

<!-- 先用一小段话说明本页在生命周期中的位置（从哪一步来，往哪一步去），然后删掉这条注释。
     写作规则见 CONTRIBUTING.md：用自己的话写，源码链接用 src:，每个 ## 标题带 ASCII id，中英文两页 id 相同。 -->

本页讲什么、处在 KVM 生命周期的哪一步：在这里用一两句话交代。

## 概览 {{ #overview }}

先说这段代码为什么存在，再说它做了什么。函数第一次出现时链接到 v3.8 中它的定义行，
例如 [`kvm_init()`](src:virt/kvm/kvm_main.c#L2846)，行号要先在 v3.8 源码里核对过。

## 接下来读什么 {{ #next }}

- [模块初始化](init.md#overview)
""",
    "en": """\
# {title}

<!-- Open with one short paragraph on where this page sits in the lifecycle (what came before,
     what comes next), then delete this comment. Writing rules: CONTRIBUTING.md (own words,
     src: links, an ASCII id on every ## heading, the same ids on the zh and en pages). -->

What this page covers and where it sits in the KVM lifecycle: say it here in a sentence or two.

## Overview {{ #overview }}

Say why this code exists before what it does. Link a function's first mention to its
definition line in v3.8, for example [`kvm_init()`](src:virt/kvm/kvm_main.c#L2846),
after checking the line number in the v3.8 source.

## Where to read next {{ #next }}

- [Module initialisation](init.md#overview)
""",
}


class RefusedError(Exception):
    """The request is valid but cannot be done here (a page exists, the nav cannot be edited): exit 1."""


class UsageError(Exception):
    """A bad slug, title or --after: exit 2."""


def check_slug(slug: str) -> str:
    """The slug, or UsageError saying exactly what is wrong with it."""
    if slug.endswith(".md"):
        raise UsageError(f"slug {slug!r}: give it without .md (e.g. {slug[:-3]!r})")
    if "/" in slug or "\\" in slug:
        raise UsageError(f"slug {slug!r}: pages are flat here, no folders")
    if not SLUG_RE.match(slug):
        hint = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")
        suggestion = f" (e.g. {hint!r})" if SLUG_RE.match(hint) else ""
        raise UsageError(f"slug {slug!r}: use lowercase ASCII letters, digits and single hyphens{suggestion}")
    if slug in RESERVED:
        raise UsageError(f"slug {slug!r} is reserved (taken by the build: {', '.join(sorted(RESERVED))})")
    return slug


def check_title(title: str, option: str) -> str:
    """A one-line, non-empty title."""
    title = title.strip()
    if not title or "\n" in title:
        raise UsageError(f"{option}: give a one-line, non-empty title")
    return title


def write_new(path: Path, text: str) -> None:
    """Create ``path`` with ``text``; never replace an existing file (link fails if it exists)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(tmp, path)
    except FileExistsError:
        raise RefusedError(f"{path} already exists: not overwriting it") from None
    finally:
        os.unlink(tmp)


def replace_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically: write a temporary file beside it, then rename over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def add_to_nav(text: str, page: str, after: str | None, name: str = "mkdocs.yml") -> str:
    """``text`` (the config file ``name``) with ``page`` added to its nav, comments and layout kept."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if NAV_RE.match(line)), None)
    if start is None:
        raise RefusedError(f"{name} has no top-level `nav:` list")
    items: list[tuple[int, str, str]] = []  # (line index, indent, page)
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line[0].isspace():
            break  # the next top-level key: the nav ended
        match = ITEM_RE.match(line.rstrip("\n"))
        if match:
            items.append((i, match["indent"], match["page"]))
    if not items:
        raise RefusedError(f"`nav:` in {name} lists no pages to add to")
    pages = [item[2] for item in items]
    if page in pages:
        raise RefusedError(f"{page} is already in the nav of {name}")
    top = min(len(item[1]) for item in items)
    if after is not None:
        anchor = after if after.endswith(".md") else f"{after}.md"
        found = [item for item in items if item[2] == anchor]
        if not found:
            raise UsageError(f"--after {after}: not in the nav (pages: {', '.join(pages)})")
        index, indent, _ = found[0]
    else:
        top_items = [item for item in items if len(item[1]) == top]
        while len(top_items) > 1 and top_items[-1][2] in CLOSING:
            top_items.pop()
        index, indent, last = top_items[-1]
        if last in CLOSING:  # only closing pages: go first
            index -= 1
    new = f"{indent}- {page}\n"
    if not lines[index].endswith("\n"):
        lines[index] += "\n"
    lines.insert(index + 1, new)
    return "".join(lines)


def load_yaml(text: str) -> dict:
    """A mkdocs*.yml text as data, MkDocs' python tags tolerated."""
    return yaml.load(text, Loader=_Loader) or {}


def nav_file(root: Path, page: str) -> Path:
    """The one file whose `nav` every config in ``root`` uses, found by following INHERIT.

    Refused if there is none, or if some config has a nav of its own (a page
    added to one nav only would be missing from a language).
    """
    default = root / "mkdocs.yml"
    if not default.is_file():
        raise RefusedError(f"{default} is missing: run this from the repository")
    owner = defined_in(default, "nav")
    if owner is None:
        chain = ", ".join(p.name for p in inherit_chain(default))
        raise RefusedError(f"no top-level `nav:` list in mkdocs.yml or the files it inherits ({chain})")
    languages = {root / lang.config.name for lang in LANGUAGES}
    for config in sorted(languages | set(root.glob("mkdocs*.yml"))):
        other = defined_in(config, "nav")
        if other is not None and other != owner:
            raise RefusedError(f"{other.name} has its own nav: add {page} there by hand, then rerun")
        if other is None and config in languages:
            raise RefusedError(
                f"{config.name} does not inherit the nav of {owner.name}: add {page} by hand, then rerun"
            )
    return owner


def create(root: Path, slug: str, titles: dict[str, str], after: str | None = None) -> tuple[list[Path], Path]:
    """Create both pages and the nav entry; on any failure leave the tree as it was.

    Returns the pages created and the config file whose nav was edited.
    """
    page = f"{slug}.md"
    targets = {code: root / "docs" / code / page for code in titles}
    for path in targets.values():
        if path.exists():
            raise RefusedError(f"{path.relative_to(root)} already exists: not overwriting it (edit it instead)")
        if not path.parent.is_dir():
            raise RefusedError(f"{path.parent.relative_to(root)}/ is missing: run this from the repository")
    config = nav_file(root, page)
    original = config.read_text(encoding="utf-8")
    updated = add_to_nav(original, page, after, config.name)
    if page not in _nav_paths(load_yaml(updated).get("nav") or []):
        raise RefusedError(f"could not add the page to the nav of {config.name} (left unchanged)")
    created: list[Path] = []
    try:
        for code, path in targets.items():
            write_new(path, TEMPLATES[code].format(title=titles[code]))
            created.append(path)
        replace_text(config, updated)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return created, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Exit status: 0 created, 1 refused, 2 bad usage."
    )
    parser.add_argument("slug", help="file name without .md: lowercase ASCII kebab-case, e.g. ept-violation")
    parser.add_argument("--title-zh", required=True, help="the Chinese page title (its h1)")
    parser.add_argument("--title-en", required=True, help="the English page title (its h1)")
    parser.add_argument("--after", metavar="PAGE", help="put the page after this one in the nav (e.g. run)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=argparse.SUPPRESS)  # tests: a copy
    args = parser.parse_args(argv)
    try:
        slug = check_slug(args.slug)
        titles = {"zh": check_title(args.title_zh, "--title-zh"), "en": check_title(args.title_en, "--title-en")}
        created, config = create(args.root.resolve(), slug, titles, args.after)
    except UsageError as error:
        print(f"new_note: {error}", file=sys.stderr)
        return 2
    except RefusedError as error:
        print(f"new_note: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError, yaml.YAMLError) as error:  # ValueError: an INHERIT loop
        print(f"new_note: {error.__class__.__name__}: {error}", file=sys.stderr)
        return 1
    for path in created:
        print(f"created {path.relative_to(args.root.resolve())}")
    print(f"added {slug}.md to nav in {config.name}; next: write both pages, then `make lint` and `make build`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
