"""Runs: run directories read (never raising on a broken one), grouped into seeds of one
condition, paired by seed, and selected by the keys a claim names.

The first stage of the report: it imports only the statistics (report/stats.py) and
the package's leaves.
"""
