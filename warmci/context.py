"""Where things are: the runner, the target, its pipeline file and the state dir.

The state directory (doit's DB, venvs, logs, results) never lives inside the
target checkout, so `git clean -fdx` of the target cannot erase it.
"""
from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from warmci.errors import WarmciError
from warmci.filters import Filters
from warmci.filters import parse as parse_filters
from warmci.store import s3, shared
from warmci.store.api import StoreError

RUNNER_ROOT = Path(__file__).resolve().parent.parent
DEMO = RUNNER_ROOT / "examples" / "demo"


@dataclass(frozen=True)
class Context:
    target: str
    pipeline: str
    state: str
    run_id: str
    deadline: float = 0.0  # epoch seconds by which the whole run must end; 0: none
    filters: Filters = Filters()  # skip=, first=, k=, grep=, ... (warmci.filters)
    store: str = ""  # the result store's directory; "": results are not kept (WARMCI_STORE=off)
    store_max: int = 0  # its size limit in bytes (least recently used entries go first)
    sha: str | None = None  # the target's commit and branch (warmci.run.gitinfo), recorded with kept results
    branch: str | None = None
    trust: str = "protected"  # whose results this run may restore, and where it records (warmci.store.shared)
    remote: s3.Remote | None = None  # the shared store in an S3-compatible bucket (WARMCI_S3_BUCKET), if any

    # Layout of the state directory, in one place.
    @property
    def db_file(self) -> str:
        return os.path.join(self.state, "doit.sqlite3")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.state, "runs", self.run_id)

    def log_file(self, job: str) -> str:
        return os.path.join(self.run_dir, "logs", f"{job}.log")

    def status_file(self, job: str) -> str:
        return os.path.join(self.run_dir, "jobs", f"{job}.json")

    def work_dir(self, job: str) -> str:
        return os.path.join(self.state, "work", job)

    def tmp_dir(self, job: str) -> str:
        """Short on purpose: Chromium's singleton socket lives here and unix socket paths max out at 108."""
        digest = hashlib.sha256(f"{self.state}\0{job}".encode()).hexdigest()[:12]
        return os.path.join(os.environ.get("WARMCI_TMP") or "/tmp", f"warmci-{digest}")

    def home_dir(self, job: str) -> str:
        return os.path.join(self.state, "home", job)

    def venv_dir(self, version: str) -> str:
        return os.path.join(self.state, "venvs", f"py{version}")

    def venv_check_file(self, version: str) -> str:
        """Present while the venv should be verified: a job in it did not pass since it was last built."""
        return os.path.join(self.state, "venvs", f"py{version}.check")

    def artifacts_dir(self, job: str) -> str:
        return os.path.join(self.state, "artifacts", job)

    def manifest_file(self, job: str) -> str:
        return os.path.join(self.state, "artifacts", f"{job}.json")

    def key_file(self, job: str) -> str:
        """What the jobs downstream of an artifact job key on (warmci.inputs.wheelkey), beside its manifest."""
        return os.path.join(self.state, "artifacts", f"{job}.key.json")

    def marker_file(self, job: str) -> str:
        return os.path.join(self.state, "markers", f"{job}.done")

    @property
    def procs_dir(self) -> str:
        return os.path.join(self.state, "procs")

    @property
    def run_log(self) -> str:
        return os.path.join(self.run_dir, "run.log")

    @property
    def first_failure_file(self) -> str:
        return os.path.join(self.run_dir, "first-failure.json")

    @property
    def cancel_marker(self) -> str:
        return os.path.join(self.run_dir, "CANCELLED")

    @property
    def tool_cache(self) -> str:
        """Per machine, not per state dir: a version is keyed by its executable's stat,
        so every run on the machine can share it (and a cold state dir asks no tool)."""
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "warmci", "tool-versions.json")

    @property
    def hash_cache(self) -> str:
        """The content hashes of the target's files, kept between runs (warmci.inputs.contenthash)."""
        return os.path.join(self.state, "cache", "hashes")

    def kept_envs_dir(self, ecosystem: str) -> str:
        """Environments kept per key (the venvs of one Python version, ...): the last few stay."""
        return os.path.join(self.state, "envs", ecosystem)

    def worktree_dir(self, job: str) -> str:
        return os.path.join(self.state, "worktrees", job)


