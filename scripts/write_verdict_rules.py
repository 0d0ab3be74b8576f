"""Write docs/verdicts.md from the verdict rules REPORT.md prints (judging.rules_page)."""

from __future__ import annotations

from pathlib import Path

from mixup_bench.report.judgement.judging import rules_page

PAGE = Path(__file__).resolve().parent.parent / "docs" / "verdicts.md"

if __name__ == "__main__":
    PAGE.write_text(rules_page(), encoding="utf-8")
    print(f"wrote {PAGE}")
