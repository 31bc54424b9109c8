"""Gantt charts (PNG) of runs, drawn from their results.json.

One run: a bar per job from its start to its end, coloured by status, the
critical path outlined and linked, up-to-date jobs as ticks, CPU and memory
use beneath on the same time axis. Two runs: both on one time axis (each
from its own start), a pair of bars per job, to see what an ordering or a
change did. matplotlib is imported here only, so `doit list` never pays
for it.
"""
from __future__ import annotations

import json
import os
from typing import Any

from warmci.run.critpath import job_ran
from warmci.status import Status

COLOURS: dict[str, str] = {
    Status.PASSED: "#43a047", Status.FAILED: "#e53935", Status.ERRORED: "#8e24aa", Status.TIMED_OUT: "#fb8c00",
    Status.CANCELLED: "#6d4c41", Status.SKIPPED: "#9e9e9e", Status.UP_TO_DATE: "#64b5f6",
    Status.RESTORED: "#26a69a", Status.NOT_RUN: "#bdbdbd", Status.FILTERED: "#e0e0e0",
}
ROW = 0.32  # inches per job row


def load(path: str) -> dict[str, Any]:
    """results.json from its path, a run directory, or a state directory (its latest run)."""
    for cand in (path, os.path.join(path, "results.json"), os.path.join(path, "runs", "latest", "results.json")):
        if os.path.isfile(cand):
            with open(cand) as fh:
                data: dict[str, Any] = json.load(fh)
            return data
    raise FileNotFoundError(f"no results.json at {path} (nor in it, nor in its runs/latest)")


def render(results: dict[str, Any], out: str) -> None:
    """One run's chart."""
    plt = pyplot()
    _save(figure(plt, results), plt, out)


def figure(plt: Any, results: dict[str, Any]) -> Any:
    """One run's chart as a matplotlib figure."""
    rows = _rows([results])
    fig, (ax, res) = plt.subplots(2, 1, sharex=True, figsize=(11, 1.9 + ROW * len(rows) + 1.5),
                                  gridspec_kw={"height_ratios": [max(ROW * len(rows), 1.2), 1.3]})
    _bars(ax, results, rows, offset=0.0, height=0.64)
    _finish_rows(ax, rows)
    _resources(res, [results], ["-"])
    ax.set_title(_title(results), fontsize=10, loc="left")
    _place_legend(ax, [results])
    return fig


def compare(a: dict[str, Any], b: dict[str, Any], out: str) -> None:
    """Two runs on one time axis (seconds since each run's start): A solid, B hatched."""
    plt = pyplot()
    rows = _rows([a, b])
    fig, (ax, res) = plt.subplots(2, 1, sharex=True, figsize=(11, 2.1 + 1.5 * ROW * len(rows) + 1.5),
                                  gridspec_kw={"height_ratios": [max(1.5 * ROW * len(rows), 1.2), 1.3]})
    _bars(ax, a, rows, offset=-0.21, height=0.38)
    _bars(ax, b, rows, offset=0.21, height=0.38, hatch="////")
    _finish_rows(ax, rows)
    for run, style in ((a, "-"), (b, "--")):
        ax.axvline(run["duration"], color="black", linestyle=style, linewidth=0.8)
        res.axvline(run["duration"], color="black", linestyle=style, linewidth=0.8)
    _resources(res, [a, b], ["-", "--"])
    ax.set_title(f"A (solid, upper bar): {_title(a)}\nB (hatched, lower bar): {_title(b)}", fontsize=9, loc="left")
    _place_legend(ax, [a, b])
    _save(fig, plt, out)


# -- pieces ---------------------------------------------------------------
def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    return plt


def _rows(runs: list[dict[str, Any]]) -> list[str]:
    """Jobs that ran, by earliest start; then the others (up to date, not run), by name."""
    first: dict[str, float] = {}
    for run in runs:
        for name, job in run["jobs"].items():
            if job_ran(job) and job.get("start") is not None:
                t = job["start"] - run["start"]
                first[name] = min(first.get(name, t), t)
    others = sorted({n for run in runs for n in run["jobs"]} - set(first))
    return sorted(first, key=lambda n: first[n]) + others


def _critical(run: dict[str, Any]) -> list[str]:
    return [e["job"] for e in (run.get("critical_path") or {}).get("jobs", [])]


