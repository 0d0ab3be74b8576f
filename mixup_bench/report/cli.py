"""`mixup-bench report DIR... [--out OUT] [--claims YAML]`: the command line of the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import build_report, write_report
from .judgement.verdicts import load_claims


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixup-bench report",
        description="Tables, claim verdicts and figures from mixup-bench run directories.",
    )
    parser.add_argument(
        "directories",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="searched recursively for run directories",
    )
    parser.add_argument(
        "--out", type=Path, help="where to write REPORT.md and the rest (default: the first DIR)"
    )
    parser.add_argument(
        "--claims",
        type=Path,
        action="append",
        default=[],
        metavar="YAML",
        help="an extra claims file, in the schema of "
             "mixup_bench/report/judgement/claims/*.yaml (repeatable)",
    )
    parser.add_argument(
        "--svg", action="store_true", help="also write each figure as SVG, beside its PNG"
    )
    return parser


def main(argv: list[str]) -> int:
    """Entry point for `mixup-bench report`; returns the exit status."""
    arguments = build_parser().parse_args(argv)
    missing = [str(path) for path in arguments.directories if not path.is_dir()]
    if missing:
        print(f"mixup-bench report: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        claims = load_claims(arguments.claims)
    except (OSError, ValueError, TypeError) as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"mixup-bench report: bad claims: {message}", file=sys.stderr)
        return 2
    report = build_report(arguments.directories, claims)
    if not report.runs:
        searched = ", ".join(map(str, arguments.directories))
        print(f"mixup-bench report: no run directories under {searched}", file=sys.stderr)
        return 1
    out = arguments.out or arguments.directories[0]
    write_report(report, out, svg=arguments.svg)
    print(
        f"{out / 'REPORT.md'}: {len(report.runs)} runs, {len(report.groups)} groups, "
        f"{len(report.unfinished)} not finished, {len(report.claims)} claims"
    )
    if all(run.status == "unreadable" for run in report.runs):  # written, but nothing in it
        print(f"mixup-bench report: none of the {len(report.runs)} run directories could be "
              f"read; {out / 'REPORT.md'} lists why", file=sys.stderr)
        return 1
    return 0
