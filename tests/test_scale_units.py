"""The Redis engine's pure parts: warm affinity, the configuration, the run files' paths."""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import asdict
from pathlib import Path

import pytest

from ci_runner import config, doitrun, engine, runfiles
from ci_runner.affinity import Candidate, Placement, place
from ci_runner.errors import ConfigError
from testing.ci_service import SECRET, TOKEN, ServiceConfig
from testing.redis_server import RedisServer

ENV = {"WARMCI_WEBHOOK_SECRET": SECRET, "WARMCI_GITHUB_TOKEN": TOKEN}


def test_a_free_host_takes_the_oldest_run_of_a_branch_it_ran_last() -> None:
    queued = [Candidate(1, "a", "h2", 10), Candidate(2, "b", "h1", 11), Candidate(3, "c", None, None)]
    got = place(queued, ["h1", "h2"], {})
    assert got == [Placement(2, "h1", "warm: h1 ran b last (run 11)", True),
                   Placement(1, "h2", "warm: h2 ran a last (run 10)", True)]


def test_a_run_whose_host_is_busy_or_gone_goes_to_a_free_one_and_says_why() -> None:
    queued = [Candidate(1, "a", "h1", 10), Candidate(2, "b", "h9", 11), Candidate(3, "c", None, None)]
    got = place(queued, ["h2", "h3", "h4"], {"h1": 7})
    assert [(p.run, p.host, p.warm) for p in got] == [(1, "h2", False), (2, "h3", False), (3, "h4", False)]
    assert got[0].why == "h1 ran a last (run 10) but is busy with run 7; h2 was free"
    assert got[1].why == "h9 ran b last (run 11) but is gone; h3 was free"
    assert got[2].why == "no host has run c yet; h4 was free"


def test_a_run_whose_host_is_free_waits_for_it_and_is_not_taken_by_another() -> None:
    queued = [Candidate(1, "a", "h2", 10), Candidate(2, "b", None, None)]
    got = place(queued, ["h1", "h2"], {})
    assert [(p.run, p.host) for p in got] == [(2, "h1"), (1, "h2")]


def test_no_free_host_places_nothing_and_each_host_takes_one_run() -> None:
    assert place([Candidate(1, "a", None, None)], [], {"h1": 3}) == []
    got = place([Candidate(i, "main", None, None) for i in range(1, 4)], ["h1"], {})
    assert [(p.run, p.host) for p in got] == [(1, "h1")]
    # Each free host takes one run, the one warm there first.
    got = place([Candidate(1, "x", None, None), Candidate(2, "main", "h1", 9)], ["h1", "h2"], {})
    assert [(p.run, p.host) for p in got] == [(2, "h1"), (1, "h2")]


def write(tmp_path: Path, service: dict[str, object], worker: str = "") -> Path:
    path = ServiceConfig(tmp_path / "ci.toml", tmp_path / "svc", service=service,
                         repos={"o/demo": {"clone_url": "https://github.com/o/demo.git",
                                           "checkout_dir": tmp_path / "co", "state_dir": tmp_path / "st"}}).write()
    if worker:
        path.write_text(path.read_text() + f"\n[worker]\n{worker}\n")
    return path


