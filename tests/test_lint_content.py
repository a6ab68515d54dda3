"""The content rules and their CLI: each rule fails its fixture and passes the other.

Fixtures are small zh/en trees under tests/fixtures/lint/<rule>/{fail,pass}/;
the rules run on them with the site's own configuration (tags, glossary).
The SEED-1 fixture is made at run time from the seed post, so no copied text
is ever committed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kvmdocs import rules
from kvmdocs.config import settings
from kvmdocs.paths import LANGUAGES, ROOT, SEED_OVERLAP

FIXTURES = Path(__file__).parent / "fixtures" / "lint"
LINT = ROOT / "scripts" / "lint_content.py"
SEED = SEED_OVERLAP.parent.parent / "seed" / "kvm-post-2015.txt"
ZH, EN = LANGUAGES

# (file inside the fixture, line, rule, warning, message) that each failing fixture must give, exactly.
EXPECTED: dict[str, list[tuple[str, int, str, bool, str]]] = {
    "head-id-1": [
        ("en/page.md", 3, "HEAD-ID-1", False, "heading 'No id' has no { #id }"),
        ("en/page.md", 5, "HEAD-ID-1", False, "id #概述 is not lowercase ASCII"),
        ("en/page.md", 9, "HEAD-ID-1", False, "id #dup already used on line 7"),
        ("en/page.md", 11, "HEAD-ID-1", False, "id #Upper is not lowercase ASCII"),
        ("zh/page.md", 3, "HEAD-ID-1", False, "heading '没有 id' has no { #id }"),
        ("zh/page.md", 5, "HEAD-ID-1", False, "id #概述 is not lowercase ASCII"),
        ("zh/page.md", 9, "HEAD-ID-1", False, "id #dup already used on line 7"),
        ("zh/page.md", 11, "HEAD-ID-1", False, "id #Upper is not lowercase ASCII"),
    ],
    "src-1": [
        (
            f"{code}/page.md",
            line,
            "SRC-1",
            False,
            message,
        )
        for code in ("en", "zh")
        for line, message in (
            (
                3,
                "hand-typed kernel link 'https://elixir.bootlin.com/linux/latest/source/virt/kvm/kvm_main.c#L2846':"
                " write it as src:path#Lnn",
            ),
            (
                5,
                "hand-typed kernel link 'https://github.com/torvalds/linux/blob/master/virt/kvm/kvm_main.c':"
                " write it as src:path#Lnn",
            ),
            (7, "unknown source scheme 'srcc' in 'srcc:virt/kvm/kvm_main.c#L2846' (configured: now, src)"),
            (9, "malformed source link 'src:virt/kvm/../kvm_main.c#L1': expected src:path/to/file.c#L123"),
            (11, "source link 'src:virt/kvm/kvm_main.c#L20-L10' ends before it starts"),
        )
    ],
    "html-1": [
        (f"{code}/page.md", line, "HTML-1", False, f"{what} is not allowed in Markdown")
        for code in ("en", "zh")
        for line, what in (
            (3, "raw <script>"),
            (5, "raw <iframe>"),
            (7, "inline event handler"),
            (9, "javascript: URL"),
        )
    ],
    "term-1": [
        (
            f"{code}/page.md",
            3,
            "TERM-1",
            False,
            f"VMPSRT looks like a VMX instruction but has no glossary entry (includes/{code}/abbr.md)",
        )
        for code in ("en", "zh")
    ],
    "term-2": [
        ("zh/page.md", 3, "TERM-2", False, "put spaces around VMCS in 'VMCS字', or it gets no tooltip"),
        ("zh/page.md", 3, "TERM-2", False, "put spaces around VMXON in '行VMXON', or it gets no tooltip"),
    ],
    "zh-space-1": [
        ("zh/page.md", 3, "ZH-SPACE-1", True, "put a space between Chinese and Latin text in '在x86架构'"),
        ("zh/page.md", 4, "ZH-SPACE-1", True, "put a space between Chinese and Latin text in '调用`…`时模'"),
    ],
    "gap-1": [
        ("en/page.md", 5, "GAP-1", False, "the translation-pending marker must come before the first ## section"),
    ],
    "parity-1": [
        ("zh/only-zh.md", 1, "PARITY-1", False, "page exists in zh but not in en"),
    ],
    "parity-2": [
        ("en/page.md", 5, "PARITY-2", False, "heading id #more is missing from the zh page"),
        ("zh/page.md", 5, "PARITY-2", False, "heading id #details is missing from the en page"),
    ],
    "parity-3": [
        ("zh/page.md", 1, "PARITY-3", True, "code blocks differ between zh and en (1 vs 0)"),
        (
            "zh/page.md",
            1,
            "PARITY-3",
            True,
            "links differ between zh and en (only zh: ['init.md#overview'], only en: [])",
        ),
    ],
    "allow-1": [
        ("parity-allow.txt", 2, "ALLOW-1", False, "expected 'page.md links|code # reason', got 'page.md'"),
        ("parity-allow.txt", 3, "ALLOW-1", False, "page.md code: say why after '#'"),
        (
            "parity-allow.txt",
            4,
            "ALLOW-1",
            False,
            "expected 'page.md links|code # reason', got 'page.md images  # not a kind'",
        ),
        ("parity-allow.txt", 5, "ALLOW-1", False, "no page nowhere.md in docs/zh or docs/en"),
        ("parity-allow.txt", 6, "ALLOW-1", False, "same.md links no longer differ: remove this line"),
        # the entry on line 1 silences the links; the code difference is not listed
        ("zh/page.md", 1, "PARITY-3", True, "code blocks differ between zh and en (1 vs 0)"),
    ],
}


def known_terms(lang: rules.Language) -> set[str]:
    return set(rules.defined_terms(lang)) | set(settings(lang).instructions)


# The rule function behind each per-file rule, called the way check_page calls it.
PER_FILE: dict[str, Callable[[Path, str, rules.Language], list[rules.Finding]]] = {
    "HEAD-ID-1": lambda path, text, lang: rules.check_heading_ids(path, text),
    "SRC-1": lambda path, text, lang: rules.check_source_links(path, text, settings(lang).tags),
    "HTML-1": lambda path, text, lang: rules.check_raw_html(path, text),
    "TERM-1": lambda path, text, lang: rules.check_mnemonics(path, text, lang, known_terms(lang)),
    "TERM-2": lambda path, text, lang: rules.check_mnemonics(path, text, lang, known_terms(lang)),
    "GAP-1": lambda path, text, lang: rules.check_gap_marker(path, text),
    "ZH-SPACE-1": lambda path, text, lang: rules.check_zh_spacing(path, text, known_terms(lang)) if lang is ZH else [],
}


def as_tuples(findings: list[rules.Finding], root: Path) -> list[tuple[str, int, str, bool, str]]:
    """Findings with paths made relative to the fixture root, for exact comparison."""
    prefix = rules.rel(root) + "/"
    return [(f.path.removeprefix(prefix), f.line, f.rule, f.warning, f.message) for f in findings]


def lint(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LINT), *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_every_rule_has_a_fixture_pair() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)
    for case in EXPECTED:
        assert (FIXTURES / case / "fail").is_dir() and (FIXTURES / case / "pass").is_dir()


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_failing_fixture_gives_exact_findings(case: str) -> None:
    root = FIXTURES / case / "fail"
    assert as_tuples(rules.check_all(seed=False, docs=root), root) == EXPECTED[case]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_passing_fixture_is_clean(case: str) -> None:
    assert rules.check_all(seed=False, docs=FIXTURES / case / "pass") == []


@pytest.mark.parametrize("rule", sorted(PER_FILE))
def test_per_file_rule_functions(rule: str) -> None:
    """The rule function alone finds exactly its own findings in the failing fixture, none in the passing one."""
    case = rule.lower()
    for kind in ("fail", "pass"):
        root = FIXTURES / case / kind
        found = []
        for lang in (ZH, EN):
            for path in sorted((root / lang.code).glob("*.md")):
                found += [f for f in PER_FILE[rule](path, path.read_text(encoding="utf-8"), lang) if f.rule == rule]
        expected = [e for e in EXPECTED[case] if e[2] == rule] if kind == "fail" else []
        assert sorted(as_tuples(found, root)) == sorted(expected), f"{rule} on {kind}"


def test_parity_allow_set_silences_parity_3_only() -> None:
    zh, en = rules.languages(FIXTURES / "parity-3" / "fail")
    assert {f.rule for f in rules.check_parity(zh, en)} == {"PARITY-3"}
    assert rules.check_parity(zh, en, {("page.md", "links"), ("page.md", "code")}) == []
    zh, en = rules.languages(FIXTURES / "parity-2" / "fail")
    assert len(rules.check_parity(zh, en, {("page.md", "links"), ("page.md", "code")})) == 2


def test_gap_marker_is_found_only_at_the_top() -> None:
    top = '# T\n\n!!! warning translation-pending "Not yet translated"\n    x\n\n## A { #a }\n'
    assert rules.gap_marker(top) == 3
    assert rules.gap_marker('# T\n\n!!! translation-pending "x"\n') == 3
    assert rules.gap_marker("# T\n\n## A { #a }\n\n!!! note translation-pending\n") is None
    assert rules.gap_marker('# T\n\n```\n!!! note translation-pending "x"\n```\n') is None
    assert rules.gap_marker('# T\n\n!!! note "translation-pending"\n') is None  # a title, not a class


# --- SEED-1: the fixture is made from the seed at run time ---------------------------------


def seed_sentence() -> str:
    """A run of Chinese from the 2015 post, long enough for the overlap checker."""
    for line in SEED.read_text(encoding="utf-8").splitlines():
        run = max(re.findall(r"[\u4e00-\u9fff]+", line), key=len, default="")
        if len(run) >= 16:
            return run
    raise AssertionError("no long Chinese run in the seed")


@pytest.fixture
def seed_tree(tmp_path: Path) -> Path:
    if not SEED_OVERLAP.is_file() or not SEED.is_file():
        pytest.fail(f"the seed checker and post must be at {SEED_OVERLAP.parent.parent} (shared/)")
    shutil.copytree(FIXTURES / "term-2" / "pass", tmp_path / "docs")
    page = tmp_path / "docs" / "zh" / "page.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n" + seed_sentence() + "。\n", encoding="utf-8")
    return tmp_path / "docs"


def test_seed_1_fails_on_copied_text(seed_tree: Path) -> None:
    findings = rules.check_all(seed=True, docs=seed_tree)
    assert [(f.path, f.line, f.rule, f.warning) for f in findings] == [
        ((seed_tree / "zh" / "page.md").as_posix(), 5, "SEED-1", False)
    ]
    assert "copied from the 2015 post" in findings[0].message
    result = lint("--docs", seed_tree)
    assert result.returncode == 1 and "SEED-1 error" in result.stdout
    assert lint("--docs", seed_tree, "--no-seed").returncode == 0


def test_seed_1_passes_on_own_words() -> None:
    assert rules.check_seed_overlap(FIXTURES / "term-2" / "pass") == []


# --- the CLI -----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_cli_prints_findings_and_exits_by_errors(case: str) -> None:
    root = FIXTURES / case / "fail"
    result = lint("--no-seed", "--docs", root)
    findings = rules.check_all(seed=False, docs=root)
    assert result.stdout.splitlines() == [f"{f} (CONTRIBUTING.md#{f.rule.lower()})" for f in findings]
    assert result.returncode == (1 if any(not f.warning for f in findings) else 0)
    assert "Traceback" not in result.stderr
    clean = lint("--no-seed", "--docs", FIXTURES / case / "pass")
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "")


def test_cli_text_line_shape() -> None:
    result = lint("--no-seed", "--docs", FIXTURES / "gap-1" / "fail")
    assert result.stdout == (
        "tests/fixtures/lint/gap-1/fail/en/page.md:5: GAP-1 error: the translation-pending marker must come "
        "before the first ## section (CONTRIBUTING.md#gap-1)\n"
    )
    assert result.stderr == "lint_content: 1 error(s), 0 warning(s)\n"


def test_cli_github_format() -> None:
    result = lint("--no-seed", "--format", "github", "--docs", FIXTURES / "parity-3" / "fail")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "::warning file=tests/fixtures/lint/parity-3/fail/zh/page.md,line=1::PARITY-3 code blocks differ "
        "between zh and en (1 vs 0) (CONTRIBUTING.md#parity-3)",
        "::warning file=tests/fixtures/lint/parity-3/fail/zh/page.md,line=1::PARITY-3 links differ between zh "
        "and en (only zh: ['init.md#overview'], only en: []) (CONTRIBUTING.md#parity-3)",
    ]
    result = lint("--no-seed", "--format", "github", "--docs", FIXTURES / "term-1" / "fail")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(
        "::error file=tests/fixtures/lint/term-1/fail/en/page.md,line=3::TERM-1 VMPSRT looks like"
    )


def test_cli_restricts_to_given_paths_and_their_twins() -> None:
    root = FIXTURES / "parity-2" / "fail"
    result = lint("--no-seed", "--docs", root, root / "zh" / "page.md")
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "tests/fixtures/lint/parity-2/fail/en/page.md",
        "tests/fixtures/lint/parity-2/fail/zh/page.md",
    ]
    root = FIXTURES / "parity-1" / "fail"
    result = lint("--no-seed", "--docs", root, root / "zh" / "page.md")
    assert (result.returncode, result.stdout) == (0, "")
    result = lint("--no-seed", "--docs", root, root / "zh")
    assert result.returncode == 1 and "PARITY-1" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-seed", "no/such/page.md"], "no/such/page.md: no such file or directory"),
        (["--no-seed", "README.md"], "README.md: not under docs/"),
        (["--no-seed", "--docs", "tests"], "tests: expected folders zh, en inside"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_cli_usage_errors_exit_2_in_one_line(args: list[str], message: str) -> None:
    result = lint(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_markdown_lint_passes_on_the_pages() -> None:
    """The Markdown lint pre-commit runs, with the site's settings (.pymarkdown.yml)."""
    pymarkdown = Path(sys.executable).parent / "pymarkdown"
    if not pymarkdown.exists():
        pytest.fail("pymarkdown is missing: pip install pymarkdownlnt (see requirements)")
    command = [str(pymarkdown), "--strict-config", "--config", ".pymarkdown.yml", "scan", "-r", "docs"]
    command += ["CONTRIBUTING.md"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def rule_ids_in_rules_module() -> set[str]:
    """Every rule ID that kvmdocs/rules.py can put in a finding."""
    source = (ROOT / "kvmdocs" / "rules.py").read_text(encoding="utf-8")
    return set(re.findall(r'"([A-Z]+(?:-[A-Z]+)*-\d+)"', source))


def test_every_rule_is_explained_under_its_anchor() -> None:
    """CONTRIBUTING.md (GitHub slugs ### HEAD-ID-1 to #head-id-1) and both site pages explain every rule."""
    ids = rule_ids_in_rules_module()
    assert ids >= {"HEAD-ID-1", "SRC-1", "HTML-1", "TERM-1", "TERM-2", "PARITY-1", "PARITY-3", "GAP-1", "SEED-1"}
    guide = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^### ([A-Z][A-Z0-9-]+)$", guide, re.M)) == ids
    for lang in LANGUAGES:
        page = (lang.docs / "contributing.md").read_text(encoding="utf-8")
        found = re.findall(r"^### ([A-Z][A-Z0-9-]+) \{ #([a-z0-9-]+) \}$", page, re.M)
        assert {rule for rule, _ in found} == ids and all(anchor == rule.lower() for rule, anchor in found)
    assert {f"CONTRIBUTING.md#{rule.lower()}" for rule in ids} == {
        rules.Finding("x", 1, rule, "m").guide for rule in ids
    }


def test_contributing_md_follows_the_site_page() -> None:
    """The repository guide and the English site page have the same sections, in the same order."""
    guide = rules.headings((ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"))
    page = rules.headings((EN.docs / "contributing.md").read_text(encoding="utf-8"))
    assert [(h.level, h.title) for h in guide] == [(h.level, h.title) for h in page]
    assert all(h.id is None for h in guide), "GitHub shows { #id } literally: CONTRIBUTING.md uses its own slugs"
