#!/usr/bin/env python3
"""Check (and as root, install) the Debian packages the tests need.

Usage: python scripts/system_deps.py [--check]

The browser tests drive Debian's Chromium, the Chinese PDF needs Noto CJK,
and the PDF tests read text with poppler. As root the missing packages are
installed with apt-get; otherwise the exact command to run is printed.
Exit status: 0 all present, 1 missing and not installable here, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

# package -> how to tell it is installed
PACKAGES: dict[str, str] = {
    "chromium": "/usr/bin/chromium",
    "fonts-noto-cjk": "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "poppler-utils": "/usr/bin/pdftotext",
    "git": "/usr/bin/git",
}


def missing() -> list[str]:
    """Packages whose marker file is absent."""
    return [name for name, marker in PACKAGES.items() if not os.path.exists(marker)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report, never install")
    args = parser.parse_args(argv)
    need = missing()
    if not need:
        return 0
    command = ["apt-get", "install", "-y", "--no-install-recommends", *need]
    if args.check or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"system_deps: missing Debian packages: {' '.join(need)}; run: sudo {' '.join(command)}", file=sys.stderr)
        return 1
    print(f"system_deps: installing {' '.join(need)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], command):
        if subprocess.run(step, env=env).returncode != 0:
            print(f"system_deps: `{' '.join(step)}` failed", file=sys.stderr)
            return 1
    still = missing()
    if still:
        print(f"system_deps: still missing after apt-get: {' '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
