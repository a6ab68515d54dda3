#!/usr/bin/env python3
"""Build the site, serve site/ on localhost and rebuild when sources change.

Usage: python scripts/serve.py [--port 8000] [--host 127.0.0.1]

Both languages are separate MkDocs builds (mkdocs.yml, mkdocs.en.yml, both
inheriting mkdocs.base.yml), so `mkdocs serve` would show only one; this serves the same site/ that
`make build` produces. A failed rebuild prints the error and keeps serving
the last good site. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from kvmdocs.build import BuildError, build
from kvmdocs.paths import ROOT, SITE

WATCHED = ("docs", "includes", "overrides", "kvmdocs", "mkdocs.base.yml", "mkdocs.yml", "mkdocs.en.yml")


class Rebuilder(FileSystemEventHandler):
    """Coalesce bursts of file events into one rebuild."""

    def __init__(self) -> None:
        self.pending = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = str(event.src_path)
        if "/assets/vendor/" not in path and "__pycache__" not in path:
            self.pending.set()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from site/, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def rebuild() -> None:
    started = time.perf_counter()
    try:
        build()
    except BuildError as error:
        print(f"serve: rebuild failed, still serving the last good site:\n{error}", file=sys.stderr)
        return
    print(f"serve: rebuilt in {time.perf_counter() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    args = parser.parse_args(argv)
    try:
        build()
    except BuildError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 1
    handler = functools.partial(QuietHandler, directory=str(SITE))
    try:
        server = http.server.ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as error:
        print(f"serve: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    watcher = Rebuilder()
    observer = Observer()
    for name in WATCHED:
        path = ROOT / name
        observer.schedule(watcher, str(path), recursive=path.is_dir())
    observer.start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"serve: http://{args.host}:{args.port}/ (English at /en/); Ctrl-C stops")
    try:
        while True:
            if watcher.pending.wait(timeout=1):
                time.sleep(0.3)  # let an editor finish writing
                watcher.pending.clear()
                rebuild()
    except KeyboardInterrupt:
        pass
    finally:
        observer.stop()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
