#!/usr/bin/env python3
"""Build the site into site/: both languages, vendored assets, git dates.

Usage: python scripts/build.py [--engine mkdocs|properdocs] [--no-strict]

Exit status: 0 built, 1 the build failed (the generator's message follows),
2 bad usage. `make build` runs this; `make pdf` prints the books afterwards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvmdocs.build import ENGINES, BuildError, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="mkdocs", help="site generator to run")
    parser.add_argument("--no-strict", action="store_true", help="let warnings pass (never in CI)")
    args = parser.parse_args(argv)
    try:
        report = build(args.engine, strict=not args.no_strict)
    except BuildError as error:
        print(f"build: {error}", file=sys.stderr)
        return 1
    timings = ", ".join(f"{step} {secs:.1f}s" for step, secs in report.seconds.items())
    print(f"built site/ with {args.engine} ({timings}; git facts on {report.pages_with_git_facts} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