def _is_inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def resolve(get_var: Callable[[str, str | None], str | None] | None = None,
            environ: dict[str, str] | None = None) -> Context:
    """Pick target, pipeline and state from doit variables, then the environment.

    `doit target=PATH pipeline=FILE state=DIR` beats WARMCI_TARGET,
    WARMCI_PIPELINE and WARMCI_STATE; the bundled demo is the default target.
    """
    env = os.environ if environ is None else environ

    def pick(var: str, envname: str) -> str | None:
        value = get_var(var, None) if get_var else None
        return value or env.get(envname) or None

    target = Path(pick("target", "WARMCI_TARGET") or DEMO).expanduser().resolve()
    if not target.is_dir():
        raise WarmciError(f"target {target} is not a directory; pass target=PATH or set WARMCI_TARGET")
    pipeline_arg = pick("pipeline", "WARMCI_PIPELINE")
    if pipeline_arg:
        pipeline = Path(pipeline_arg).expanduser()
        if not pipeline.is_absolute():
            # A profile name such as "buckaroo" means profiles/buckaroo.toml.
            profile = RUNNER_ROOT / "profiles" / f"{pipeline_arg}.toml"
            pipeline = profile if profile.is_file() and not pipeline.exists() else pipeline.resolve()
    else:
        pipeline = target / "warmci.toml"
        if not pipeline.is_file():
            raise WarmciError(f"no pipeline file: {pipeline} does not exist; pass pipeline=FILE "
                              "(or a profile name from profiles/) or set WARMCI_PIPELINE")
    state_arg = pick("state", "WARMCI_STATE")
    if state_arg:
        state = Path(state_arg).expanduser().resolve()
    else:
        base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        digest = hashlib.sha256(str(target).encode()).hexdigest()[:10]
        state = base / "warmci" / f"{target.name}-{digest}"
    if _is_inside(state, target):
        raise WarmciError(f"state directory {state} is inside the target {target}; "
                          "`git clean -fdx` would erase it: choose a state dir outside the target")
    run_id = env.get("WARMCI_RUN_ID") or time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    filters = parse_filters(get_var) if get_var else Filters()
    store, store_max = store_choice(env, state)
    if store and _is_inside(Path(store), target):
        raise WarmciError(f"result store {store} (WARMCI_STORE) is inside the target {target}; "
                          "`git clean -fdx` would erase it: choose a directory outside the target")
    try:
        remote = s3.remote_from(env) if store else None
    except StoreError as exc:
        raise WarmciError(str(exc)) from None
    return Context(str(target), str(pipeline.resolve()), str(state), run_id, filters=filters, store=store,
                   store_max=store_max, trust=shared.trust_from(env), remote=remote)


def host_name(environ: Mapping[str, str] | None = None) -> str:
    """This host's name in kept results and restores: WARMCI_HOST (a host worker's name), else the machine's."""
    env = os.environ if environ is None else environ
    return env.get("WARMCI_HOST") or socket.gethostname()


DEFAULT_STORE_MAX = 5 * 2**30
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def store_choice(env: Mapping[str, str], state: Path) -> tuple[str, int]:
    """The result store (WARMCI_STORE: unset is STATE/store, `off` keeps nothing, else a directory that
    several state dirs may share) and its size limit (WARMCI_STORE_MAX: bytes, or with K/M/G/T)."""
    choice = env.get("WARMCI_STORE", "").strip()
    if choice.lower() == "off":
        store = ""
    elif choice:
        store = str(Path(choice).expanduser().resolve())
    else:
        store = str(state / "store")
    raw = env.get("WARMCI_STORE_MAX", "").strip().upper().removesuffix("B").removesuffix("I")
    if not raw:
        return store, DEFAULT_STORE_MAX
    unit = raw[-1] if raw[-1] in _UNITS else ""
    try:
        size = float(raw[:-1] if unit else raw) * _UNITS[unit]
    except ValueError:
        raise WarmciError(f"WARMCI_STORE_MAX={env['WARMCI_STORE_MAX']!r} is not a size; "
                          "write bytes, or a number with K, M, G or T (e.g. 5G)") from None
    return store, int(size)
