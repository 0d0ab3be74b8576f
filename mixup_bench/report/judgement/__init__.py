"""Judgement: the claims files (claims/*.yaml) and their schema, the verdict rules, and
which runs each claim describes.

Reads groups and pairs from report/runs; knows nothing of Markdown or figures.
"""
