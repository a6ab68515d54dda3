"""Benchmark scripts/check_links.py against linkchecker and linkinator, offline.

usage: python scripts/bench_links.py [--pages 1000,10000] [--repeat 3]
                                     [--others-up-to 1000] [--tools linkchecker,linkinator]
                                     [--keep DIR] [--node PATH] [--compare-parsers]
                                     [--timeout SECONDS]

For each size it generates a Material-like tree with known injected faults
(kvmdocs/linkbench.py) in a temporary directory, then times, side by side:

  floor            walk the tree, read and parse every HTML file once with
                   selectolax on all cores (what any exact checker must do)
  check_links.py   this checker (best of --repeat runs, wall clock, as a user
                   runs it: interpreter start-up included)
  linkchecker      PyPI linkchecker, file:// crawl with its AnchorCheck plugin
  linkinator       npm linkinator, --recurse --check-fragments (needs Node 22)

and prints each tool's time, its ratio to this checker, and how many of the
injected faults it found (per kind), plus the reports that match no injected
fault. linkchecker and linkinator crawl for minutes at 10,000 pages, so they
run only on trees up to --others-up-to pages (default 1000). A tool that is not
installed is skipped with a message saying how to install it:

  .venv/bin/pip install linkchecker==10.6.0
  npm install --no-save linkinator@8.1.0 node@22.23.3   (node_modules/.bin/node)

Nothing touches the network: external links in the tree are never fetched.
--compare-parsers also times selectolax, lxml and html.parser (one core,
read + parse + extract ids and URL attributes), the measurement behind the
parser choice recorded in kvmdocs/linkcheck.py.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kvmdocs.linkbench import EXTERNAL_HOSTS, FAULT_KINDS, Fault, generate_site  # noqa: E402
from kvmdocs.linkcheck import default_jobs  # noqa: E402

TOKEN_RE = re.compile(r"f\d{5}")


@dataclass
class Outcome:
    """What one tool did on one tree."""

    tool: str
    seconds: float | None = None
    found: set[str] = field(default_factory=set)  # tokens of injected faults reported
    other: list[str] = field(default_factory=list)  # reports that match no injected fault
    unchecked: int = 0  # references the tool said it could not check
    note: str = ""


def _run(cmd: list[str], timeout: float, cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    return time.perf_counter() - start, proc


def _match(faults: list[Fault], page: str, url: str) -> str | None:
    """Token of the injected fault this report is about, if any (same page, token in the URL)."""
    by_token = {f.token: f for f in faults}
    for token in TOKEN_RE.findall(unquote(url)):
        f = by_token.get(token)
        if f is not None and f.page == page:
            return token
    return None


# --------------------------------------------------------------------------- floor


def _floor_chunk(paths: list[str]) -> int:
    from selectolax.lexbor import LexborHTMLParser

    from kvmdocs.linkcheck import _tune_malloc

    _tune_malloc()
    n = 0
    for p in paths:
        with open(p, "rb") as fh:
            LexborHTMLParser(fh.read())
        n += 1
    return n


def floor_only(tree: Path, jobs: int) -> int:
    """Walk, read and parse every HTML file once on ``jobs`` processes (run as a subprocess by the bench)."""
    import multiprocessing

    from kvmdocs.linkcheck import is_html, walk_site

    files, _, _ = walk_site(tree)
    pages = sorted(str(tree / p) for p in files if is_html(p))
    size = max(1, -(-len(pages) // (jobs * 8)))
    chunks = [pages[i : i + size] for i in range(0, len(pages), size)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return sum(pool.map(_floor_chunk, chunks))


# --------------------------------------------------------------------------- tools


def run_floor(tree: Path, repeat: int, jobs: int, timeout: float) -> Outcome:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--floor-only", str(tree), "--jobs", str(jobs)]
    best = min(_run(cmd, timeout)[0] for _ in range(repeat))
    return Outcome("floor (walk+read+parse)", best, note=f"selectolax on {jobs} cores")


def run_checker(tree: Path, faults: list[Fault], repeat: int, timeout: float) -> Outcome:
    cmd = [sys.executable, str(REPO / "scripts" / "check_links.py"), str(tree), "--format", "json"]
    out = Outcome("check_links.py")
    times = []
    proc = None
    for _ in range(repeat):
        t, proc = _run(cmd, timeout)
        times.append(t)
    assert proc is not None
    if proc.returncode not in (0, 1):
        out.note = f"failed: {proc.stderr.strip()[:200]}"
        return out
    out.seconds = min(times)
    for b in json.loads(proc.stdout)["broken"]:
        token = _match(faults, b["page"], b["href"])
        if token:
            out.found.add(token)
        else:
            out.other.append(f"{b['page']}: {b['reason']}: {b['href']}")
    return out


def _linkchecker_cmd() -> list[str] | None:
    exe = Path(sys.executable).parent / "linkchecker"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("linkchecker")
    return [found] if found else None


def run_linkchecker(tree: Path, faults: list[Fault], timeout: float, workdir: Path) -> Outcome:
    out = Outcome("linkchecker")
    cmd = _linkchecker_cmd()
    if cmd is None:
        out.note = "not installed: .venv/bin/pip install linkchecker==10.6.0"
        return out
    version = subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    out.tool = version.replace("released", "").split(" 20")[0].strip() or "linkchecker"
    config = workdir / "linkcheckerrc"
    # AnchorCheck is linkchecker's fragment check; without it no anchor is looked at.
    config.write_text("[checking]\nthreads=10\n[filtering]\ncheckextern=0\n[AnchorCheck]\n", encoding="utf-8")
    try:
        seconds, proc = _run(
            [*cmd, "--config", str(config), "--no-status", "-o", "csv", f"file://{tree}/index.html"], timeout, workdir
        )
    except subprocess.TimeoutExpired:
        out.note = f"did not finish within {timeout:.0f} s"
        return out
    out.seconds = seconds
    text = proc.stdout
    start = text.find("urlname;")  # comment lines come first; a row may itself start with '#'
    prefix = f"file://{tree}/"
    for row in csv.DictReader(io.StringIO(text[start:] if start >= 0 else ""), delimiter=";"):
        parent = unquote(row.get("parentname") or "").removeprefix(prefix).partition("#")[0].partition("?")[0]
        url = (row.get("urlname") or "") + " " + (row.get("url") or "")
        if "does not support anchors" in (row.get("warningstring") or ""):
            out.unchecked += 1  # linkchecker's own word: it cannot check anchors on directory URLs
            continue
        token = _match(faults, parent, url)
        if token:
            out.found.add(token)
        else:
            what = (row.get("result") or row.get("warningstring") or "")[:60]
            out.other.append(f"{parent}: {row.get('urlname')}: {what}")
    return out


def _node_for_linkinator(given: str | None = None) -> tuple[str | None, str]:
    """A Node >= 22 (linkinator 8 needs it): --node, node_modules/.bin/node (npm 'node') or the system one."""
    for node in (given, REPO / "node_modules" / ".bin" / "node", shutil.which("node")):
        if not node or not Path(node).exists():
            continue
        ver = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=False).stdout.strip()
        try:
            major = int(ver.lstrip("v").split(".")[0])
        except ValueError:
            continue
        if major >= 22:
            return str(node), ver
    return None, "no Node >= 22: npm install --no-save node@22.23.3"


def run_linkinator(tree: Path, faults: list[Fault], timeout: float, node_path: str | None = None) -> Outcome:
    out = Outcome("linkinator")
    cli = REPO / "node_modules" / "linkinator" / "build" / "src" / "cli.js"
    if not cli.is_file():
        out.note = "not installed: npm install --no-save linkinator@8.1.0"
        return out
    node, ver = _node_for_linkinator(node_path)
    if node is None:
        out.note = f"skipped: {ver}"
        return out
    pkg = json.loads((REPO / "node_modules" / "linkinator" / "package.json").read_text(encoding="utf-8"))
    out.tool = f"linkinator {pkg.get('version', '?')} (node {ver})"
    skips = [a for host in EXTERNAL_HOSTS for a in ("--skip", re.escape(host))]
    cmd = [node, str(cli), str(tree), "--recurse", "--check-fragments", "--format", "json", *skips]
    try:
        seconds, proc = _run(cmd, timeout)
    except subprocess.TimeoutExpired:
        out.note = f"did not finish within {timeout:.0f} s"
        return out
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        out.note = f"no JSON output: {proc.stderr.strip()[:200]}"
        return out
    out.seconds = seconds
    prefix = f"{tree}/"
    for link in data.get("links", []):
        if link.get("state") != "BROKEN":
            continue
        parent = unquote(link.get("parent") or "").removeprefix(prefix).partition("#")[0].partition("?")[0]
        token = _match(faults, parent, link.get("url") or "")
        if token:
            out.found.add(token)
        else:
            detail = json.dumps(link.get("failureDetails") or "")[:120]
            out.other.append(f"{parent}: {link.get('url')} (status {link.get('status')}, {detail})")
    return out


# --------------------------------------------------------------------------- parser comparison


def compare_parsers(tree: Path) -> None:
    """One core, read + parse + extract ids and URL attributes of every page, per parser."""
    from html.parser import HTMLParser

    import lxml.html
    from lxml import etree
    from selectolax.lexbor import LexborCSSSelector, LexborHTMLParser

    from kvmdocs.linkcheck import _SELECTOR, _tune_malloc, is_html, walk_site

    _tune_malloc()
    files, _, _ = walk_site(tree)
    pages = sorted(str(tree / p) for p in files if is_html(p))
    engine = LexborCSSSelector()
    lxml_parser = lxml.html.HTMLParser(encoding="utf-8")
    xpath = etree.XPath("//*[@id or @href or @src or @srcset or @poster or self::a[@name]]")

    def read(p: str) -> bytes:
        with open(p, "rb") as fh:
            return fh.read()

    def with_selectolax(p: str) -> int:
        root = LexborHTMLParser(read(p)).root
        return sum(len(n.attributes) for n in engine.find(_SELECTOR, root)) if root is not None else 0

    def with_lxml(p: str) -> int:
        return sum(len(el.attrib) for el in xpath(etree.fromstring(read(p), lxml_parser)))

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.n = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.n += sum(1 for k, _ in attrs if k in ("id", "href", "src", "srcset", "poster", "name"))

    def with_html_parser(p: str) -> int:
        c = Collect()
        c.feed(read(p).decode("utf-8", "replace"))
        c.close()
        return c.n

    size = sum(os.path.getsize(p) for p in pages) / 1e6
    print(f"\nparser comparison: {len(pages)} pages, {size:.0f} MB, one core, read + parse + extract")
    runs: list[tuple[str, Callable[[str], int], list[str]]] = [
        ("selectolax (lexbor)", with_selectolax, pages),
        ("lxml (libxml2)", with_lxml, pages),
        ("html.parser (stdlib)", with_html_parser, pages[: max(1, len(pages) // 10)]),
    ]
    for name, fn, subset in runs:
        start = time.process_time()
        for p in subset:
            fn(p)
        took = time.process_time() - start
        scaled = took * len(pages) / len(subset)
        extra = "" if subset is pages else f" (timed on {len(subset)} pages, scaled)"
        print(f"  {name:22s} {scaled:7.2f} s  {size / scaled:6.1f} MB/s{extra}")


# --------------------------------------------------------------------------- report


def _fmt_time(t: float | None) -> str:
    return "-" if t is None else (f"{t:.2f} s" if t < 100 else f"{t:.0f} s")


def report(n: int, mb: float, faults: list[Fault], outcomes: list[Outcome], ours: Outcome) -> None:
    print(f"\n{n:,} pages, {mb:.0f} MB of HTML, {len(faults)} injected faults")
    print(f"  {'tool':40s} {'time':>9s} {'vs this':>8s} {'faults found':>13s} {'other reports':>14s}")
    for o in outcomes:
        if o.seconds is None:
            print(f"  {o.tool:40s} {o.note}")
            continue
        ratio = "" if ours.seconds is None or o.tool.startswith("floor") else f"{o.seconds / ours.seconds:.1f}x"
        found = "" if o.tool.startswith("floor") else f"{len(o.found)}/{len(faults)}"
        other = "" if o.tool.startswith("floor") else str(len(o.other))
        print(f"  {o.tool:40s} {_fmt_time(o.seconds):>9s} {ratio:>8s} {found:>13s} {other:>14s}")
    tools = [o for o in outcomes if o.seconds is not None and not o.tool.startswith("floor")]
    print("  faults found per kind: " + ", ".join(o.tool.split(" (")[0] for o in tools))
    for kind in FAULT_KINDS:
        tokens = {f.token for f in faults if f.kind == kind}
        cells = "  ".join(f"{len(o.found & tokens)}/{len(tokens)}" for o in tools)
        print(f"    {kind:22s} {cells}")
    if ours.seconds is not None:
        exact = len(ours.found) == len(faults) and not ours.other
        verdicts = [f"every injected fault found, nothing sound reported: {'yes' if exact else 'NO'}"]
        for o in tools:
            if o is not ours and o.seconds is not None:
                want = 50.0 if o.tool.lower().startswith("linkchecker") else 1.0
                ratio = o.seconds / ours.seconds
                verdicts.append(
                    f"{ratio:.0f}x faster than {o.tool.split(' ')[0]} (target {want:g}x): "
                    f"{'met' if ratio >= want else 'NOT met'}"
                )
        if n >= 10_000:
            met = "met" if ours.seconds < 2 else "NOT met"
            verdicts.append(f"{n:,} pages in {ours.seconds:.2f} s (target < 2 s): {met}")
        print("  targets: " + "; ".join(verdicts))
    for o in tools:
        name = o.tool.split(" (")[0]
        if o.other:
            print(f"  {name}: {len(o.other)} reports match no injected fault, e.g. {o.other[0]!r}")
        if o.unchecked:
            print(f"  {name}: {o.unchecked} references it says it cannot check (anchors on directory URLs)")


def main(argv: list[str] | None = None) -> int:
    """Generate the trees, run every available tool, print the comparison."""
    p = argparse.ArgumentParser(
        prog="bench_links.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pages", default="1000,10000", help="comma-separated tree sizes (default 1000,10000)")
    p.add_argument("--repeat", type=int, default=3, help="runs of the floor and of this checker; best is kept")
    p.add_argument("--others-up-to", type=int, default=1000, help="largest tree linkchecker/linkinator run on")
    p.add_argument("--tools", default="linkchecker,linkinator", help="established checkers to run (default: both)")
    p.add_argument("--keep", type=Path, default=None, help="generate trees under this directory and keep them")
    p.add_argument("--compare-parsers", action="store_true", help="also time selectolax, lxml and html.parser")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed to each external tool run")
    p.add_argument("--node", default=None, help="Node >= 22 binary for linkinator (default: node_modules/.bin/node)")
    p.add_argument("--jobs", type=int, default=default_jobs(), help=argparse.SUPPRESS)
    p.add_argument("--floor-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.floor_only is not None:
        floor_only(args.floor_only, args.jobs)
        return 0
    sizes = [int(s) for s in args.pages.split(",") if s.strip()]
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-links-"))
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)  # linkchecker drops root privileges to 'nobody' and must still read the tree
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"bench_links: {os.cpu_count()} cores, load average {load}, trees under {base}")
    try:
        for n in sizes:
            tree = base / f"site-{n}"
            if tree.exists():
                shutil.rmtree(tree)
            tree.mkdir(parents=True)
            faults = generate_site(tree, n)
            mb = sum(f.stat().st_size for f in tree.rglob("*.html")) / 1e6
            outcomes = [run_floor(tree, args.repeat, args.jobs, args.timeout)]
            ours = run_checker(tree, faults, args.repeat, args.timeout)
            outcomes.append(ours)
            tools = {t.strip() for t in args.tools.split(",") if t.strip()}
            if n <= args.others_up_to:
                if "linkchecker" in tools:
                    with tempfile.TemporaryDirectory() as work:
                        os.chmod(work, 0o755)
                        outcomes.append(run_linkchecker(tree, faults, args.timeout, Path(work)))
                if "linkinator" in tools:
                    outcomes.append(run_linkinator(tree, faults, args.timeout, args.node))
            else:
                why = f"not run above {args.others_up_to} pages (--others-up-to)"
                outcomes += [Outcome("linkchecker", note=why), Outcome("linkinator", note=why)]
            report(n, mb, faults, outcomes, ours)
            if args.compare_parsers and n == max(sizes):
                compare_parsers(tree)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
