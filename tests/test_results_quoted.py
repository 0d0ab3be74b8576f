"""What the README quotes from results/ is what results/ holds: the worked example's rows
of the claims table and the claim count, against results/quick/REPORT.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def claim_rows(markdown: str) -> dict[str, list[str]]:
    """The claims table's rows (claim id -> cells), from the first table whose header
    starts with `| claim | verdict |`."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in markdown.splitlines():
        if line.startswith("| claim | verdict |"):
            inside = True
        elif inside and not line.startswith("|"):
            break
        elif inside and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def test_the_readme_quotes_the_quick_reports_claims_table_exactly():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    report = (ROOT / "results" / "quick" / "REPORT.md").read_text(encoding="utf-8")
    quoted, reported = claim_rows(readme), claim_rows(report)
    assert len(quoted) >= 4 and set(quoted) <= set(reported)
    for claim_id, cells in quoted.items():  # the README leaves out the Holm-adjusted column
        assert cells == reported[claim_id][:2] + reported[claim_id][3:], claim_id
    [count] = re.findall(r"(\d+) of its (\d+) claims", readme)
    assert (int(count[0]), int(count[1])) == (len(quoted), len(reported))


def method_rows(markdown: str) -> dict[str, list[str]]:
    """The README's method table: `aug=` name -> cells."""
    rows = {}
    for line in markdown.splitlines():
        found = re.match(r"\| `([a-z_]+)` \|", line)
        if found and line.count("|") == 7:
            rows[found.group(1)] = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return rows


def test_the_readme_method_table_lists_every_method_with_the_measured_step_cost():
    import json

    from mixup_bench.mixing import mixer_names

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = method_rows(readme)
    assert set(rows) == set(mixer_names())
    bench = json.loads((ROOT / "results/perf/cpu/methods/bench.json").read_text())
    overhead = {row["aug"]: row["time_percent"] for row in bench["summary"]["mixing_overhead"]}
    assert set(overhead) == set(mixer_names()) - {"none"}
    for aug in ("attentivemix", "puzzlemix"):  # the costs that stand out of the noise
        assert rows[aug][-1] == f"+{overhead[aug]:.0f}%"
    noise = [value for aug, value in overhead.items() if aug not in ("attentivemix", "puzzlemix")]
    assert f"From {min(noise):.0f}% to +{max(noise):.0f}%" in readme


def test_the_readme_method_table_quotes_the_quiet_mixing_step_runs():
    """The mixer-alone column is the range, over the three runs, of each method's per-batch
    milliseconds in results/perf/cpu/mixing_step_quiet_2026-12-07.md, to one decimal."""
    rows = method_rows((ROOT / "README.md").read_text(encoding="utf-8"))
    measured = (ROOT / "results/perf/cpu/mixing_step_quiet_2026-12-07.md").read_text()
    checked = 0
    for aug, per_batch in re.findall(r"^\| `([a-z_]+)` \| ([\d. /]+) \|", measured, re.M):
        values = [float(value) for value in per_batch.split("/")]
        if aug != "none":
            assert rows[aug][4] == f"{min(values):.1f}-{max(values):.1f}", aug
            checked += 1
    assert checked == 8
