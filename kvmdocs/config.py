"""Read the site's MkDocs configuration without running MkDocs.

Checks and tests need a few settings (source-link tags, the instruction list,
the navigation) from the one place they are configured. ``!!python/...``
tags are kept as opaque markers: only MkDocs needs to resolve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from kvmdocs.paths import DEFAULT_LANGUAGE, Language


class _Loader(yaml.SafeLoader):
    """SafeLoader that tolerates MkDocs' python tags instead of executing them."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: f"<python/{suffix}>")
_Loader.add_multi_constructor("!", lambda loader, suffix, node: f"<!{suffix}>")


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """MkDocs' INHERIT semantics: mappings merge recursively, anything else is replaced."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read(path: Path) -> dict[str, Any]:
    """One mkdocs*.yml as written, INHERIT not resolved (read afresh: scripts edit these files)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}


@cache
def load(path: Path) -> dict[str, Any]:
    """The effective configuration of one mkdocs*.yml, INHERIT resolved."""
    data = read(path)
    parent = data.pop("INHERIT", None)
    if parent:
        data = _merge(load((path.parent / parent).resolve()), data)
    return data


def inherit_chain(path: Path) -> list[Path]:
    """``path`` and the files it INHERITs, the file itself first, the base last."""
    chain: list[Path] = []
    current: Path | None = path.resolve()
    while current is not None:
        if current in chain:
            raise ValueError(f"INHERIT loop: {' -> '.join(p.name for p in [*chain, current])}")
        chain.append(current)
        parent = read(current).get("INHERIT")
        current = (current.parent / parent).resolve() if parent else None
    return chain


def defined_in(path: Path, key: str) -> Path | None:
    """The file of ``path``'s INHERIT chain whose top-level ``key`` is the one in effect, or None.

    For a list such as ``nav`` that is the only place to edit it: MkDocs takes
    the one nearest ``path``, and Zensical would append any other.
    """
    return next((p for p in inherit_chain(path) if key in read(p)), None)


@dataclass(frozen=True)
class SiteSettings:
    """The settings the checks share."""

    base_url: str
    tags: dict[str, str]  # scheme -> tag
    instructions: tuple[str, ...]
    instructions_page: str
    glossary_page: str
    nav: tuple[str, ...]  # Markdown paths in reading order


def _nav_paths(nav: list[Any]) -> list[str]:
    paths: list[str] = []
    for item in nav:
        if isinstance(item, str):
            paths.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                paths.extend(_nav_paths(value) if isinstance(value, list) else [value])
    return paths


def settings(lang: Language = DEFAULT_LANGUAGE) -> SiteSettings:
    """Shared settings as one language's config sees them."""
    config = load(lang.config)
    ext = config.get("markdown_extensions", {})
    srclink = ext.get("kvmdocs.srclink") or {}
    terms = ext.get("kvmdocs.terms") or {}
    return SiteSettings(
        base_url=str(srclink.get("base_url", "")).rstrip("/"),
        tags=dict(srclink.get("tags", {})),
        instructions=tuple(terms.get("instructions", ())),
        instructions_page=terms.get("instructions_page", "vmx-instructions.md"),
        glossary_page=terms.get("glossary_page", "glossary.md"),
        nav=tuple(p for p in _nav_paths(config.get("nav", [])) if p.endswith(".md")),
    )
