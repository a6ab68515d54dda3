"""Command line: `python -m kvmlab [--json] [--device PATH] [--site-url URL]`."""

from __future__ import annotations

import argparse
import sys

from .lab import DEFAULT_DEVICE, Lab
from .report import to_json, to_text

DEFAULT_SITE_BASE = "site/"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; the defaults walk the real /dev/kvm and link into a locally built site/."""
    parser = argparse.ArgumentParser(
        prog="python -m kvmlab",
        description="Walk the KVM lifecycle (v3.8 x86/VMX path) against a real /dev/kvm.",
    )
    parser.add_argument(
        "--device", default=DEFAULT_DEVICE, metavar="PATH", help="KVM device node to open (default: %(default)s)"
    )
    parser.add_argument(
        "--site-url",
        default=DEFAULT_SITE_BASE,
        metavar="URL",
        help="base that section links are printed under (default: the relative path %(default)s of a built site)",
    )
    parser.add_argument("--json", action="store_true", help="print the steps as JSON instead of a transcript")
    parser.add_argument(
        "--max-exits",
        type=int,
        default=16,
        metavar="N",
        help="stop after this many KVM_RUN calls (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.max_exits < 1:
        parser.error("--max-exits must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the lab and return its exit code; failures are explained, never raised."""
    args = parse_args(argv)
    result = Lab(device=args.device, max_exits=args.max_exits).run()
    text = to_json(result, args.site_url) if args.json else to_text(result, args.site_url)
    stream = sys.stdout if result.exit_code == 0 or args.json else sys.stderr
    if not args.json and result.exit_code != 0:
        # the steps that did work still belong on stdout; the reason goes to stderr
        steps, _, tail = text.rpartition("Error: ")
        if steps:
            sys.stdout.write(steps)
        sys.stderr.write("Error: " + tail)
    else:
        stream.write(text)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
