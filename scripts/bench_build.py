#!/usr/bin/env python3
"""Time the site build: this site, and a generated site N times its size.

Usage: python scripts/bench_build.py [--scale 50] [--repeat 1] [--keep]

For each tree it times, in the same run, (a) this project's build (both
languages with the kvmdocs extensions, tooltips and pinned links) and (b) a
plain MkDocs + Material build of the same pages without them, so the ratio
shows what the project's own machinery costs. Prints a table and the ratios.
A benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvmdocs.build import vendor_assets
from kvmdocs.config import defined_in, settings
from kvmdocs.paths import DEFAULT_LANGUAGE, LANGUAGES, ROOT

# Lines of the configs (mkdocs.base.yml) that make the build "ours"; the plain variant drops them.
OURS_RE = re.compile(r"^  (kvmdocs\.(srclink|terms)):\n(?:    .*\n)+", re.M)


def make_tree(workdir: Path, scale: int, plain: bool) -> Path:
    """Copy configs, includes and theme; docs repeated `scale` times."""
    for name in ("includes", "overrides"):
        shutil.copytree(ROOT / name, workdir / name)
    nav_pages = settings().nav
    for lang in LANGUAGES:
        target = workdir / "docs" / lang.code
        target.mkdir(parents=True)
        for page in lang.docs.glob("*.md"):
            text = page.read_text(encoding="utf-8")
            if plain:  # plain MkDocs cannot expand src: links: make them ordinary URLs
                text = re.sub(r"\]\((?:src|now):([^)#]+)(#[^)]*)?\)", r"](https://example.org/\1\2)", text)
            for copy in range(scale):
                name = page.name if copy == 0 else f"{page.stem}-{copy}.md"
                (target / name).write_text(text, encoding="utf-8")
    nav = "".join(
        f"  - {Path(p).stem}{'-' + str(copy) if copy else ''}.md\n" for copy in range(scale) for p in nav_pages
    )
    # Every config file (the language files and mkdocs.base.yml they INHERIT);
    # the nav and `strict` are rewritten in the file that holds them.
    nav_file = defined_in(DEFAULT_LANGUAGE.config, "nav")
    for config in sorted(ROOT.glob("mkdocs*.yml")):
        text = config.read_text(encoding="utf-8")
        if plain:
            text = OURS_RE.sub("", text)
        if config == nav_file:
            text, found = re.subn(r"^nav:\n(?:  - .*\n)+", "nav:\n" + nav, text, flags=re.M)
            if not found:
                raise SystemExit(f"bench_build: no `nav:` list of pages in {config.name}")
        text = text.replace("strict: true", "strict: false")
        (workdir / config.name).write_text(text, encoding="utf-8")
    return workdir


def build_tree(workdir: Path) -> float:
    """Seconds to build both languages of the tree in `workdir`."""
    start = time.perf_counter()
    for lang in LANGUAGES:
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(workdir / lang.config.name)],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"bench_build: build failed in {workdir}:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def measure(scale: int, plain: bool, repeat: int) -> tuple[float, int]:
    """Median build time and the number of HTML pages built."""
    times = []
    pages = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="kvm-bench-") as tmp:
            workdir = make_tree(Path(tmp), scale, plain)
            times.append(build_tree(workdir))
            pages = len(list((workdir / "site").rglob("*.html")))
    return statistics.median(times), pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=50, help="size of the generated site, in copies (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the median is shown")
    args = parser.parse_args(argv)
    if args.scale < 1 or args.repeat < 1:
        parser.error("--scale and --repeat must be at least 1")
    try:
        vendor_assets()
    except Exception as error:  # a missing npm install is the usual cause
        print(f"bench_build: {error}", file=sys.stderr)
        return 2
    rows = []
    for scale in (1, args.scale):
        ours, pages = measure(scale, plain=False, repeat=args.repeat)
        plain, _ = measure(scale, plain=True, repeat=args.repeat)
        rows.append((scale, pages, ours, plain))
    print(f"{'tree':>10} {'pages':>6} {'this build':>11} {'plain MkDocs':>13} {'ratio':>6}")
    for scale, pages, ours, plain in rows:
        print(f"{'x' + str(scale):>10} {pages:>6} {ours:>10.1f}s {plain:>12.1f}s {ours / plain:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
