"""A job's results kept by content: restored instead of run, recorded after it passed (warmci.store).

In the worker, around the job. Its whole key (warmci.inputs.key, computed in
doit's main process) names everything the job depended on; if the store has
a success of that key, its outputs are put back (verified by hash) and the
job is `restored`; otherwise it runs and, when it passes, its outputs and
log are stored under the key. Every outcome of the key is remembered, so a
key that both passed and failed is known to be flaky: a flaky key is never
restored (its pass proves nothing), and a failure is never an entry.

A job that builds a Python environment keeps it per key (and checkout,
since an editable install names it) in STATE/envs/; restoring it is
pointing the state dir's venv at the kept one. A job whose environment
lives in the checkout (node_modules: its task's meta lists `env_dirs`)
has those directories moved aside into STATE/envs/ when another key's
install replaces them, and moved back when its key returns. The last few
stay, per kind of environment.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterable
from typing import Any

from warmci import statefile
from warmci.context import Context, host_name
from warmci.inputs import filestates
from warmci.inputs.uptodate import VenvIntact
from warmci.pipeline.model import Job
from warmci.status import Status
from warmci.store import api, replay, shared
from warmci.store.api import RunRef, StoreError

KEEP_ENVS = 3  # kept environments per Python version, besides the one in use
# Outcomes worth remembering for flakiness: the job's own verdict (not a cancel, not a skip).
REMEMBERED = (Status.PASSED, Status.FAILED, Status.TIMED_OUT, Status.ERRORED)


class Reuse:
    def __init__(self, ctx: Context, job: Job, meta: dict[str, Any]) -> None:
        self.ctx, self.job = ctx, job
        self.key: str | None = meta.get("key")
        self.parts: dict[str, str] = dict(meta.get("key_parts") or {})
        self.always = bool(meta.get("always"))
        self.restorable = meta.get("restorable", True) is not False
        self.env_dirs: list[str] = list(meta.get("env_dirs") or ())  # relative to the target
        self.roots = {"target": ctx.target, "state": ctx.state}
        self.stats: dict[str, Any] = {"lookup": False, "hit": False, "restored_bytes": 0, "stored": False,
                                      "stored_bytes": 0, "corrupt": 0}
        self._notes: list[str] = []  # what the store had to say (a corrupt blob, a flaky key, ...)
        self.store: api.Store | None = None
        if ctx.store and self.key:
            try:
                self.store = shared.open_store(ctx.store, ctx.trust, ctx.remote)
            except (StoreError, OSError) as exc:
                self._notes.append(f"result store unusable, results are not kept: {exc}")

    @property
    def notes(self) -> list[str]:
        """What the store had to say, the shared bucket's words included (a write it could not make)."""
        return self._notes + list(getattr(self.store, "notes", []))

    @property
    def on(self) -> bool:
        return self.store is not None and self.key is not None

    # -- before the job ----------------------------------------------------
    def restore(self, forced: bool) -> dict[str, Any] | None:
        """The status of a restored job, or None: then it runs (and `notes` say why, when not a plain miss)."""
        if self.store is None or self.key is None:
            return None
        if not self.restorable:
            return None
        if forced or self.always:
            return None  # asked to run (doit -a), or it always runs
        self.stats["lookup"] = True
        outcomes = self.store.outcomes(self.key)
        if api.is_flaky(outcomes):
            self._notes.append("flaky with these very inputs (it passed and failed before): it runs")
            return None
        try:
            entry = self.store.get(self.key)
        except StoreError as exc:
            self._notes.append(f"{exc}: it runs")
            return None
        if entry is None:
            return None
        env = self.kept_env() if self.job.builds_venv else None
        if env is not None and not VenvIntact(env, self.ctx.venv_check_file(self.job.python or ""))():
            self._notes.append("a success is recorded, but its environment is not kept here (or is broken): it runs")
            return None
        if self.env_dirs and not self.tree_back():
            self._notes.append("a success is recorded, but its environment is not kept here: it runs")
            return None
        try:
            done = replay.restore(self.store, entry, self.roots, filestates.of(self.ctx).hashes)
        except StoreError as exc:
            self.stats["corrupt"] += isinstance(exc, (api.BlobCorrupt, api.BlobMissing))
            self._notes.append(f"could not restore its recorded result ({exc}): it runs")
            return None
        if env is not None:
            self.activate_env(env)
        source = getattr(self.store, "source", None) or "local"
        self.stats.update(hit=True, restored_bytes=done.bytes, remote_hit=source == "remote")
        self._append_log(entry)
        return {"status": Status.RESTORED, "key": self.key, "exit_code": None,
                "restored_from": {"run": entry.run.id, "sha": entry.run.sha, "branch": entry.run.branch,
                                  "store": source,
                                  "host": entry.run.host, "end": entry.run.end, "duration": entry.duration},
                "restored": {"files": done.files, "in_place": done.kept, "bytes": done.bytes}}

    def _append_log(self, entry: api.Entry) -> None:
        log = self.ctx.log_file(self.job.name)
        with open(log, "a") as fh:
            fh.write(f"[warmci] restored: key {self.key} passed in run {entry.run.id} (commit {entry.run.sha}, "
                     f"branch {entry.run.branch}, host {entry.run.host}); its outputs were put back, verified\n")
        if entry.log is None or self.store is None:
            return
        old = f"{log}.restored"
        try:
            self.store.get_blob(entry.log, old)
            with open(old, "rb") as src, open(log, "ab") as dst:
                dst.write(b"[warmci] --- its log in that run ---\n")
                shutil.copyfileobj(src, dst)
        except (StoreError, OSError) as exc:
            with open(log, "a") as fh:
                fh.write(f"[warmci] (its log from that run is not available: {exc})\n")
        finally:
            _remove(old)

    # -- after the job -----------------------------------------------------
    def record(self, status: Status, outputs: Iterable[str], duration: float | None) -> None:
        """Remember the outcome; store a success with its outputs (absolute paths under the target or state dir)."""
        if self.store is None or self.key is None:
            return
        run = RunRef(self.ctx.run_id, self.ctx.sha, self.ctx.branch, host_name(), time.time())
        try:
            if status in REMEMBERED:
                self.store.record_outcome(self.key, self.job.name, status, run)
            if status != Status.PASSED:
                return
            refs = []
            for path in outputs:
                ref = self._ref(path)
                if ref is None:
                    self._notes.append(f"not kept: its output {path} is outside the target and state dirs")
                    return
                if not os.path.isfile(path):
                    self._notes.append(f"not kept: its output {path} is missing")
                    return
                refs.append(ref)
            entry = replay.record(self.store, filestates.of(self.ctx).hashes, key=self.key, job=self.job.name,
                                  run=run, outputs=refs, roots=self.roots, log=self.ctx.log_file(self.job.name),
                                  duration=duration, parts=self.parts)
            self.stats.update(stored=True, stored_bytes=sum(o.size for o in entry.outputs))
        except (StoreError, OSError) as exc:
            # The store is a cache of results: failing to fill it never fails the job.
            self._notes.append(f"its result was not kept: {exc}")

    def flaky_runs(self) -> list[dict[str, Any]]:
        """Earlier outcomes of this key when they disagree (passed and failed), else []."""
        if self.store is None or self.key is None:
            return []
        try:
            outcomes = self.store.outcomes(self.key)
        except OSError:
            return []
        if not api.is_flaky(outcomes):
            return []
        return [{"run": o.get("run", {}).get("id"), "sha": o.get("run", {}).get("sha"), "outcome": o.get("outcome")}
                for o in outcomes]

    def _ref(self, path: str) -> tuple[str, str] | None:
        for name in ("state", "target"):
            root = self.roots[name].rstrip(os.sep) + os.sep
            if path.startswith(root):
                return name, path[len(root):].replace(os.sep, "/")
        return None

    # -- kept environments ---------------------------------------------------
    def kept_env(self) -> str | None:
        """Where this key's environment lives for this checkout (None without a key or store)."""
        if not self.on or not self.job.python:
            return None
        digest = hashlib.sha256(f"{self.key}\0{self.ctx.target}".encode()).hexdigest()[:16]
        return os.path.join(self.ctx.kept_envs_dir(f"py{self.job.python}"), digest)

    # -- environments in the checkout (node_modules) ------------------------------------
    def _tree_home(self) -> str:
        return self.ctx.kept_envs_dir("checkout-" + self.job.name)

    def _tree_kept(self, key: str) -> str:
        return os.path.join(self._tree_home(), hashlib.sha256(f"{key}\0{self.ctx.target}".encode()).hexdigest()[:16])

    def _tree_current(self) -> str:
        """Which key's install is in this checkout now (written after an install or a move back)."""
        digest = hashlib.sha256(self.ctx.target.encode()).hexdigest()[:16]
        return os.path.join(self._tree_home(), f"current-{digest}.json")

    def tree_aside(self) -> None:
        """Before an install for this key: move the checkout's install of another key into STATE/envs."""
        if not self.on or not self.env_dirs:
            return
        current = statefile.read_json(self._tree_current())
        old = current.get("key") if isinstance(current, dict) else None
        if not old or old == self.key:
            return  # unknown, or this key's own (then the installer repairs it in place)
        kept = self._tree_kept(old)
        if os.path.exists(kept):
            shutil.rmtree(kept)
        os.makedirs(kept)
        for i, rel in enumerate(self.env_dirs):
            src = os.path.join(self.ctx.target, rel)
            if os.path.isdir(src):
                try:
                    os.rename(src, os.path.join(kept, str(i)))
                except OSError:  # another file system: not kept, installed over
                    shutil.rmtree(kept, ignore_errors=True)
                    break
        statefile.write_json(os.path.join(kept, "dirs.json"), {"dirs": self.env_dirs})
        _remove(self._tree_current())
        prune_envs(self._tree_home(), keep=kept, skip=lambda n: n.startswith("current-"))

    def tree_back(self) -> bool:
        """Move this key's kept install back into the checkout (False when none is kept)."""
        current = statefile.read_json(self._tree_current())
        if isinstance(current, dict) and current.get("key") == self.key:
            return all(os.path.isdir(os.path.join(self.ctx.target, d)) for d in self.env_dirs)
        assert self.key is not None
        kept = self._tree_kept(self.key)
        listed = statefile.read_json(os.path.join(kept, "dirs.json"))
        if not isinstance(listed, dict) or listed.get("dirs") != self.env_dirs:
            return False
        if not all(os.path.isdir(os.path.join(kept, str(i))) for i in range(len(self.env_dirs))):
            return False
        self.tree_aside()
        for i, rel in enumerate(self.env_dirs):
            dest = os.path.join(self.ctx.target, rel)
            if os.path.lexists(dest):
                shutil.rmtree(dest)  # an install of unknown origin
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.rename(os.path.join(kept, str(i)), dest)
        shutil.rmtree(kept, ignore_errors=True)
        self.tree_installed()
        return True

    def tree_installed(self) -> None:
        """This key's install is what the checkout holds now."""
        if self.on and self.env_dirs:
            statefile.write_json(self._tree_current(), {"key": self.key, "target": self.ctx.target})

    def activate_env(self, env: str) -> None:
        """Point the state dir's venv at `env` (atomically), and drop the least recently used kept ones."""
        assert self.job.python
        link = self.ctx.venv_dir(self.job.python)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link)  # a venv from before environments were kept per key
        tmp = f"{link}.{os.getpid()}.tmp"
        _remove(tmp)
        os.symlink(env, tmp)
        os.replace(tmp, link)
        os.utime(env)
        prune_envs(os.path.dirname(env), keep=env)


def prune_envs(folder: str, keep: str, count: int = KEEP_ENVS, skip: Callable[[str], bool] = lambda n: False) -> None:
    """Keep `keep` and the `count` most recently used others (names `skip` says are not environments stay)."""
    try:
        names = [n for n in os.listdir(folder) if os.path.join(folder, n) != keep and not skip(n)]
    except FileNotFoundError:
        return
    aged = sorted(names, key=lambda n: os.stat(os.path.join(folder, n)).st_mtime, reverse=True)
    for name in aged[count:]:
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
