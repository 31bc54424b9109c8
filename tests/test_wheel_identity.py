"""The wheel's identity downstream: a version that only encodes the commit or the date reruns nothing,
any change to what the wheel holds reruns every job that installs it.

The target is a real git repository whose package takes its version from git
(hatchling + hatch-vcs from the package index, built by `uv build`).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from warmci.inputs import toolversions, wheelkey

from .helpers import git, make_repo, run_doit

PYPROJECT = """
[build-system]
requires = ["hatchling", "hatch-vcs"]
build-backend = "hatchling.build"

[project]
name = "vcs-demo"
dynamic = ["version"]
requires-python = ">=3.11"

[project.scripts]
vcs-demo = "vcs_demo:main"

[tool.hatch.version]
source = "vcs"

[tool.hatch.build.targets.wheel]
packages = ["src/vcs_demo"]
"""

PIPELINE = """
[python]
versions = ["3.13"]
sync = ["uv", "sync", "--locked"]

[jobs.build-wheel]
kind = "wheel"
cmd = ["uv", "build", "--wheel", "--quiet", "--out-dir", "{out}"]
inputs = ["src/**", "pyproject.toml", "NOTES.md"]

[jobs.use-wheel]
kind = "smoke"
wheel = { python = "3.13" }
steps = [{ name = "import", cmd = ["python", "-c", "import vcs_demo; print('greeting:', vcs_demo.GREETING)"] }]

