"""scripts/new_note.py: both pages from the template, the nav updated, nothing overwritten.

Every test works on a copy of the site's sources in tmp_path (the script's
hidden --root option), never on the real docs/ or mkdocs*.yml. The nav lives
in mkdocs.base.yml, which both language configs INHERIT, so that is the file
the script edits.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kvmdocs import rules
from kvmdocs.config import read
from kvmdocs.paths import ROOT

SCRIPT = ROOT / "scripts" / "new_note.py"
COPIED = ("mkdocs.base.yml", "mkdocs.yml", "mkdocs.en.yml", "docs", "includes", "overrides")
NAV_FILE = "mkdocs.base.yml"  # where `nav` is defined


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("new_note", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the build reads (the vendored assets are not needed for a strict build)."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("vendor"))
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def new_note(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--root", str(repo)], capture_output=True, text=True, cwd=repo
    )


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file under docs/ and the configs, to show a refused run changed nothing."""
    files = [*sorted(repo.glob("mkdocs*.yml")), *sorted((repo / "docs").rglob("*"))]
    return {str(p.relative_to(repo)): p.read_bytes() for p in files if p.is_file()}


def build(repo: Path, config: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(repo / config)]
    return subprocess.run(command, capture_output=True, text=True, cwd=repo, env=env)


def test_creates_both_pages_and_the_strict_build_passes(repo: Path) -> None:
    before = (repo / NAV_FILE).read_text(encoding="utf-8")
    languages = {name: (repo / name).read_bytes() for name in ("mkdocs.yml", "mkdocs.en.yml")}
    result = new_note(repo, "ept-violation", "--title-zh", "EPT 违例", "--title-en", "EPT violations")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["created docs/zh/ept-violation.md", "created docs/en/ept-violation.md"]
    assert result.stdout.splitlines()[2].startswith(f"added ept-violation.md to nav in {NAV_FILE};")
    zh = (repo / "docs/zh/ept-violation.md").read_text(encoding="utf-8")
    en = (repo / "docs/en/ept-violation.md").read_text(encoding="utf-8")
    assert zh.startswith("# EPT 违例\n") and en.startswith("# EPT violations\n")
    for text in (zh, en):
        assert "[`kvm_init()`](src:virt/kvm/kvm_main.c#L2846)" in text
        assert "{ #overview }" in text and "{ #next }" in text

    # one added line in the shared nav, every comment kept; both language configs inherit it
    after = (repo / NAV_FILE).read_text(encoding="utf-8")
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == ["  - ept-violation.md"]
    assert len(after.splitlines()) == len(before.splitlines()) + 1
    for name, text in languages.items():
        assert (repo / name).read_bytes() == text and "nav" not in read(repo / name)
    nav = [line.strip() for line in after.splitlines() if line.startswith("  - ") and line.endswith(".md")]
    if "- contributing.md" in nav:
        assert nav[-2:] == ["- ept-violation.md", "- contributing.md"]  # the guide stays last
    else:
        assert nav[-1] == "- ept-violation.md"

    # the pages pass the content rules and the strict build, in both languages
    findings = [f for f in rules.check_all(seed=False, docs=repo / "docs") if "ept-violation" in f.path]
    assert findings == []
    for config in ("mkdocs.yml", "mkdocs.en.yml"):
        built = build(repo, config)
        assert built.returncode == 0, built.stdout + built.stderr
    for page in (repo / "site/ept-violation.html", repo / "site/en/ept-violation.html"):
        html = page.read_text(encoding="utf-8")
        assert "https://elixir.bootlin.com/linux/v3.8/source/virt/kvm/kvm_main.c#L2846" in html
    assert 'href="ept-violation.html"' in (repo / "site/index.html").read_text(encoding="utf-8")


def test_after_puts_the_page_where_asked(repo: Path) -> None:
    assert new_note(repo, "ept-violation", "--title-zh", "甲", "--title-en", "A", "--after", "run").returncode == 0
    lines = (repo / NAV_FILE).read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("  - run.md") + 1] == "  - ept-violation.md"


def test_refuses_to_overwrite_and_changes_nothing(repo: Path) -> None:
    assert new_note(repo, "ept-violation", "--title-zh", "甲", "--title-en", "A").returncode == 0
    (repo / "docs/zh/ept-violation.md").write_text("# 我写的\n", encoding="utf-8")
    before = snapshot(repo)
    result = new_note(repo, "ept-violation", "--title-zh", "乙", "--title-en", "B")
    assert result.returncode == 1
    assert result.stderr == (
        "new_note: docs/zh/ept-violation.md already exists: not overwriting it (edit it instead)\n"
    )
    assert snapshot(repo) == before