def _bars(ax: Any, run: dict[str, Any], rows: list[str], offset: float, height: float, hatch: str = "") -> None:
    t0 = run["start"]
    critical = _critical(run)
    for y, name in enumerate(rows):
        job = run["jobs"].get(name)
        if job is None:
            continue
        status = Status.of(job.get("status"))
        colour = COLOURS.get(status or "", "#bdbdbd")
        yy = y + offset
        if job_ran(job) and job.get("start") is not None and job.get("end") is not None:
            crit = name in critical
            ax.barh(yy, job["end"] - job["start"], left=job["start"] - t0, height=height, color=colour,
                    hatch=hatch, edgecolor="black" if crit else "white", linewidth=1.8 if crit else 0.5)
            ax.text(job["end"] - t0 + 0.05, yy, f"{job['end'] - job['start']:.1f} s", va="center", fontsize=7)
        elif status == Status.UP_TO_DATE and job.get("start") is not None:
            ax.plot([job["start"] - t0], [yy], marker="|", markersize=9, color=colour, markeredgewidth=2)
            ax.text(job["start"] - t0 + 0.05, yy, "up to date", va="center", fontsize=7, color="#1e88e5")
        else:
            ax.text(0.05, yy, f"{status}: {job.get('reason', '')}"[:90], va="center", fontsize=7, color="#616161")
    # The critical path as a chain: each job's end linked to the next one's start.
    ys = {n: i + offset for i, n in enumerate(rows)}
    for prev, nxt in zip(critical, critical[1:], strict=False):
        p, n = run["jobs"][prev], run["jobs"][nxt]
        ax.plot([p["end"] - t0, n["start"] - t0], [ys[prev], ys[nxt]], color="black", linewidth=1, linestyle=":")


def _finish_rows(ax: Any, rows: list[str]) -> None:
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first job on top
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)


def _resources(ax: Any, runs: list[dict[str, Any]], styles: list[str]) -> None:
    mem_ax = ax.twinx()
    for run, style in zip(runs, styles, strict=True):
        samples = (run.get("resources") or {}).get("samples") or []
        if not samples:
            continue
        ts = [s[0] - run["start"] for s in samples]
        ax.plot(ts, [s[1] for s in samples], color="#d84315", linestyle=style, linewidth=1.2)
        if style == "-":
            ax.fill_between(ts, [s[1] for s in samples], color="#ffab91", alpha=0.4)
        mem_ax.plot(ts, [s[2] / 1024 for s in samples], color="#3949ab", linestyle=style, linewidth=1)
    ax.set_ylim(0, 105)
    ax.set_ylabel("CPU % (all cores)", color="#d84315", fontsize=8)
    mem_ax.set_ylabel("memory used (GB)", color="#3949ab", fontsize=8)
    mem_ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since the run started", fontsize=8)
    ax.set_xlim(left=0)
    ax.tick_params(labelsize=8)
    mem_ax.tick_params(labelsize=8)


def _title(run: dict[str, Any]) -> str:
    # A run of uncommitted changes tested something no commit holds: the SHA alone would claim otherwise.
    sha = (run.get("sha") or "")[:10]
    if sha and run.get("dirty"):
        sha += " + uncommitted changes"
    where = " ".join(x for x in (sha, run.get("branch") or "") if x)
    cp = run.get("critical_path") or {}
    return (f"{run['run_id']}  {run['status']} in {run['duration']:.1f} s"
            f"  (order {run.get('order', '?')}, critical path {cp.get('duration', 0):.1f} s)"
            + (f"  {where}" if where else ""))


def _place_legend(ax: Any, runs: list[dict[str, Any]]) -> None:
    """Beside the bars, right of the axes: over them it would hide the rows it explains."""
    ax.legend(handles=_legend(runs), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, ncol=1,
              framealpha=0.9, borderaxespad=0.0)


def _legend(runs: list[dict[str, Any]]) -> list[Any]:
    from matplotlib.patches import Patch

    present = {Status.of(j.get("status")) for run in runs for j in run["jobs"].values()}
    handles = [Patch(color=c, label=s) for s, c in COLOURS.items() if s in present]
    handles.append(Patch(facecolor="white", edgecolor="black", linewidth=1.8, label="critical path"))
    return handles


def _save(fig: Any, plt: Any, out: str) -> None:
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80, bbox_inches="tight")
    plt.close(fig)
