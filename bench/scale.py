"""The same push series on one host worker and on two: wall time, job-seconds, shared-cache hits.

    ./bootstrap python -m bench.scale                  4 rounds of 3 pushes, results in bench/results/
    ./bootstrap python -m bench.scale --rounds 2 --serve-seconds 1 --out /tmp/x

Real parts on loopback (testing/scale_world.py): a redis-server, an
S3-compatible bucket (moto's server), the service with `engine = "redis"`,
and one or two host workers (`python -m ci_runner worker`, each with its own
checkout and state dir) on the small target, whose `serve` job holds a
fixed port (two hosts on one machine run it at once, in network namespaces)
and sleeps SERVE_SECONDS. Each configuration starts cold (new dirs, a new
bucket prefix). Each round pushes three commits at once through the signed
webhook, one on each of `main`, `feat-a` and `feat-b`, and waits until all
three statuses are final, so both configurations build exactly the same
runs. main changes the sources and the served files; feat-a only the served
files and feat-b only the sources, each on main's previous commit, so half
of each branch's jobs have keys main's previous run had: restored from the
host's own store when that run was there, from the bucket when it was not.

Reported per configuration: wall time from the first push to the last final
status, job-seconds (results.json `job_seconds`, summed), jobs restored from
the shared bucket (`remote_hits`) and from the host's own store, placements
that were warm, runs per host; and two workers against one as ratios.
Writes OUT/scale.json and OUT/scale.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from bench import machine, stats

RUNNER = Path(__file__).resolve().parent.parent
BRANCHES = ("main", "feat-a", "feat-b")


def one_config(workers: int, rounds: int, serve_seconds: float, work: Path, redis_url: str, bucket: Any,
               say: Any) -> dict[str, Any]:
    from testing import github_payloads as gp
    from testing.ci_service import Service, ServiceConfig
    from testing.fake_github import FakeGitHub
    from testing.scale_world import REPO, HostProc, commit, small_remote

    remote = small_remote(work)
    names = [f"w{i + 1}" for i in range(workers)]
    env = {**bucket.env(work.name), "SERVE_SECONDS": str(serve_seconds)}
    rows: list[dict[str, Any]] = []
    with FakeGitHub() as gh:
        cfg = ServiceConfig(work / "ci.toml", work / "svc", service={"engine": "redis", "lease": 15},
                            repos={REPO: {"clone_url": str(remote.bare), "checkout_dir": work / "svc-co",
                                          "state_dir": work / "svc-state"}})
        service = Service(cfg, gh.url, work / "service.log", extra_env={"WARMCI_REDIS_URL": redis_url})
        hosts = [HostProc(n, work / n, redis_url, remote.bare, 15.0, env=env) for n in names]
        conn = redis.Redis.from_url(redis_url)
        try:
            service.start()
            for h in hosts:
                h.start()
            for h in hosts:
                h.wait_alive(conn)
            main = commit(remote, "HEAD", {})
            t0 = time.time()
            for r in range(rounds):
                # main changes both areas; feat-a only the served files and feat-b only the sources, each on
                # main's previous commit: the other area's jobs have the keys main's previous run had.
                shas = {"main": commit(remote, main, {"src/m.txt": f"main {r}\n", "web/a.txt": f"main {r}\n"},
                                       f"main {r}"),
                        "feat-a": commit(remote, main, {"web/a.txt": f"feat-a {r}\n"}, f"feat-a {r}"),
                        "feat-b": commit(remote, main, {"src/feat-b.txt": f"feat-b {r}\n"}, f"feat-b {r}")}
                ids = {}
                for b, sha in shas.items():
                    remote.push(sha, f"refs/heads/{b}")
                    resp = service.send("push", gp.push(REPO, sha, b))
                    assert resp.status_code == 202, resp.text
                    ids[b] = int(resp.json()["run"])
                for b, run_id in ids.items():
                    run = service.wait_finished(run_id, timeout=900)
                    final = gh.final_status(shas[b], "warmci", timeout=120)
                    results = json.loads(Path(run["results_file"]).read_text())
                    if run["state"] != "passed":
                        raise RuntimeError(f"{b} round {r} did not pass: {run['detail']}")
                    jobs = results["jobs"].values()
                    rows.append({"round": r, "branch": b, "run": run_id, "host": run["host"],
                                 "warm": run["placement"].startswith("warm:"), "placement": run["placement"],
                                 "queued_to_final_s": final["at"] - run["queued_at"], "final_at": final["at"],
                                 "job_seconds": results["job_seconds"], "remote_hits": results["store"]["remote_hits"],
                                 "local_hits": results["store"]["hits"] - results["store"]["remote_hits"],
                                 "ran": sum(1 for j in jobs if j["status"] == "passed")})
                main = shas["main"]
                say(f"{workers} worker(s), round {r + 1}/{rounds}: " + ", ".join(
                    f"{x['branch']} on {x['host']} {x['queued_to_final_s']:.1f} s" for x in rows[-3:]))
            wall = max(x["final_at"] for x in rows) - t0
        finally:
            service.stop()
            for h in hosts:
                h.stop()
            conn.close()
    return {"workers": workers, "wall_s": round(wall, 2), "runs": rows,
            "job_seconds": round(sum(x["job_seconds"] for x in rows), 2),
            "remote_hits": sum(x["remote_hits"] for x in rows), "local_hits": sum(x["local_hits"] for x in rows),
            "jobs_ran": sum(x["ran"] for x in rows), "warm_placements": sum(x["warm"] for x in rows),
            "runs_per_host": {n: sum(x["host"] == n for x in rows) for n in names},
            "queued_to_final": stats.summary([x["queued_to_final_s"] for x in rows])}


def measure(rounds: int, serve_seconds: float, work: Path, say: Any) -> dict[str, Any]:
    sys.path.insert(0, str(RUNNER / "ci-runner"))
    from testing.redis_server import RedisServer
    from testing.s3_server import S3Server

    server = RedisServer(work / "redis").start()
    bucket = S3Server(work / "moto").start()
    try:
        configs = [one_config(n, rounds, serve_seconds, work / f"{n}-workers", server.url, bucket, say)
                   for n in (1, 2)]
    finally:
        bucket.stop()
        server.stop()
    one, two = configs
    return {"configs": configs, "ratios": {k: stats.ratio(two[k], one[k]) for k in ("wall_s", "job_seconds")}}


def markdown(d: dict[str, Any]) -> str:
    m = d["machine"]
    lines = [f"# One host worker and two: the same push series, {m['timestamp']}", "",
             f"- command: `{d['command']}` (took {d['duration_s']} s)",
             f"- machine: {m['cpu_model']}, {m['nproc']} cpus, {m['memory_mb']} MB; load {m['loadavg_at_start']} → "
             f"{m.get('loadavg_at_end')}",
             f"- runner {m['runner']['commit']} (+{m['runner']['dirty_paths']} uncommitted paths); python "
             f"{m['python']}, doit {m['doit']}",
             f"- {d['rounds']} rounds of 3 pushes at once (main changes sources and served files; feat-a the served "
             "files, feat-b the sources, each on main's previous commit), waiting for the 3 final statuses between "
             f"rounds; the small target "
             f"(testing/scale_world.py), `serve` sleeping {d['serve_seconds']} s; both host workers on this one "
             "machine (network namespaces for the fixed port), each configuration cold", "",
             "| | 1 worker | 2 workers | 2 / 1 |", "|---|---|---|---|"]
    one, two = d["configs"]
    rows = [("wall time, first push → last final status", "wall_s", "s"),
            ("job-seconds (sum of results.json `job_seconds`)", "job_seconds", "s"),
            ("jobs that ran", "jobs_ran", ""), ("jobs restored from the shared bucket", "remote_hits", ""),
            ("jobs restored from the host's own store", "local_hits", ""),
            ("warm placements (of the runs)", "warm_placements", "")]
    for label, key, unit in rows:
        ratio = stats.ratio(two[key], one[key]) if unit else None
        lines.append(f"| {label} | {one[key]}{' ' + unit if unit else ''} | {two[key]}{' ' + unit if unit else ''} |"
                     f" {f'{ratio:.2f}x' if ratio is not None else ''} |")
    lines.append(f"| median push → final status | {one['queued_to_final']['median']:.1f} s | "
                 f"{two['queued_to_final']['median']:.1f} s | |")
    lines.append(f"| runs per host | {one['runs_per_host']} | {two['runs_per_host']} | |")
    lines += ["", "On 2 shared cores the second worker competes with the first for the CPU: the wall-time ratio "
              "here shows the engine's overhead and the overlap of waiting (the `serve` sleep), not what a second "
              "machine would add."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4, help="rounds of 3 pushes (default 4)")
    p.add_argument("--serve-seconds", type=float, default=3.0, help="how long the serve job works (default 3)")
    p.add_argument("--out", type=Path, default=RUNNER / "bench" / "results", help="where scale.json/.md go")
    args = p.parse_args(argv)
    started = time.perf_counter()
    data: dict[str, Any] = {"command": shlex.join(["./bootstrap", "python", "-m", "bench.scale", *argv]),
                            "machine": machine.describe(), "rounds": args.rounds, "serve_seconds": args.serve_seconds}
    with tempfile.TemporaryDirectory(prefix="warmci-bench-scale-") as tmp:
        data.update(measure(args.rounds, args.serve_seconds, Path(tmp),
                            lambda msg: print(f"bench.scale: {msg}", file=sys.stderr)))
    data["machine"]["loadavg_at_end"] = machine.load()
    data["duration_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(data, indent=1) + "\n")
    (args.out / "scale.md").write_text(markdown(data))
    print(f"bench.scale: wrote {args.out / 'scale.json'} and {args.out / 'scale.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
