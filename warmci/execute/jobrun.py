"""Running one job: the python action behind every doit task warmci builds.

Sets up the job's own dirs and environment, frees nothing it did not start,
starts its servers, runs its steps with the job's timeout, ends every process
tree, and writes the job's status file for the reporter. Returns True or a
doit TaskFailed: a failed, timed-out or cancelled job is never a success.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from typing import Any

from warmci import doitapi, statefile
from warmci.context import RUNNER_ROOT, Context
from warmci.doitapi import TaskFailed
from warmci.errors import WarmciError
from warmci.execute import jobenv, logs, netns, ports, proc, servers, worktree
from warmci.execute.reuse import Reuse
from warmci.inputs import files, interpreters, venvs, wheelkey
from warmci.pipeline.model import Job, Step
from warmci.run import firstred
from warmci.status import Status


class JobError(WarmciError):
    """The job did not pass; status says how (failed, timed-out, errored)."""

    def __init__(self, message: str, status: Status = Status.FAILED, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.exit_code = status, exit_code


class Skipped(WarmciError):
    """A prerequisite the pipeline marks optional is missing here."""


# A step may time its own phases (server start, kernel warm-up, each test file): it appends one JSON
# object per line, {"name": str, "seconds": float}, to the file this variable names; they land in
# results.json under the step's "phases" (docs/results.md).
PHASES_VAR = "WARMCI_PHASES"


def read_phases(path: str) -> list[dict[str, Any]]:
    """The phases a step wrote, in order; a malformed line is dropped, never fatal."""
    out: list[dict[str, Any]] = []
    try:
        with open(path) as fh:
            lines = fh.readlines()
    except OSError:
        return out
    for line in lines:
        try:
            d = json.loads(line)
            out.append({"name": str(d["name"]), "seconds": round(float(d["seconds"]), 3)})
        except (ValueError, KeyError, TypeError):
            continue
    return out


def run_job(job: Job, ctx: Context, task: Any) -> bool | TaskFailed:
    """doit python-action entry point: the validated job itself is the argument (module-level, so picklable).

    doit passes `task` (by the parameter's name): its meta carries the job's whole key, computed in the
    main process (warmci.inputs.key), and its targets are the outputs kept with a success.
    """
    return JobRun(ctx, job, doitapi.task_meta(task), list(task.targets)).execute()


def fmt(text: str, values: dict[str, str]) -> str:
    return text.format_map(values) if "{" in text else text


class JobRun:
    def __init__(self, ctx: Context, job: Job, meta: dict[str, Any] | None = None,
                 targets: list[str] | None = None) -> None:
        self.ctx, self.job = ctx, job
        self.reuse = Reuse(ctx, job, meta or {})
        self.targets = list(targets or ())
        self.log = ctx.log_file(job.name)
        self.work = ctx.work_dir(job.name)
        self.servers: list[proc.Child] = []
        self.holder: proc.Child | None = None  # of the job's network namespace, when it has one
        self.ns: netns.Namespace | None = None
        self.registry = proc.Registry(ctx.procs_dir)
        self.meta = {"run": ctx.run_id, "job": job.name, "ports": list(job.ports)}
        self.status: dict[str, Any] = {"job": job.name, "kind": job.kind, "log": self.log, "steps": []}

    # -- the whole job -------------------------------------------------
    def execute(self) -> bool | TaskFailed:
        start = time.time()
        self.status["start"] = start
        self._prepare_dirs()
        self._say(f"job {self.job.name} (run {self.ctx.run_id}) in {self.ctx.target}")
        result: bool | TaskFailed = True
        try:
            restored = self.reuse.restore(forced=doitapi.always_execute())
            for note in self.reuse.notes:
                self._say(note)
            if restored is not None:
                self.status.update(restored)
                return True
            self._run()
            self.status.update(status=Status.PASSED, exit_code=0)
        except Skipped as exc:
            self.status.update(status=Status.SKIPPED, reason=str(exc), exit_code=None)
            self._say(f"SKIPPED: {exc}")
            print(f"warmci: {self.job.name} skipped: {exc}")
        except JobError as exc:
            if os.path.exists(self.ctx.cancel_marker):
                # Our command died because the run was cancelled, not on its own.
                exc.status = Status.CANCELLED
            result = self._did_not_pass(exc.status, str(exc), exc.exit_code)
        except WarmciError as exc:
            result = self._did_not_pass(Status.ERRORED, str(exc), None)
        except KeyboardInterrupt:
            self.status.update(status=Status.CANCELLED, reason="the run was cancelled", exit_code=None)
            self._say("CANCELLED: the run was cancelled")
            raise
        finally:
            for child in reversed(self.servers):
                child.end()
            self.servers.clear()
            if self.holder is not None:
                self.holder.end()
                self.holder = self.ns = None
            shutil.rmtree(self.ctx.tmp_dir(self.job.name), ignore_errors=True)
            end = time.time()
            self.status.update(end=end, duration=round(end - start, 3))
            self._keep(self.status.get("status"), end - start)
            self._write_status()
        return result

    def _keep(self, status: object, duration: float) -> None:
        """Its outcome into the result store, with its outputs when it passed (warmci.execute.reuse)."""
        if self.reuse.key:
            self.status["key"] = self.reuse.key
        if not self.reuse.on or status in (None, Status.RESTORED):
            self.status["store"] = {**self.reuse.stats, "notes": self.reuse.notes}
            return
        outputs = list(self.targets)
        if self.job.artifacts and status == Status.PASSED:
            out = self.ctx.artifacts_dir(self.job.name)
            outputs += [os.path.join(out, n) for n in sorted(os.listdir(out)) if os.path.isfile(os.path.join(out, n))]
        before = len(self.reuse.notes)
        self.reuse.record(Status(str(status)), outputs, round(duration, 3))
        for note in self.reuse.notes[before:]:
            self._say(note)
        self.status["store"] = {**self.reuse.stats, "notes": self.reuse.notes}
        flaky = self.reuse.flaky_runs()
        if flaky:
            self.status["flaky"] = flaky

    def _did_not_pass(self, status: Status, reason: str, exit_code: int | None) -> TaskFailed:
        # Read before warmci's own verdict goes into the log: the job's own last word.
        message = logs.last_message(self.log)
        self.status.update(status=status, reason=reason, exit_code=exit_code, message=message)
        if self.job.python and not self.job.builds_venv and status != Status.CANCELLED:
            # Its environment may be why: the next run verifies it before trusting it (warmci.inputs.venvs).
            statefile.write_text(self.ctx.venv_check_file(self.job.python),
                                 f"{self.job.name} {status} in run {self.ctx.run_id}\n")
        self._say(f"{status.upper()}: {reason}")
        return TaskFailed(f"{self.job.name} {status}: {reason}\nlog: {self.log}\n"
                          f"--- last lines ---\n{logs.tail(self.log)}")

    def _run(self) -> None:
        job, ctx = self.job, self.ctx
        interp = self._interpreter()
        root = ctx.target
        if job.isolate == "worktree":  # it writes into the source tree: give it a tree of its own
            root = worktree.prepare(ctx.target, ctx.worktree_dir(job.name), self._say)
        values = {"target": root, "state": ctx.state, "work": self.work, "job": job.name,
                  "python": job.python_version or "", "interpreter": interp or "", "venv": "", "out": "",
                  "wheel": "", "port": str(job.ports[0]) if job.ports else "", "runner": str(RUNNER_ROOT),
                  "source": ctx.target}
        venv = None
        kept_env = self.reuse.kept_env() if job.builds_venv else None
        self.reuse.tree_aside()  # another key's node_modules go aside, kept, before this install
        if job.python:
            venv = kept_env or ctx.venv_dir(job.python)
            if not job.builds_venv and not os.path.exists(os.path.join(venv, "bin", "python")):
                raise JobError(f"the Python {job.python} environment {venv} is missing; `doit {job.name}` "
                               "builds it first", Status.ERRORED)
        if job.marker:
            _remove(ctx.marker_file(job.name))
        if job.builds_venv and venv:
            self._repair(venv)
        if job.artifacts:
            values["out"] = ctx.artifacts_dir(job.name)
            shutil.rmtree(values["out"], ignore_errors=True)
            os.makedirs(values["out"])
            _remove(ctx.manifest_file(job.name))
            _remove(ctx.key_file(job.name))
        env = jobenv.base_env(ctx, job)
        if job.wheel is not None:
            venv, values["wheel"] = self._wheel_venv(interp, env)
        if venv:
            values["venv"] = venv
            env = jobenv.base_env(ctx, job, venv=venv)
        if job.wheel is not None:
            env.update(self._lazy_bytecode())
        env.update({k: fmt(v, values) for k, v in job.env})
        self.ns = self._namespace(env)
        self._free_ports()
        deadline = self._deadline()
        for i, srv in enumerate(job.servers):
            senv = dict(env, **{k: fmt(v, values) for k, v in srv.env})
            cwd = self._cwd(root, srv.cwd or job.cwd, values)
            argv = [fmt(a, values) for a in srv.cmd]
            slog = self.log.replace(".log", f".server-{i}.log")
            self._say(f"starting server {i}: {shlex.join(argv)} (ready: {fmt(srv.ready, values)}, log {slog})")
            try:
                self.servers.append(servers.start(self._inside(argv), ready=fmt(srv.ready, values), cwd=cwd,
                                                  env=senv, log=slog, timeout=min(srv.timeout, _left(deadline)),
                                                  label=job.name, registry=self.registry,
                                                  meta={**self.meta, "role": "server"}, probe_with=self._probe))
            except servers.ServerFailed as exc:
                raise JobError(str(exc), Status.ERRORED) from None
        for step in job.steps:
            argv = [fmt(a, values) for a in step.cmd]
            name = step.name or argv[0]
            if step.only_if and not os.path.exists(fmt(step.only_if, values)):
                self._say(f"step {name!r} not run: {fmt(step.only_if, values)} does not exist yet")
                continue
            senv = dict(env, **{k: fmt(v, values) for k, v in step.env})
            try:
                self._step(name, argv, self._cwd(root, step.cwd or job.cwd, values), senv, deadline, step.ok_exit,
                           inside=True)
            except JobError as exc:
                if not step.first_pass or exc.status != Status.FAILED or os.path.exists(ctx.cancel_marker):
                    raise  # only a first pass's own "no" lets the job go on
                self._first_pass_failed(step, exc)
        if job.artifacts:
            self._write_manifest(values["out"])
        if job.marker:
            self._write_marker()
        if job.builds_venv and job.python:
            _remove(ctx.venv_check_file(job.python))  # freshly synced: nothing left to verify
        if kept_env is not None:
            self.reuse.activate_env(kept_env)
        self.reuse.tree_installed()

    # -- pieces --------------------------------------------------------
    def _repair(self, venv: str) -> None:
        """Distributions whose files are gone are forgotten, so the sync that follows installs them again."""
        found = venvs.damaged(venv)
        if found:
            self._say(f"the venv {venv} is damaged: {venvs.describe(found)}; the sync reinstalls them")
            venvs.forget(found)

    def _first_pass_failed(self, step: Step, exc: JobError) -> None:
        """A first pass said no: the run's first red now; the full suite decides, unless this is fast-fail."""
        reason = f"first pass ({step.first_pass}) failed: {exc}"
        self.status.setdefault("first_pass_failed", []).append({"pass": step.first_pass, "reason": str(exc),
                                                                "exit_code": exc.exit_code, "at": time.time()})
        firstred.claim(self.ctx, {"job": self.job.name, "status": str(Status.FAILED), "reason": reason,
                                  "at": time.time(), "where": "first pass", "pass": step.first_pass})
        if not doitapi.keep_going():
            raise JobError(f"{reason}; the full suite did not run (fast-fail)", Status.FAILED, exc.exit_code)
        self._say(f"{reason}; the full suite runs next and decides the job's status")

    def _deadline(self) -> float:
        """Monotonic deadline: the job's timeout, capped by the run's deadline."""
        end = time.monotonic() + self.job.timeout
        if self.ctx.deadline:
            end = min(end, time.monotonic() + (float(self.ctx.deadline) - time.time()))
        return end

    def _interpreter(self) -> str | None:
        version = self.job.python_version
        if not version:
            return None
        found = interpreters.find(version)
        if found:
            return found
        where = interpreters.looked_in(version)
        if self.job.optional:
            raise Skipped(f"Python {version} is not installed on this machine (looked in {where}); "
                          f"it is optional in {self.job.pipeline} [python].optional, so this job did not run")
        raise JobError(f"Python {version} is not installed (looked in {where}); install it, or list "
                       f"\"{version}\" in [python].optional of {self.job.pipeline} to skip it where missing",
                       Status.ERRORED)

    def _step(self, name: str, argv: list[str], cwd: str, env: dict[str, str], deadline: float,
              ok_exit: tuple[int, ...], inside: bool = False) -> None:
        """One command; `inside` the job's network namespace when it has one (the job's own steps)."""
        left = _left(deadline)
        if left <= 0:
            raise JobError(f"timed out before step {name!r} ({self._limit()})", Status.TIMED_OUT)
        self._say(f"$ cd {cwd} && {shlex.join(argv)}" + (" (in the job's network namespace)"
                                                         if inside and self.ns else ""))
        phases_file = os.path.join(self.ctx.tmp_dir(self.job.name), "phases.jsonl")
        _remove(phases_file)
        out = proc.run(self._inside(argv) if inside else argv, cwd=cwd, env={**env, PHASES_VAR: phases_file},
                       log=self.log, timeout=left, label=self.job.name, registry=self.registry,
                       meta={**self.meta, "role": "step", "step": name})
        record: dict[str, Any] = {"name": name, "argv": argv, "exit_code": out.returncode,
                                  "duration": round(out.duration, 3), "timed_out": out.timed_out}
        phases = read_phases(phases_file)
        if phases:
            record["phases"] = phases
        self.status["steps"].append(record)
        self._say(f"step {name!r} exited {out.returncode} after {out.duration:.1f} s"
                  + (f"; ended leftover processes {out.killed}" if len(out.killed) > 1 else ""))
        if out.timed_out:
            raise JobError(f"step {name!r} timed out ({self._limit()}); its process tree was ended",
                           Status.TIMED_OUT, out.returncode)
        if out.returncode == 127 and not shutil.which(argv[0], path=env.get("PATH")):
            raise JobError(f"step {name!r}: command not found: {argv[0]!r}; install it or fix the pipeline "
                           f"file {self.job.pipeline}", Status.ERRORED, 127)
        if out.returncode not in ok_exit:
            raise JobError(f"step {name!r} exited {out.returncode} (`{shlex.join(argv)}`)", Status.FAILED,
                           out.returncode)

    def _limit(self) -> str:
        if self.ctx.deadline and float(self.ctx.deadline) < time.time() + 1:
            return "the run's deadline passed"
        return f"job timeout {self.job.timeout:.0f} s"

    def _cwd(self, root: str, rel: str | None, values: dict[str, str]) -> str:
        path = os.path.join(root, fmt(rel, values)) if rel else root
        if not os.path.isdir(path):
            raise JobError(f"working directory {path} does not exist (jobs.{self.job.name}.cwd in "
                           f"{self.job.pipeline})", Status.ERRORED)
        return path

    def _namespace(self, env: dict[str, str]) -> netns.Namespace | None:
        """A network namespace of the job's own, when it declares ports and namespaces can be made here."""
        if not self.job.ports:
            return None
        try:
            if not netns.wanted():
                return None
            marker = os.path.join(self.ctx.tmp_dir(self.job.name), "netns-ready")
            self.holder = proc.Child(netns.holder_argv(marker), cwd=self.work, env=env, log=self.log,
                                     label=self.job.name, registry=self.registry, meta={**self.meta, "role": "netns"})
            ns = netns.wait_ready(self.holder.pid, marker, self.holder.poll)
        except netns.NetnsError as exc:
            raise JobError(str(exc), Status.ERRORED) from None
        self._say(f"ports {list(self.job.ports)}: a network namespace of the job's own (held by pid {ns.pid}); "
                  "its servers and steps run in it, on its own loopback")
        return ns

    def _inside(self, argv: list[str]) -> list[str]:
        return self.ns.wrap(argv) if self.ns else argv

    def _probe(self, ready: str) -> bool:
        return self.ns.call(servers.probe, ready) if self.ns else servers.probe(ready)

    def _listeners(self) -> list[ports.Listener]:
        try:
            return ports.listeners_inside(self.ns, self.job.ports) if self.ns else ports.listeners(self.job.ports)
        except netns.NetnsError as exc:
            raise JobError(str(exc), Status.ERRORED) from None

    def _free_ports(self) -> None:
        """End listeners warmci recorded earlier; refuse to touch anything else (inside the job's namespace
        when it has one: a fresh one holds nothing, unless something joined it)."""
        for listener in self._listeners():
            rec = self.registry.owner_of(listener.pid) if listener.pid else None
            if rec is None:
                raise JobError(listener.describe() + ". warmci did not start it, so it is left running: "
                               f"stop it or change jobs.{self.job.name}.ports in {self.job.pipeline}", Status.ERRORED)
            pids = self.registry.end(rec)
            self._say(f"port {listener.port} was held by pid {listener.pid}, started by warmci (run "
                      f"{rec.meta.get('run')}, job {rec.meta.get('job')}); ended its tree {pids}")
        still = self._listeners()
        if still:
            raise JobError("; ".join(s.describe() for s in still) + " (still listening after warmci ended "
                           "the process it had started)", Status.ERRORED)

    def _wheel_venv(self, interp: str | None, env: dict[str, str]) -> tuple[str, str]:
        """A clean venv with the wheel, constrained by the target's lockfile."""
        wanted = self.job.wheel
        assert wanted is not None
        producer = wanted.producer
        manifest = statefile.read_json(self.ctx.manifest_file(producer))
        wheels = [f for f in (manifest or {}).get("files", {}) if f.endswith(".whl")]
        if len(wheels) != 1:
            raise JobError(f"expected one wheel from {producer}, found {wheels or 'none'}; "
                           f"run `doit {producer}`", Status.ERRORED)
        wheel = os.path.join(self.ctx.artifacts_dir(producer), wheels[0])
        venv = os.path.join(self.work, "venv")
        shutil.rmtree(venv, ignore_errors=True)
        deadline = time.monotonic() + self.job.timeout
        self._step("create venv", ["uv", "venv", "--quiet", "--python", interp or "", venv],
                   self.work, env, deadline, (0,))
        spec = wheel + (f"[{','.join(wanted.extras)}]" if wanted.extras else "")
        install = ["uv", "pip", "install", "--python", os.path.join(venv, "bin", "python"), spec,
                   *wanted.with_packages]
        if wanted.constrain:
            cons = os.path.join(self.work, "constraints.txt")
            project = os.path.join(self.ctx.target, wanted.project)
            self._step("export lock", ["uv", "export", "--locked", "--no-hashes", "--all-extras",
                                       "--all-groups", "--no-emit-project", "--format", "requirements-txt",
                                       "--quiet", "-o", cons], project, env, deadline, (0,))
            install += ["-c", cons]
        # Not compiled at install (_lazy_bytecode): compiling every module of every dependency
        # took longer than the suites themselves under load (docs/buckaroo.md, "Experiments").
        self._step("install wheel", install, self.work, env, deadline, (0,))
        return venv, wheel

    def _lazy_bytecode(self) -> dict[str, str]:
        """The wheel venv's processes write the bytecode of what they import, once, into a cache of this run's.

        PYTHONDONTWRITEBYTECODE (set on some machines) is lifted for the job: without it every process would
        compile every import again. The cache is outside the venv and the checkout (PYTHONPYCACHEPREFIX, so
        nothing lands in the shared tree) and emptied with the venv: a wheel's files may keep fixed
        timestamps, and a stale .pyc of a same-sized module must never be taken for the new one.
        """
        cache = os.path.join(self.work, "pycache")
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        return {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": ""}

    def _write_manifest(self, out: str) -> None:
        names = sorted(os.listdir(out))
        if not names:
            raise JobError(f"the build wrote nothing into {out}", Status.FAILED)
        manifest = {"files": {n: files.sha256_file(os.path.join(out, n)) for n in names
                              if os.path.isfile(os.path.join(out, n))}}
        statefile.write_json(self.ctx.manifest_file(self.job.name), manifest)
        self.status["artifacts"] = manifest["files"]
        try:
            key = wheelkey.artifact_key(out)
        except wheelkey.BadWheel as exc:
            raise JobError(f"the build wrote a wheel warmci cannot read: {exc}", Status.FAILED) from None
        statefile.write_json(self.ctx.key_file(self.job.name), {"files": key})
        self.status["artifact_key"] = key

    def _write_marker(self) -> None:
        digest = {p: files.sha256_file(os.path.join(self.ctx.target, p)) for p in self.job.inputs
                  if os.path.isfile(os.path.join(self.ctx.target, p))}
        statefile.write_json(self.ctx.marker_file(self.job.name), digest)

    def _prepare_dirs(self) -> None:
        tmp = self.ctx.tmp_dir(self.job.name)
        shutil.rmtree(tmp, ignore_errors=True)
        for d in (tmp, self.work, self.ctx.home_dir(self.job.name), os.path.dirname(self.log),
                  os.path.dirname(self.ctx.status_file(self.job.name))):
            os.makedirs(d, exist_ok=True)
        with open(self.log, "w"):
            pass

    def _say(self, line: str) -> None:
        with open(self.log, "a") as fh:
            fh.write(f"[warmci {time.strftime('%H:%M:%S')}] {line}\n")

    def _write_status(self) -> None:
        statefile.write_json(self.ctx.status_file(self.job.name), self.status)


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