[jobs.notes]
cmd = ["{py}", "-c", "print(open('NOTES.md').read())"]
inputs = ["NOTES.md"]
""".replace("{py}", sys.executable)

FILES = {
    "pyproject.toml": PYPROJECT,
    "warmci.toml": PIPELINE,
    "NOTES.md": "notes\n",
    "src/vcs_demo/__init__.py": "GREETING = 'hello'\n\n\ndef main() -> None:\n    print(GREETING)\n",
    ".gitignore": "dist/\n.venv/\n",
}


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for rel, text in files.items():
        (repo / rel).write_text(text)
    git(repo, "commit", "-q", "-am", message)


def uv() -> str:
    found = toolversions.executable("uv")
    assert found, "uv is missing: ./bootstrap installs it"
    return found


@pytest.fixture
def vcs_target(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "target", FILES)
    # Locking builds the package's metadata, which hatch-vcs reads from git: the lock joins the first commit.
    subprocess.run([uv(), "lock", "--quiet"], cwd=repo, check=True, capture_output=True, timeout=300)
    git(repo, "add", "uv.lock")
    git(repo, "commit", "-q", "--amend", "--no-edit")
    git(repo, "tag", "v0.1.0")
    return repo


def build(repo: Path, out: Path) -> Path:
    """A wheel of the repository as it is now (hatch-vcs reads the version from git)."""
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([uv(), "build", "--wheel", "--quiet", "--out-dir", str(out)], cwd=repo, check=True,
                   capture_output=True, text=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    return wheel


def rewrite(src: Path, dst: Path, change: dict[str, bytes | None] | None = None,
            rename: tuple[str, str] | None = None, mode: dict[str, int] | None = None) -> Path:
    """A copy of a wheel with members replaced (None: removed), a string renamed in member names, or modes set."""
    change, mode = change or {}, mode or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in change:
                new = change[info.filename]
                if new is None:
                    continue
                data = new
            if info.filename in mode:
                info.external_attr = mode[info.filename] << 16
            if rename:
                info.filename = info.filename.replace(*rename)
            zout.writestr(info, data)
    return dst


def test_versions_from_git_give_one_key_and_content_changes_another(vcs_target: Path, tmp_path: Path) -> None:
    tagged = build(vcs_target, tmp_path / "w1")
    assert tagged.name == "vcs_demo-0.1.0-py3-none-any.whl"
    commit(vcs_target, {"NOTES.md": "more notes\n"}, "notes only")
    next_commit = build(vcs_target, tmp_path / "w2")
    (vcs_target / "NOTES.md").write_text("uncommitted\n")
    dirty = build(vcs_target, tmp_path / "w3")
    versions = {w.name.split("-")[1] for w in (tagged, next_commit, dirty)}
    assert len(versions) == 3 and any(".d" in v for v in versions), versions  # the commit, then the date too
    assert tagged.read_bytes() != next_commit.read_bytes()
    assert len({wheelkey.digest(str(w)) for w in (tagged, next_commit, dirty)}) == 1
    assert len({wheelkey.normalized_name(w.name) for w in (tagged, next_commit, dirty)}) == 1
    assert wheelkey.normalized_name(tagged.name) == "vcs_demo-{version}-py3-none-any.whl"

    commit(vcs_target, {"src/vcs_demo/__init__.py": FILES["src/vcs_demo/__init__.py"] + "# a comment\n"}, "code")
    changed = build(vcs_target, tmp_path / "w4")
    assert wheelkey.digest(str(changed)) != wheelkey.digest(str(tagged))


def test_every_part_of_a_wheel_but_its_version_counts(vcs_target: Path, tmp_path: Path) -> None:
    wheel = build(vcs_target, tmp_path / "w")
    base = wheelkey.digest(str(wheel))
    meta = "vcs_demo-0.1.0.dist-info/METADATA"
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(meta)
    assert b"Version: 0.1.0" in metadata
    variants = {
        "a new dependency": rewrite(wheel, tmp_path / "dep.whl", {meta: metadata + b"Requires-Dist: six\n"}),
        "a module's bytes": rewrite(wheel, tmp_path / "mod.whl", {"vcs_demo/__init__.py": b"GREETING = 'hi'\n"}),
        "an executable bit": rewrite(wheel, tmp_path / "x.whl", mode={"vcs_demo/__init__.py": 0o755}),
        "an entry point": rewrite(wheel, tmp_path / "ep.whl", {
            "vcs_demo-0.1.0.dist-info/entry_points.txt": b"[console_scripts]\nother = vcs_demo:main\n"}),
        "a file removed": rewrite(wheel, tmp_path / "rm.whl", {"vcs_demo/__init__.py": None}),
    }
    for what, variant in variants.items():
        assert wheelkey.digest(str(variant)) != base, what
    # The same wheel with another version everywhere a version is (names, METADATA, RECORD): same key.
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read("vcs_demo-0.1.0.dist-info/RECORD")
    other = rewrite(wheel, tmp_path / "vcs_demo-9.9.9-py3-none-any.whl", {
        meta: metadata.replace(b"Version: 0.1.0", b"Version: 9.9.9"),
        "vcs_demo-0.1.0.dist-info/RECORD": record.replace(b"0.1.0", b"9.9.9")}, rename=("0.1.0", "9.9.9"))
    assert wheelkey.digest(str(other)) == base


def test_not_a_wheel_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "pkg-1.0-py3-none-any.whl"
    bad.write_text("not a zip")
    with pytest.raises(wheelkey.BadWheel, match="pkg-1.0-py3-none-any.whl: not a readable zip"):
        wheelkey.digest(str(bad))
    with pytest.raises(wheelkey.BadWheel, match="nonsense.whl"):
        wheelkey.normalized_name("nonsense.whl")


def test_downstream_of_the_wheel_reruns_on_content_only(vcs_target: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = run_doit(vcs_target, state)
    install = "install-python-deps-3.13"
    assert first.rc == 0 and first.executed == {"build-wheel", "use-wheel", "notes", install}, first
    # Not compiled at install: what the job imported was compiled into a cache of its own, nothing into the venv.
    work = state / "work" / "use-wheel"
    assert list((work / "pycache").rglob("vcs_demo/__init__.cpython-313.pyc"))
    assert not list((work / "venv").rglob("__pycache__/*.pyc"))

    # A new commit that changes an input of the build but nothing in the wheel: a new version, same content.
    commit(vcs_target, {"NOTES.md": "more notes\n"}, "notes only")
    second = run_doit(vcs_target, state)
    assert second.rc == 0 and second.executed == {"build-wheel", "notes"}, second
    assert second.uptodate == {"use-wheel", install}, second
    (wheel,) = (state / "artifacts" / "build-wheel").glob("*.whl")
    assert "+g" in wheel.name, wheel.name  # hatch-vcs did give it a new version

    # An uncommitted edit: the version gains a date; still nothing downstream.
    (vcs_target / "NOTES.md").write_text("uncommitted\n")
    dirty = run_doit(vcs_target, state)
    assert dirty.rc == 0 and dirty.executed == {"build-wheel", "notes"} and "use-wheel" in dirty.uptodate, dirty
    git(vcs_target, "checkout", "NOTES.md")

    # The wheel's content changes: every job that installs it reruns, and sees the new content.
    commit(vcs_target, {"src/vcs_demo/__init__.py": "GREETING = 'howdy'\n\n\ndef main() -> None:\n    pass\n"},
           "code")
    third = run_doit(vcs_target, state)
    # (notes: NOTES.md is back to its committed text, whose success the result store restores)
    assert third.rc == 0 and third.executed == {"build-wheel", "use-wheel"}, third
    assert third.uptodate == {install} and third.jobs("restored") == {"notes"}, third
    log = Path(third.results["jobs"]["use-wheel"]["log"]).read_text()  # type: ignore[index]
    assert "greeting: howdy" in log
    reasons = " ".join(r["text"] for r in third.results["jobs"]["use-wheel"]["why"])  # type: ignore[index]
    assert "build-wheel.key.json of build-wheel changed" in reasons, reasons