def test_refuses_when_only_one_language_exists(repo: Path) -> None:
    (repo / "docs/en/half.md").write_text("# Half\n", encoding="utf-8")
    before = snapshot(repo)
    result = new_note(repo, "half", "--title-zh", "半", "--title-en", "Half")
    assert result.returncode == 1 and "docs/en/half.md already exists" in result.stderr
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("EPT", "slug 'EPT': use lowercase ASCII letters, digits and single hyphens (e.g. 'ept')"),
        ("ept_violation", "(e.g. 'ept-violation')"),
        ("ept--violation", "single hyphens"),
        ("ept-", "single hyphens"),
        ("缺页", "slug '缺页': use lowercase ASCII letters, digits and single hyphens"),
        ("ept.md", "slug 'ept.md': give it without .md (e.g. 'ept')"),
        ("mmu/ept", "pages are flat here, no folders"),
        ("index", "slug 'index' is reserved"),
        ("404", "is reserved"),
        ("assets", "is reserved"),
        ("search", "is reserved"),
        ("pdf", "is reserved"),
        ("en", "is reserved"),
    ],
)
def test_rejects_bad_slugs(repo: Path, slug: str, message: str) -> None:
    before = snapshot(repo)
    result = new_note(repo, slug, "--title-zh", "甲", "--title-en", "A")
    assert result.returncode == 2
    assert result.stderr.startswith("new_note: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title-zh", " ", "--title-en", "A"], "--title-zh: give a one-line, non-empty title"),
        (["--title-zh", "甲", "--title-en", "A", "--after", "nowhere"], "--after nowhere: not in the nav"),
    ],
)
def test_rejects_bad_titles_and_after(repo: Path, args: list[str], message: str) -> None:
    before = snapshot(repo)
    result = new_note(repo, "fine-slug", *args)
    assert result.returncode == 2 and message in result.stderr
    assert snapshot(repo) == before


def test_removes_its_pages_when_the_nav_cannot_be_written(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_script()
    before = snapshot(repo)

    def fail(path: Path, text: str) -> None:
        raise OSError(f"{path}: read-only file system")

    monkeypatch.setattr(module, "replace_text", fail)
    with pytest.raises(OSError):
        module.create(repo, "ept-violation", {"zh": "甲", "en": "A"})
    assert snapshot(repo) == before


def test_refuses_a_config_without_nav(repo: Path) -> None:
    config = repo / NAV_FILE
    config.write_text(config.read_text(encoding="utf-8").split("\nnav:")[0] + "\n", encoding="utf-8")
    before = snapshot(repo)
    result = new_note(repo, "ept-violation", "--title-zh", "甲", "--title-en", "A")
    assert result.returncode == 1 and "no top-level `nav:`" in result.stderr
    assert "mkdocs.yml, mkdocs.base.yml" in result.stderr  # the INHERIT chain it followed
    assert snapshot(repo) == before


def test_refuses_when_a_language_has_its_own_nav(repo: Path) -> None:
    """A page added to the shared nav only would be missing from the language that overrides it."""
    with (repo / "mkdocs.en.yml").open("a", encoding="utf-8") as config:
        config.write("\nnav:\n  - index.md\n")
    before = snapshot(repo)
    result = new_note(repo, "ept-violation", "--title-zh", "甲", "--title-en", "A")
    assert result.returncode == 1
    assert result.stderr == (
        "new_note: mkdocs.en.yml has its own nav: add ept-violation.md there by hand, then rerun\n"
    )
    assert snapshot(repo) == before


def test_edits_the_nav_where_inherit_leads(repo: Path) -> None:
    """With the nav in mkdocs.yml and English inheriting it, mkdocs.yml is the file edited."""
    base = (repo / NAV_FILE).read_text(encoding="utf-8")
    head, nav = base.split("\nnav:")
    (repo / NAV_FILE).write_text(head + "\n", encoding="utf-8")
    with (repo / "mkdocs.yml").open("a", encoding="utf-8") as config:
        config.write("\nnav:" + nav)
    english = (repo / "mkdocs.en.yml").read_text(encoding="utf-8")
    (repo / "mkdocs.en.yml").write_text(english.replace("INHERIT: mkdocs.base.yml", "INHERIT: mkdocs.yml"), "utf-8")
    result = new_note(repo, "ept-violation", "--title-zh", "甲", "--title-en", "A", "--after", "run")
    assert result.returncode == 0, result.stderr
    assert "added ept-violation.md to nav in mkdocs.yml;" in result.stdout
    lines = (repo / "mkdocs.yml").read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("  - run.md") + 1] == "  - ept-violation.md"
    assert (repo / NAV_FILE).read_text(encoding="utf-8") == head + "\n"


def test_add_to_nav_keeps_comments_and_titles() -> None:
    module = load_script()
    text = "site_name: x\n# Page tree\nnav:  # reading order\n  - index.md\n  - Run: run.md  # the loop\n\nextra: {}\n"
    assert module.add_to_nav(text, "new.md", None) == text.replace("the loop\n", "the loop\n  - new.md\n")
    assert module.add_to_nav(text, "new.md", "index") == text.replace("  - index.md\n", "  - index.md\n  - new.md\n")
