"""Check every link and anchor of a built static HTML site.

usage: python scripts/check_links.py SITE_DIR [--format text|json] [--external]
                                     [--jobs N] [--docs DOCS_DIR] [--base-path PREFIX]

Every reference a browser follows is checked: href of a/area/link, src of
img/script/source/iframe/audio/video/embed/track, every srcset candidate and
video poster. Relative, root-relative and '..' paths, directory URLs (foo/ is
foo/index.html), query strings (ignored for the file) and percent-encoding
(UTF-8) are resolved against the files under SITE_DIR; '#fragment' must name an
id (or an a[name]) in the target page ('#' and '#top' are fine; fragments on
non-HTML files are not checked). A reference that leaves SITE_DIR is broken.
mailto:, tel:, data: and javascript: are not followed; http(s) URLs are checked
only with --external.

options:
  --format text|json  text (default): one line per broken reference, grouped by
                      page, then a summary line; json: {"pages", "links",
                      "broken": [{"page", "href", "reason", "source"}]}
  --external          also check http(s) links (concurrent, per-host limit,
                      timeout, one request per URL)
  --jobs N            parser processes (default: all cores)
  --docs DOCS_DIR     map each broken reference to its Markdown file:line
                      (docs/zh/x.md -> x.html, docs/en/x.md -> en/x.html)
  --base-path PREFIX  the site is served under PREFIX (e.g. /kvm/): root-relative
                      links must start with it
  -h, --help          show this help

exit status: 0 nothing broken, 1 something broken, 2 usage or I/O error.
Reason codes are listed in kvmdocs/linkcheck.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvmdocs.linkcheck import CheckError, check_site, format_json, format_text


class _UsageError(Exception):
    """argparse wants to exit; main() turns it into a one-line message and status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="check_links.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=argparse.SUPPRESS,
        add_help=False,
    )
    p.add_argument("site", metavar="SITE_DIR")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--external", action="store_true")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--docs", metavar="DOCS_DIR", default=None)
    p.add_argument("--base-path", metavar="PREFIX", default=None)
    p.add_argument("-h", "--help", action="store_true")
    return p


def _emit(text: str) -> None:
    """Print to stdout; `check_links.py site | head` must not end in a BrokenPipeError traceback."""
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader left; the exit status still tells the verdict
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Run the checker; return the exit status instead of exiting (tests call this)."""
    args_list = sys.argv[1:] if argv is None else argv
    if "-h" in args_list or "--help" in args_list:
        _emit(__doc__.strip())
        return 0
    try:
        args = _parser().parse_args(args_list)
        if args.jobs is not None and args.jobs < 1:
            raise _UsageError("--jobs must be at least 1")
        report = check_site(
            args.site,
            jobs=args.jobs,
            base_path=args.base_path,
            external=args.external,
            docs=args.docs,
        )
    except _UsageError as exc:
        print(f"check_links.py: usage error: {exc} (see --help)", file=sys.stderr)
        return 2
    except CheckError as exc:
        print(f"check_links.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("check_links.py: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug here must still end in one line, not a traceback
        print(f"check_links.py: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    _emit(format_json(report) if args.format == "json" else format_text(report))
    for msg in report.io_errors:
        print(f"check_links.py: error: {msg}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
