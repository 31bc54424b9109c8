"""latest.md: the benchmark's results as short Markdown tables (latest.json has everything)."""
from __future__ import annotations

from typing import Any


def _s(x: float | None, unit: str = "s", digits: int = 3) -> str:
    if x is None:
        return "–"
    if unit == "ms":
        return f"{x * 1000:.{max(digits - 2, 0)}f} ms"
    return f"{x:.{digits}f} s"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} ms"


def _x(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}×"


def _ok(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "**no**")


def _spread(sm: dict[str, Any] | None, unit: str = "s") -> str:
    if not sm or sm.get("median") is None:
        return "–"
    if unit == "ms":
        return f"{sm['min']:.1f}–{sm['max']:.1f} ms (IQR {sm['q1']:.1f}–{sm['q3']:.1f}, n={sm['n']})"
    return f"{sm['min']:.3f}–{sm['max']:.3f} s (IQR {sm['q1']:.3f}–{sm['q3']:.3f}, n={sm['n']})"


def _med(sm: dict[str, Any] | None) -> float | None:
    return (sm or {}).get("median")


def _err(sec: Any) -> str | None:
    if not isinstance(sec, dict) or not sec:
        return "not run (skipped)"
    if "error" in sec:
        return "error: " + sec["error"].strip().splitlines()[-1]
    return None


def markdown(d: dict[str, Any]) -> str:
    m = d.get("machine", {})
    t = d.get("target", {})
    out = [f"# warmci benchmark ({d.get('mode')} mode), {m.get('timestamp')}", ""]
    out += [f"- command: `{d.get('command')}` (took {d.get('duration_s')} s)",
            f"- target: {t.get('kind')} ({t.get('source', '')}), {t.get('jobs')} jobs, {t.get('workers')} workers",
            f"- machine: {m.get('cpu_model')}, {m.get('nproc')} cpus, {m.get('memory_mb')} MB; "
            f"load {m.get('loadavg_at_start')} → {m.get('loadavg_at_end')}, {m.get('processes_at_start')} processes; "
            f"`{m.get('uname')}`",
            f"- versions: python {m.get('python')}, doit {m.get('doit')}, {m.get('uv')}, node {m.get('node')}, "
            f"pnpm {m.get('pnpm')}; runner {str((m.get('runner') or {}).get('commit'))[:10]} "
            f"(+{(m.get('runner') or {}).get('dirty_paths')} uncommitted paths)",
            f"- repetitions: {d.get('reps')}; medians with min–max and interquartile range", ""]
    out += _headline(d) + _noop(d) + _breakdown(d) + _incremental(d) + _cold(d) + _handoff(d) + _scaling(d)
    out += _switching(d)
    anomalies = d.get("anomalies") or []
    out += ["## Anomalies", ""]
    if not anomalies:
        out += ["None: every measured run was what it should be.", ""]
    for a in anomalies:
        out.append(f"- {a.get('what')}: {a.get('problem')}" + (f" (failed: {a.get('failed_jobs')})"
                                                              if a.get("failed_jobs") else ""))
    if d.get("leftover_processes"):
        out += ["", f"Leftover processes: {d['leftover_processes']}"]
    return "\n".join(out).rstrip() + "\n"


