#!/usr/bin/env python3
"""Print the built site as one PDF book per language, offline.

Usage: python scripts/export_pdf.py SITE_DIR [--lang zh|en] [--out DIR] [--tagged]

Reads the pages `make build` wrote to SITE_DIR and prints each language's
navigation, in order, through Debian's headless Chromium into
DIR/kvm-internals-<lang>.pdf (DIR defaults to SITE_DIR/pdf, where every page
of the site links to its book). A book is written to a temporary file and
renamed, so a failed run leaves the previous book or none, never half a one.

Exit status: 0 books written, 1 a book failed (a Mermaid diagram is broken,
Chromium failed), 2 bad usage or unusable input (no built site, a page or
Chromium missing, output not writable). `make pdf` runs this after `make build`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvmdocs.paths import LANGUAGES
from kvmdocs.pdf import PdfError, PdfInputError, export_books

PROG = "export_pdf"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site_dir", metavar="SITE_DIR", type=Path, help="the built site (site/)")
    parser.add_argument(
        "--lang", choices=[lang.code for lang in LANGUAGES], action="append", help="only this language (repeatable)"
    )
    parser.add_argument("--out", metavar="DIR", type=Path, help="where the books go (default SITE_DIR/pdf)")
    parser.add_argument(
        "--tagged", action="store_true", help="tagged PDF for screen readers (about 2.5x larger and slower)"
    )
    args = parser.parse_args(argv)
    try:
        reports = export_books(args.site_dir, args.lang, args.out, tagged=args.tagged)
    except PdfInputError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except PdfError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{PROG}: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as error:  # never a traceback: say what broke, in one line
        print(
            f"{PROG}: unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            file=sys.stderr,
        )
        return 1
    for report in reports:
        for warning in report.warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        print(
            f"wrote {report.path} ({report.pages} pages, {report.diagrams} diagrams, "
            f"{report.prints} prints, {report.seconds:.1f}s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
