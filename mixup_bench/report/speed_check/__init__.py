"""`mixup-bench speed-check`: runs that differ only in speed switches, paired by seed
(check.py), the bench's quickest setting (best.py), and speed_check.md (markdown.py).

Reads run directories through report/runs; apart from the claims' judgement.
"""