def _headline(d: dict[str, Any]) -> list[str]:
    out = ["## Headline", "", "| measure | warmci | against | ratio | goal | met |", "|---|---|---|---|---|---|"]
    n = d.get("noop") or {}
    if not _err(n):
        noop_med = _med(n["noop"].get("doit"))
        r = n["ratios"].get("doit", {})
        out.append(f"| no-op, `doit` | {_s(noop_med)} | forced run {_s(_med(n['forced']))} | "
                   f"{_x(r.get('noop_vs_forced'))} of forced | ≤ {n['goal_seconds']} s | {_ok(r.get('meets_goal'))} |")
        out.append(f"| no-op, `doit` | {_s(noop_med)} | `python -c pass` "
                   f"{_s(_med(n['floor'].get('python -c pass')))} | {_x(r.get('vs_floor'))} of floor | | |")
    inc = d.get("incremental") or {}
    if not _err(inc):
        for name in ("python-source", "js-source", "lockfile"):
            sc = inc.get(name) or {}
            if "wall" not in sc:
                continue
            ran = sc["reran"][0] if sc.get("reran") else []
            out.append(f"| incremental, {name} | {_s(_med(sc['wall']))}, {len(ran)} jobs | forced run "
                       f"{_s(_med(sc.get('forced')))} | "
                       f"{_x(sc.get('vs_forced'))} | only dependents rerun | {_ok(sc.get('ok'))} |")
    c = d.get("cold") or {}
    if not _err(c):
        ratio = _med(c["ratio"])
        met = None if ratio is None else ratio <= c["goal_ratio"]
        out.append(f"| cold | {_s(_med(c['wall']))} | bound {_s(_med(c['bound']))} | {_x(ratio)} | "
                   f"≤ {c['goal_ratio']}× | {_ok(met)} |")
    h = d.get("handoff") or {}
    if not _err(h):
        hm = h.get("handoff_ms") or {}
        out.append(f"| handoff median / max | {_ms(hm.get('median'))} / {_ms(hm.get('max'))} | | | "
                   f"≤ {h['goal_ms']} ms | {_ok(h.get('meets_goal'))} / {_ok(h.get('max_meets_goal'))} |")
    sc = d.get("scaling") or {}
    if not _err(sc) and len(sc.get("sizes") or []) > 1:
        big = sc["sizes"][-1]
        out.append(f"| no-op at {big['files']} files | {_s(_med(big.get('noop')))} | "
                   f"{sc['sizes'][0]['files']} files {_s(_med(sc['sizes'][0].get('noop')))} | "
                   f"{_x(_ratio(_med(big.get('noop')), _med(sc['sizes'][0].get('noop'))))} | | |")
    sw = d.get("switching") or {}
    if not _err(sw) and sw.get("return"):
        ret = sw["return"]["store"]
        off = sw["return"]["off"]
        vs = _x(_ratio(_med(ret["wall"]), _med(off["wall"])))
        out.append(f"| return to a green commit | {_s(_med(ret['wall']))}, reran "
                   f"{sum(len(r['ran']) for r in ret['returns'])} jobs | doit alone {_s(_med(off['wall']))}, reran "
                   f"{sum(len(r['ran']) for r in off['returns'])} | {vs} | "
                   f"≤ {sw['goal_seconds']} s, nothing rerun | {_ok(ret.get('meets_goal'))} |")
        st, al = sw["series"]["store"], sw["series"]["off"]
        out.append(f"| {len(st['runs'])} checkouts on 3 branches: job-seconds | {st['job_seconds']:.1f} s | "
                   f"doit alone {al['job_seconds']:.1f} s | {_x(sw['series'].get('job_seconds_ratio'))} | | |")
        out.append(f"| the same: wall | {_s(st['wall'])} | doit alone {_s(al['wall'])} | "
                   f"{_x(sw['series'].get('wall_ratio'))} | | |")
        for c in sw.get("clone") or []:
            out.append(f"| no-op after a fresh clone, {c['files']} files | {_s(_med(c['noop_after']))} | before the "
                       f"clone {_s(_med(c['noop_before']))} | {_x(c.get('after_vs_before'))} | as before | |")
    return out + [""]


