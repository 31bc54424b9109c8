"""The result store seen from the run (doit's main process): restores shown, totals kept, size held.

Workers restore and record (warmci.execute.reuse) and put what they did in
their status files; here the reporter asks whether a job's result might be
restored (to hold back its START line in ci.log), says where a restored
result came from, and at the end adds the run's totals to results.json and
the store's statistics, and prunes the store to its size limit.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from warmci import doitapi
from warmci.context import Context, host_name
from warmci.inputs import key
from warmci.store import api
from warmci.store.api import StoreError
from warmci.store.local import LocalStore


class RunStore:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._store: LocalStore | None = None

    @property
    def store(self) -> LocalStore | None:
        """This host's store (the bucket is the workers' to ask): what the run counts and prunes."""
        if self._store is None and self.ctx.store:
            try:
                self._store = LocalStore(self.ctx.store)
            except (StoreError, OSError):
                return None
        return self._store

    def may_restore(self, task: Any) -> bool:
        """Whether the worker will find a recorded success of the task's key (one stat, no reading)."""
        meta = doitapi.task_meta(task)
        key = meta.get("key")
        if not key or not self.ctx.store or meta.get("always") or meta.get("restorable") is False:
            return False
        if doitapi.always_execute():
            return False
        return os.path.exists(os.path.join(self.ctx.store, *api.entry_name(key).split("/")))

    def restorable(self, task: Any, tasks: Mapping[str, Any]) -> str | None:
        """Where the task's result would be restored from (`origin`) if it were dispatched now."""
        key.stamp(self.ctx)(task, tasks)
        store = self.store
        if store is None or not self.may_restore(task):
            return None
        job_key = doitapi.task_meta(task)["key"]
        try:
            entry = store.get(job_key)
            flaky = api.is_flaky(store.outcomes(job_key))
        except (StoreError, OSError):
            return None
        if entry is None or flaky:
            return None
        return origin({"restored_from": {"run": entry.run.id, "sha": entry.run.sha, "branch": entry.run.branch}})

    def finish(self, jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The run's totals (results.json `store`); recorded in the store, which is pruned if it grew."""
        if not self.ctx.store:
            return {"dir": None}
        counts = {"lookups": 0, "hits": 0, "remote_hits": 0, "restored_bytes": 0, "stored": 0, "stored_bytes": 0,
                  "corrupt": 0}
        for job in jobs.values():
            st = job.get("store") or {}
            counts["lookups"] += bool(st.get("lookup"))
            counts["hits"] += bool(st.get("hit"))
            counts["remote_hits"] += bool(st.get("remote_hit"))
            counts["restored_bytes"] += int(st.get("restored_bytes") or 0)
            counts["stored"] += bool(st.get("stored"))
            counts["stored_bytes"] += int(st.get("stored_bytes") or 0)
            counts["corrupt"] += int(st.get("corrupt") or 0)
        out: dict[str, Any] = {"dir": self.ctx.store, "trust": self.ctx.trust,
                               "remote": self.ctx.remote.describe() if self.ctx.remote else None,
                               "max_bytes": self.ctx.store_max, **counts}
        store = self.store
        if store is None:
            return out
        try:
            store.add_stats(self.ctx.run_id, host_name(), {k: counts[k] for k in ("lookups", "hits", "remote_hits",
                                                                     "restored_bytes", "stored_bytes", "corrupt")})
            if counts["stored"] and store.size() > self.ctx.store_max:
                out["pruned"] = store.prune(self.ctx.store_max)
        except (StoreError, OSError) as exc:
            out["error"] = str(exc)
        return out


def origin(job: Mapping[str, Any]) -> str:
    """Where a restored result came from, for the terminal and ci.log."""
    src = job.get("restored_from") or {}
    sha = (src.get("sha") or "")[:10] or "an unknown commit"
    branch = f", branch {src['branch']}" if src.get("branch") else ""
    return f"passed in run {src.get('run')} at {sha}{branch}"


def flaky_text(outcomes: list[Mapping[str, Any]]) -> str:
    seen = ", ".join(f"{o.get('outcome')} in {o.get('run')}" for o in outcomes[-4:])
    return f"passed and failed with these very inputs ({seen}); its status here is its own"
