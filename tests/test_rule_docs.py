"""rules/ holds one page per rule, generated from the rule classes, and must stay in sync."""

from gradlint.report.rule_pages import RULES_DIR, pages


def test_rules_folder_in_sync():
    expected = pages()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in RULES_DIR.glob("*.md")}
    assert set(on_disk) == set(expected), "run: python -m gradlint.report.rule_pages"
    for name, text in expected.items():
        assert on_disk[name] == text, f"rules/{name} is stale; run: python -m gradlint.report.rule_pages"


def test_pages_have_the_documented_sections():
    for name, text in pages().items():
        if name == "README.md":
            continue
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## How to fix",
                        "## References"):
            assert section in text, f"{name} lacks {section}"
