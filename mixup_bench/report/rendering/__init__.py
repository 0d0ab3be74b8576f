"""Rendering: the report model (Report, GroupResult), labels that name only what varies,
REPORT.md and the figures.

The last stage of the report: reads runs and judgements, decides nothing.
"""