def test_the_engine_is_local_unless_redis_is_configured(tmp_path: Path) -> None:
    c = config.load(write(tmp_path, {}), {**ENV, "WARMCI_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert (c.engine, c.secrets.redis_url) == ("local", "")
    c = config.load(write(tmp_path, {"engine": "redis", "lease": 12}, 'name = "ci-2"'),
                    {**ENV, "WARMCI_REDIS_URL": "redis://:hunter2@10.0.0.2:6379/0"})
    assert (c.engine, c.lease, c.host_name) == ("redis", 12.0, "ci-2")
    assert "hunter2" in c.secrets.values() and "redis://:hunter2@10.0.0.2:6379/0" in c.secrets.values()


@pytest.mark.parametrize(("service", "worker", "env", "key", "words"), [
    ({"engine": "rq"}, "", {}, "service.engine", "one of local, redis"),
    ({"engine": "redis"}, "", {}, "WARMCI_REDIS_URL", "is not set"),
    ({"engine": "redis"}, "", {"WARMCI_REDIS_URL": "http://x"}, "WARMCI_REDIS_URL", "redis://"),
    ({"lease": 0}, "", {}, "service.lease", "positive"),
    ({}, 'name = "a b"', {}, "worker.name", "host name"),
    ({}, 'nme = "x"', {}, "worker.nme", "unknown key"),
])
def test_each_bad_engine_setting_names_its_key(tmp_path: Path, service: dict[str, object], worker: str,
                                               env: dict[str, str], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, service, worker), {**ENV, **env})
    assert err.value.key == key and words in err.value.problem, str(err.value)


def test_the_operator_cli_needs_no_redis_url(tmp_path: Path) -> None:
    c = config.load(write(tmp_path, {"engine": "redis"}), {}, need_secrets=False)
    assert c.engine == "redis" and c.secrets.redis_url == ""


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x", "a/../../x", "a\\b", "", "a/./b", "logs/../../x"])
def test_a_run_file_never_lands_outside_the_run_dir(rel: str) -> None:
    assert not runfiles.safe_relpath(rel)


def test_run_files_travel_through_redis_changed_ones_only_and_unsafe_paths_refused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        conn = server.client()
        src, dest = tmp_path / "host" / "run", tmp_path / "svc" / "run"
        (src / "logs").mkdir(parents=True)
        (src / "results.json").write_text('{"status": "passed"}')
        (src / "logs" / "a.log").write_text("one\n")
        (tmp_path / "doit.log").write_text("doit says\n")
        ship = runfiles.Shipper(conn, "job-1", src, tmp_path / "doit.log")
        got = runfiles.Receiver(conn, "job-1", dest, tmp_path / "svc" / "doit.log")
        assert ship.ship() == 3 and got.pull() == 3
        assert (dest / "logs" / "a.log").read_text() == "one\n" and (tmp_path / "svc" / "doit.log").exists()
        assert ship.ship() == 0 and got.pull() == 0  # nothing changed
        (src / "logs" / "a.log").write_text("one\ntwo\n")
        assert ship.ship() == 1 and got.pull() == 1 and (dest / "logs" / "a.log").read_text() == "one\ntwo\n"
        # A host that ships a path out of the run's directory gets nothing written.
        conn.hset(engine.files_key("job-1"), "../../escaped", zlib.compress(b"x"))
        conn.hset(engine.versions_key("job-1"), "../../escaped", "1:1")
        assert got.pull() == 0 and not (tmp_path / "escaped").exists()
        got.drop()
        assert not conn.exists(engine.files_key("job-1"), engine.versions_key("job-1"))
        conn.close()
    finally:
        server.stop()


def test_the_deployables_render_a_host_workers_config_and_check_its_heartbeat(tmp_path: Path) -> None:
    """docker/render-config.py with the worker's settings gives a config the worker loads; the container's
    health check of a worker reads its heartbeat file."""
    import os
    import subprocess
    import sys

    from testing.ci_service import RUNNER

    env_file = tmp_path / "provision.env"
    env_file.write_text("WARMCI_PORT=8080\nWARMCI_TARGET_REPO=o/demo\nWARMCI_TARGET_CLONE_URL=https://github.com/o/demo"
                        ".git\nWARMCI_PIPELINE=\nWARMCI_PUBLIC_URL=http://10.0.0.1:8080\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("WARMCI_")}
    one_host = subprocess.run([sys.executable, str(RUNNER / "docker" / "render-config.py"), str(env_file)],
                              capture_output=True, text=True, env=base, check=True).stdout
    assert "engine" not in one_host and "name =" not in one_host  # nothing changes for one host
    out = subprocess.run([sys.executable, str(RUNNER / "docker" / "render-config.py"), str(env_file)],
                         capture_output=True, text=True, env={**base, "WARMCI_ENGINE": "redis",
                                                              "WARMCI_HOST_NAME": "ci-2"}, check=True).stdout
    path = tmp_path / "config.toml"
    path.write_text(out.replace("/var/lib/warmci", str(tmp_path)).replace("/srv/warmci", str(tmp_path / "co")))
    c = config.load(path, {"WARMCI_REDIS_URL": "redis://127.0.0.1:1/0"}, need_secrets=False)
    assert (c.engine, c.host_name, c.state_dir) == ("redis", "ci-2", tmp_path / "service")

    def health(age: float) -> subprocess.CompletedProcess[str]:
        beat = c.state_dir / "worker.heartbeat"
        beat.parent.mkdir(parents=True, exist_ok=True)
        beat.touch()
        os.utime(beat, (beat.stat().st_mtime - age, beat.stat().st_mtime - age))
        return subprocess.run([sys.executable, str(RUNNER / "docker" / "healthcheck.py")], capture_output=True,
                              text=True, env={**base, "WARMCI_ROLE": "worker", "WARMCI_RUNNER_CONFIG": str(path)})
    assert health(0).returncode == 0
    stale = health(300)
    assert stale.returncode == 1 and re.search(r"last heartbeat was 30\d s ago", stale.stdout), stale.stdout


def test_the_service_refuses_two_workers_where_jobs_cannot_get_namespaces(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from ci_runner.errors import RunnerError
    from ci_runner.serve import check_concurrency

    c = config.load(write(tmp_path, {"workers": 2}), ENV)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no util-linux: no network namespaces
    with pytest.raises(RunnerError, match="service.workers = 2, but jobs with ports cannot get a network"):
        check_concurrency(c)
    check_concurrency(config.load(write(tmp_path, {"workers": 1}), ENV))  # one at a time is always safe


def test_a_runs_filters_reach_doit_on_a_host_of_the_redis_engine(tmp_path: Path) -> None:
    """The dispatcher sends the run's spec as JSON; the host worker's doit gets the operator's filters."""
    spec = doitrun.Spec(3, "ci-3-1", "o/demo", "a" * 40, "main", "refs/heads/main", filters=("skip=test-js", "k=t"))
    back = doitrun.Spec.from_dict(json.loads(json.dumps(asdict(spec))))
    assert back == spec
    repo = config.load(write(tmp_path, {}), ENV).repo("o/demo")
    assert repo is not None and doitrun.command(repo, back.filters)[-2:] == ["skip=test-js", "k=t"]
