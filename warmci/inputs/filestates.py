"""This process's view of file contents: the persisted hash cache and the files of the task being checked.

doit's file check (warmci.doitapi.content_checker), the job's whole key
(warmci.inputs.key) and warmci.inputs.why all ask what a file's content
is; they ask here, so a file is hashed only when its stat signature says it
may have changed (warmci.inputs.contenthash), and asked again in the same
run it costs a dict lookup. doit's main process saves what it learned at
the end of the run.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from warmci.context import RUNNER_ROOT, Context
from warmci.inputs.contenthash import ContentHashes

MISSING = "missing"


class FileStates:
    def __init__(self, cache_dir: str, roots: Iterable[str]) -> None:
        self.hashes = ContentHashes(cache_dir, roots)

    def identity(self, path: str, st: os.stat_result | None = None) -> str:
        """The file's content (+x when executable) now; MISSING when it cannot be read."""
        try:
            return self.hashes.identity(path, st)
        except OSError:
            return MISSING

    def save(self) -> None:
        try:
            self.hashes.save()
        except OSError:
            pass  # a cache: the next run hashes again


_states: dict[str, FileStates] = {}


def of(ctx: Context) -> FileStates:
    """The FileStates of this process for a run's state dir (created on first use)."""
    if ctx.state not in _states:
        _states[ctx.state] = FileStates(ctx.hash_cache, (ctx.target, ctx.state, str(RUNNER_ROOT)))
    return _states[ctx.state]


def save_all() -> None:
    for states in _states.values():
        states.save()
