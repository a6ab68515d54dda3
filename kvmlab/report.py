"""Render a lab Result for a reader (text) or for a test (JSON)."""

from __future__ import annotations

import json
from typing import Any

from .lab import Result, Step, site_link

WIDTH = 100
STATUS_MARK = {"ok": "ok", "failed": "FAILED", "host-refused": "host refused", "pending": "not run"}


def to_json(result: Result, site_base: str) -> str:
    """The whole walk as one JSON document; lists keep the order the kernel saw things in."""
    return json.dumps(result.as_dict(site_base), indent=2, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_text(result: Result, site_base: str) -> str:
    """Human-readable transcript: each step, what came back, and where the site traces it."""
    out: list[str] = []
    for step in result.steps:
        out.extend(_step_text(step, site_base, result.error))
        out.append("")
    if result.verdict:
        out.append(("Result: " if result.exit_code == 0 else "Error: ") + result.verdict)
    elif result.error:
        out.append(f"Error: {result.error}")
    return "\n".join(out).rstrip() + "\n"


def _step_text(step: Step, site_base: str, error_below: str | None = None) -> list[str]:
    mark = STATUS_MARK.get(step.status, step.status)
    if step.status == "failed" and step.error == error_below:
        mark += " (the error is at the end)"
    lines = [f"[{step.number}] {step.title} ... {mark}"]
    lines.extend(f"    {line}" for line in step.lines)
    if step.error and step.error != error_below:
        lines.append(f"    error: {step.error}")
    for path in step.kernel:
        lines.extend(_wrap_chain(f"    kernel: {path.action}: ", path.functions))
        lines.append(f"            in {path.source}")
        if path.section:
            lines.append(f"            see {site_link(site_base, path.section)}")
    seen: set[str] = set()
    for record in step.exits:
        handler = " -> ".join(record.get("handler", []))
        if handler and handler not in seen:
            seen.add(handler)
            lines.extend(_wrap_chain(f"    exit path for {record['name']}: ", record["handler"]))
    if step.exits:
        lines.append(f"            see {site_link(site_base, 'run.html#exit-handlers')}")
    return lines


def _wrap_chain(head: str, chain: list[str], width: int = WIDTH) -> list[str]:
    """Break a call chain after an arrow so a transcript fits a terminal (and a web page)."""
    lines: list[str] = []
    current = head + chain[0]
    for name in chain[1:]:
        if len(current) + 4 + len(name) > width:
            lines.append(current + " ->")
            current = " " * 12 + name
        else:
            current += " -> " + name
    lines.append(current)
    return lines
