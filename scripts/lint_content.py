#!/usr/bin/env python3
"""Check the Markdown pages against the content rules in kvmdocs/rules.py.

Usage: python scripts/lint_content.py [--no-seed] [--format text|github] [--docs DIR] [paths...]

One line per finding, ``path:line: RULE error: message (CONTRIBUTING.md#rule)``;
CONTRIBUTING.md explains each rule under its ID. Warnings are listed but never
fail. With paths, only findings in those files (and their other-language
twins, which parity rules compare them with) are shown.
Exit status: 0 no errors, 1 errors found, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvmdocs import rules  # noqa: E402 (after the path set-up, so the script runs from anywhere)
from kvmdocs.paths import LANGUAGES  # noqa: E402


class UsageError(Exception):
    """A bad argument: one line on stderr, exit 2."""


def selection(paths: list[Path], docs: Path) -> set[str] | None:
    """Finding paths to keep: the given files or folders, plus each page's twin in the other language."""
    if not paths:
        return None
    keep: set[str] = set()
    codes = [lang.code for lang in LANGUAGES]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        resolved = path.resolve()
        if not resolved.is_relative_to(docs.resolve()):
            raise UsageError(f"{path}: not under {rules.rel(docs)}/ (the content lint checks only the pages)")
        files = sorted(resolved.rglob("*")) if resolved.is_dir() else [resolved]
        for file in files:
            if file.is_dir():
                continue
            keep.add(rules.rel(file))
            inside = file.relative_to(docs.resolve()).parts
            if len(inside) > 1 and inside[0] in codes:
                for code in codes:
                    keep.add(rules.rel(docs.resolve().joinpath(code, *inside[1:])))
    return keep


def escape(value: str, prop: bool = False) -> str:
    """GitHub workflow-command escaping (properties also escape ``:`` and ``,``)."""
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def render(finding: rules.Finding, style: str) -> str:
    """One finding as a line of the chosen format, pointing at its rule in the guide."""
    if style == "github":
        kind = "warning" if finding.warning else "error"
        where = f"file={escape(finding.path, True)},line={finding.line}"
        return f"::{kind} {where}::{finding.rule} {escape(finding.message)} ({finding.guide})"
    return f"{finding} ({finding.guide})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Exit status: 0 no errors, 1 errors, 2 bad usage."
    )
    parser.add_argument("paths", nargs="*", type=Path, help="only report on these pages or folders under docs/")
    parser.add_argument("--no-seed", action="store_true", help="skip SEED-1, the 2015-post overlap check")
    parser.add_argument("--format", choices=("text", "github"), default="text", help="github: workflow annotations")
    parser.add_argument("--docs", type=Path, default=None, help="another tree with zh/ and en/ (default: docs/)")
    args = parser.parse_args(argv)
    docs = args.docs if args.docs is not None else ROOT / "docs"
    try:
        if not all((docs / lang.code).is_dir() for lang in LANGUAGES):
            raise UsageError(f"{docs}: expected folders {', '.join(lang.code for lang in LANGUAGES)} inside")
        keep = selection(args.paths, docs)
        findings = rules.check_all(seed=not args.no_seed, docs=args.docs)
    except UsageError as error:
        print(f"lint_content: {error}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"lint_content: cannot read the pages: {error}", file=sys.stderr)
        return 2
    if keep is not None:
        findings = [f for f in findings if f.path in keep]
    for finding in findings:
        print(render(finding, args.format))
    errors = sum(not f.warning for f in findings)
    warnings = len(findings) - errors
    if findings:
        print(f"lint_content: {errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
