"""Imported at start-up by every Python process whose PYTHONPATH holds tests/fault_site:
with FAULT set, arms tests/faults.py's fault in it (the CLI and the jobs it starts)."""

import os

if os.environ.get("FAULT"):
    from tests.faults import install

    install(os.environ["FAULT"])