def _switching(d: dict[str, Any]) -> list[str]:
    sw = d.get("switching")
    out = ["## 6. Switching branches: results kept by content, against doit alone", ""]
    if _err(sw):
        return out + [_err(sw) or "", ""]
    assert isinstance(sw, dict)
    out += [f"Branches: b-python edits `{sw['branches']['b-python']}`, b-js edits `{sw['branches']['b-js']}`. "
            "*doit alone* is the same runs with `WARMCI_STORE=off` (each job's last state only).", "",
            "| run | branch | wall | reran | restored |", "|---|---|---|---|---|"]
    for mode, label in (("store", "warmci"), ("off", "doit alone")):
        for r in sw["return"][mode]["returns"]:
            out.append(f"| return ({label}) | {r['branch']} | {_s(r['wall'])} | {len(r['ran'])} | "
                       f"{len(r['restored'])} |")
    out += ["", "| series | checkouts | wall | job-seconds | jobs run | jobs restored |", "|---|---|---|---|---|---|"]
    for mode, label in (("store", "warmci"), ("off", "doit alone")):
        se = sw["series"][mode]
        out.append(f"| {label} | {' → '.join(se['order'])} | {_s(se['wall'])} | {se['job_seconds']:.1f} s | "
                   f"{se['jobs_ran']} | {se['jobs_restored']} |")
    out += ["", "| files | no-op before the clone | first run after it (jobs run, restored) | no-ops after it | "
            "clone elsewhere, same state dir: first run | then |", "|---|---|---|---|---|---|"]
    for c in sw.get("clone") or []:
        first, el = c["first_after_clone"], c["elsewhere_first"]
        out.append(f"| {c['files']} | {_s(_med(c['noop_before']))} | {_s(first['wall'])} ({len(first['ran'])}, "
                   f"{len(first['restored'])}) | {_s(_med(c['noop_after']))} | {_s(el['wall'])} ({len(el['ran'])} "
                   f"run, {len(el['restored'])} restored) | {_s(c['elsewhere_noop']['wall'])} |")
    return out + [""]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _noop(d: dict[str, Any]) -> list[str]:
    n = d.get("noop")
    out = ["## 1. No-op: everything up to date", ""]
    if _err(n):
        return out + [_err(n) or "", ""]
    out += ["| command | median | spread | vs floor | forced ÷ this |", "|---|---|---|---|---|"]
    for name, sm in n["floor"].items():
        out.append(f"| `{name}` | {_s(_med(sm))} | {_spread(sm)} | | |")
    for name, sm in n["noop"].items():
        r = n["ratios"].get(name, {})
        out.append(f"| `{name}` | {_s(_med(sm))} | {_spread(sm)} | {_x(r.get('vs_floor'))} | "
                   f"{_x(r.get('forced_vs_noop'))} |")
    out.append(f"| `doit --always-execute` (run everything) | {_s(_med(n['forced']))} | {_spread(n['forced'])} | | |")
    fb = n.get("forced_vs_bound") or {}
    if _med(fb.get("ratio")) is not None:
        out += ["", f"The forced runs against their own lower bound (as in section 3, but with a warm state dir "
                    f"whose history gives the scheduler real durations): bound {_s(_med(fb['bound']))}, "
                    f"ideal dispatch {_s(_med(fb['list_schedule']))}, wall ÷ bound {_x(_med(fb['ratio']))}."]
    return out + [""]


def _breakdown(d: dict[str, Any]) -> list[str]:
    b = d.get("noop_breakdown")
    out = ["### Where the no-op time goes", ""]
    if _err(b) or not b.get("n"):
        return out + [_err(b) or "no instrumented run succeeded", ""]
    marks = b.get("marks", {})
    out += [f"Instrumented no-op (`python -m bench.phases`, median of {b['n']}): wall "
            f"{_s(_med(b.get('wall')))}, of which in-process {_s(_med(b.get('in_process_total')))}; "
            "the rest is interpreter start and exit.", "",
            "| phase | median |", "|---|---|"]
    for k, v in marks.items():
        out.append(f"| {k} | {_s(v, 'ms', 3)} |")
    for p in b.get("phases", []):
        indent = "&nbsp;&nbsp;&nbsp;&nbsp;↳ " if p.get("parent") else ""
        out.append(f"| {indent}{p['label']} ({p['calls']}×) | {_s(p['median_s'], 'ms', 3)} |")
    imports = b.get("imports") or {}
    if imports.get("top_level"):
        out += ["", f"Imports (`-X importtime`): {imports['modules']} modules, {imports['total_ms']:.1f} ms in all. "
                "Biggest top-level (cumulative): " + ", ".join(
                    f"{r['module']} {r['cumulative_ms']:.1f} ms" for r in imports["top_level"][:8])
                + ". Most costly by themselves: " + ", ".join(
                    f"{r['module']} {r['self_ms']:.1f} ms" for r in imports["heaviest_self"][:8]) + "."]
    top = b.get("cprofile_top") or []
    if top:
        out += ["", "Most own time under cProfile (inflated by profiling; for ranking only): " + ", ".join(
            f"`{r['function']}` {r['own_s'] * 1000:.1f} ms/{r['calls']}" for r in top[:8])]
    return out + [""]


