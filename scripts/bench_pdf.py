#!/usr/bin/env python3
"""Time the PDF books (a benchmark, not a test), and WeasyPrint on the same pages.

Usage: python scripts/bench_pdf.py [SITE_DIR] [--runs N] [--weasyprint-python PY]

Runs `scripts/export_pdf.py SITE_DIR` (what `make pdf` runs after the build)
N times into a temporary folder and reports the wall time and page counts.
With --weasyprint-python (a Python that can `import weasyprint`, kept out of
this project's requirements) it also prints the same assembled book pages
with WeasyPrint, the engine behind mkdocs-with-pdf and mkdocs-pdf-export.
WeasyPrint runs no JavaScript, so its books have no diagrams (their source
text is printed instead): the comparison is of engines, on equal input.

Exit status: 0 measured, 1 a run failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvmdocs import pdf
from kvmdocs.paths import LANGUAGES, ROOT, SITE

WEASYPRINT = """
import sys, time, weasyprint
start = time.perf_counter()
document = weasyprint.HTML(filename=sys.argv[1], base_url=sys.argv[2]).render()
document.write_pdf(sys.argv[3])
print(f"{time.perf_counter() - start:.3f} {len(document.pages)} {weasyprint.__version__}")
"""


def pages(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(path).pages)


def bench_chromium(site_dir: Path, runs: int) -> list[float]:
    """Wall time of whole export_pdf.py runs (interpreter, browser start, both books)."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "export_pdf.py"), str(site_dir), "--out", out],
                capture_output=True,
                text=True,
            )
            times.append(time.perf_counter() - start)
            if result.returncode != 0:
                raise RuntimeError(result.stderr.strip())
            counts = ", ".join(f"{p.name} {pages(p)} pages" for p in sorted(Path(out).glob("*.pdf")))
    print(f"chromium  runs {runs}: median {statistics.median(times):.1f}s (min {min(times):.1f}s); {counts}")
    return times


def bench_weasyprint(site_dir: Path, python: str) -> None:
    """The same book pages (cover, contents, articles) printed by WeasyPrint, per language."""
    total = 0.0
    for lang in LANGUAGES:
        book_pages, first_doc, _ = pdf.load_book(site_dir, lang)
        html = pdf.print_html(site_dir, lang, book_pages, first_doc, pdf.git_facts(), pdf.build_date())
        with tempfile.TemporaryDirectory() as tmp:
            source, target = Path(tmp) / "book.html", Path(tmp) / "book.pdf"
            source.write_text(html, encoding="utf-8")
            base = (site_dir / lang.prefix).resolve().as_uri() + "/"
            start = time.perf_counter()
            result = subprocess.run(
                [python, "-c", WEASYPRINT, str(source), base, str(target)], capture_output=True, text=True
            )
            wall = time.perf_counter() - start
            if result.returncode != 0:
                raise RuntimeError(f"weasyprint: {result.stderr.strip().splitlines()[-1]}")
            seconds, count, version = result.stdout.split()
            total += wall
            print(
                f"weasyprint {version} {lang.code}: {wall:.1f}s wall ({seconds}s rendering), {count} pages, no diagrams"
            )
    print(f"weasyprint both books: {total:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site_dir", nargs="?", type=Path, default=SITE, help="the built site (default site/)")
    parser.add_argument("--runs", type=int, default=3, help="export runs to time (default 3)")
    parser.add_argument("--weasyprint-python", metavar="PY", help="a Python with weasyprint installed")
    args = parser.parse_args(argv)
    if args.runs < 1 or not (args.site_dir / "index.html").is_file():
        parser.error("need --runs >= 1 and a built SITE_DIR (make build)")
    try:
        bench_chromium(args.site_dir, args.runs)
        if args.weasyprint_python:
            bench_weasyprint(args.site_dir, args.weasyprint_python)
        else:
            print("weasyprint: skipped (pass --weasyprint-python PY, a Python with `pip install weasyprint`)")
    except (RuntimeError, pdf.PdfError, OSError) as error:
        print(f"bench_pdf: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
