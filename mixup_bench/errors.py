"""Errors that stop a run before any work, each with one line for the user.

The CLI prints `mixup-bench: error: <message>` and exits non-zero for these,
without a traceback; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: config values, data files, paths."""

    exit_code = 2


class ConfigError(UserError):
    """A config key has a value outside what is allowed."""


class DataError(UserError):
    """The dataset is missing, corrupt, or not what it claims to be."""


class OutputError(UserError):
    """The run directory cannot be written (permissions, full disk)."""


class CheckpointError(UserError):
    """checkpoints/last.pt cannot be resumed from: unreadable, or it needs code to load."""