def _incremental(d: dict[str, Any]) -> list[str]:
    inc = d.get("incremental")
    out = ["## 2. Incremental: one file changed", ""]
    if _err(inc):
        return out + [_err(inc) or "", ""]
    out += ["| change | file | jobs that reran | as expected | median | spread | forced run after it | "
            "÷ forced (paired) | wall ÷ bound |", "|---|---|---|---|---|---|---|---|---|"]
    for name in ("python-source", "js-source", "lockfile"):
        sc = inc.get(name) or {}
        if "skipped" in sc:
            out.append(f"| {name} | – | skipped: {sc['skipped']} | | | | | | |")
            continue
        if "wall" not in sc:
            continue
        ran = sorted({j for r in sc.get("reran", []) for j in r})
        out.append(f"| {name} | `{sc['file']}` | {', '.join(ran)} | {_ok(sc.get('ok'))} "
                   f"({'; '.join(sorted(set(sc.get('verdicts', []))))}) | {_s(_med(sc['wall']))} | "
                   f"{_spread(sc['wall'])} | {_s(_med(sc.get('forced')))} | {_x(sc.get('vs_forced'))} | "
                   f"{_x(_med(sc.get('vs_bound')))} |")
    return out + [""]


def _cold(d: dict[str, Any]) -> list[str]:
    c = d.get("cold")
    out = ["## 3. Cold: empty state dir, fresh checkout", ""]
    if _err(c):
        return out + [_err(c) or "", ""]
    out += ["| run | wall | inside the run | critical path | job time ÷ workers | bound | wall ÷ bound | "
            "ideal dispatch |", "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(c.get("runs", [])):
        out.append(f"| {i + 1} | {_s(r['wall_s'])} | {_s(r.get('results_duration_s'))} | {_s(r['critical_path_s'])} | "
                   f"{r['job_seconds']:.3f} ÷ {r['workers']} = {_s(r['spread_s'])} | {_s(r['bound_s'])} | "
                   f"{_x(r['ratio'])} | {_s(r.get('list_schedule_s'))} |")
    if c.get("runs"):
        out += ["", f"Median ratio {_x(_med(c['ratio']))} (inside the run, excluding start-up: "
                    f"{_x(_med(c['ratio_inside_run']))}); critical path of the last run: "
                    + " → ".join(c["runs"][-1]["critical_path"]) + ". *Ideal dispatch* is not a bound: it is "
                    "what a zero-overhead dispatcher starting the ready job with the longest remaining path "
                    "would take with the measured durations; wall above it is overhead or dispatch order.", "",
                    "Timeline of the last cold run (s from the run's start): " + ", ".join(
                        f"{n} {a:.1f}–{b:.1f}" for n, (a, b) in c["runs"][-1].get("timeline", {}).items())]
    return out + [""]


def _handoff(d: dict[str, Any]) -> list[str]:
    h = d.get("handoff")
    out = ["## 4. Handoff: a job finishes, its dependent starts", ""]
    if _err(h):
        return out + [_err(h) or "", ""]
    hm, qm = h.get("handoff_ms") or {}, h.get("queued_ms") or {}
    out += [f"- handoff (a worker was free): median {_ms(hm.get('median'))}, max {_ms(hm.get('max'))}, "
            f"spread {_spread(hm, 'ms')}; goal ≤ {h['goal_ms']} ms",
            f"- queued behind other jobs (no free worker; scheduling, not handoff): {qm.get('n', 0)} pairs, "
            f"median {_ms(qm.get('median'))}",
            f"- from runs: {', '.join(h.get('sources', []))}"]
    if h.get("worst"):
        out.append("- slowest handoffs: " + ", ".join(f"{p['after']} → {p['job']} {p['gap_ms']:.1f} ms ({p['source']})"
                                                    for p in h["worst"]))
    return out + [""]


def _scaling(d: dict[str, Any]) -> list[str]:
    sc = d.get("scaling")
    out = ["## 5. Scaling: cost as the target grows (synthetic target, 9 jobs)", ""]
    if _err(sc):
        return out + [_err(sc) or "", ""]
    out += ["| files | job×file pairs | cold | no-op | `doit list` | `doit info lint-py` | "
            "no-op after new mtimes (1st, 2nd) | walk | match inputs | up-to-date checks |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sc.get("sizes", []):
        ph = r.get("phases") or {}
        touched = ", ".join(_s(x) for x in r.get("touched_noop_s", []))
        out.append(f"| {r['files']} | {r['job_file_pairs']} | {_s(r.get('cold_s'))} | {_s(_med(r.get('noop')))} | "
                   f"{_s(_med(r.get('list')))} | {_s(_med(r.get('info')))} | {touched} | "
                   f"{_s(ph.get('walk target'), 'ms', 3)} | {_s(ph.get('match inputs'), 'ms', 3)} | "
                   f"{_s(ph.get('up-to-date checks'), 'ms', 3)} |")
    return out + [""]
