"""The environment a job's commands see: explicit, and its own.

A job inherits only a fixed list of variables plus the keyed allow-list, so
an unrelated variable can neither change a result nor go unnoticed by the
skip check. Each job gets its own HOME and TMPDIR (tools write state there:
pytest's tmp dirs, Jupyter runtime files); shared download caches stay
shared because uv, npm and pnpm lock them.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from warmci.context import Context
from warmci.inputs.toolversions import search_path
from warmci.pipeline.model import Job

# Passed through but not keyed: they say where to fetch from or how to
# print, not what the result is (lockfiles pin the what).
PASS_THROUGH = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT",
    "PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_DEFAULT_TIMEOUT",
    "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_PYTHON_DOWNLOADS",
    "npm_config_registry", "PYTHONDONTWRITEBYTECODE", "PYENV_ROOT",
)


def shared_caches(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Download caches of the real user, safe for concurrent use."""
    env = os.environ if environ is None else environ
    home = os.path.expanduser("~")
    return {
        "UV_CACHE_DIR": env.get("UV_CACHE_DIR") or os.path.join(home, ".cache", "uv"),
        "npm_config_cache": env.get("npm_config_cache") or os.path.join(home, ".npm"),
        "npm_config_store_dir": env.get("npm_config_store_dir")
        or os.path.join(home, ".local", "share", "pnpm", "store"),
        "PLAYWRIGHT_BROWSERS_PATH": env.get("PLAYWRIGHT_BROWSERS_PATH")
        or os.path.join(home, ".cache", "ms-playwright"),
    }


def base_env(ctx: Context, job: Job, *, venv: str | None = None,
             environ: Mapping[str, str] | None = None) -> dict[str, str]:
    src = os.environ if environ is None else environ
    names = PASS_THROUGH + job.keyed_env
    env = {k: src[k] for k in names if k in src}
    env["PATH"] = search_path(src)
    env.update(shared_caches(src))
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = ctx.home_dir(job.name)
    env["TMPDIR"] = ctx.tmp_dir(job.name)
    env["WARMCI_JOB"] = job.name
    env["WARMCI_RUN"] = ctx.run_id
    env["WARMCI_STATE"] = ctx.state
    if venv:
        env["VIRTUAL_ENV"] = venv
        env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", os.defpath)
    return env
