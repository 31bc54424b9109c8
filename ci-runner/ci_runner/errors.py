"""The service's user-facing errors: each names what was wrong and what to do."""
from __future__ import annotations


class RunnerError(Exception):
    """An error an operator can fix (a bad config value, an unknown run id)."""


class ConfigError(RunnerError):
    """A bad configuration value, named by its file and dotted key (or its environment variable)."""

    def __init__(self, where: str, key: str, problem: str) -> None:
        self.where, self.key, self.problem = where, key, problem
        super().__init__(f"{where}: {key}: {problem}")
