"""The whole key names files by root and relative path: no machine path in it."""
from __future__ import annotations

from warmci.inputs import key


def test_file_ref_uses_the_deepest_root() -> None:
    roots = {"runner": "/r", "target": "/r/examples/demo", "state": "/s"}
    assert key.file_ref("/r/examples/demo/src/a.py", roots) == "target:src/a.py"
    assert key.file_ref("/r/job_scripts/x.py", roots) == "runner:job_scripts/x.py"
    assert key.file_ref("/s/artifacts/w.json", roots) == "state:artifacts/w.json"
    assert key.file_ref("/elsewhere/f", roots) == "/elsewhere/f"
    assert key.file_ref("/r/examples/demo-other/f", roots) == "runner:examples/demo-other/f"


def test_same_content_elsewhere_same_key() -> None:
    files = {"target:a.py": "1" * 64, "target:b.py": "2" * 64 + "+x"}
    k1, _ = key.job_key("j", {"tools": {"uv": "1"}}, files, {})
    k2, _ = key.job_key("j", {"tools": {"uv": "1"}}, dict(reversed(list(files.items()))), {})
    assert k1 == k2


def test_every_part_changes_the_key() -> None:
    base = ("j", {"tools": {"uv": "1"}}, {"target:a.py": "1" * 64}, {"dep": "k" * 64})
    k0, p0 = key.job_key(*base)
    variants = [("other", *base[1:]), (base[0], {"tools": {"uv": "2"}}, *base[2:]),
                (*base[:2], {"target:a.py": "1" * 64 + "+x"}, base[3]),
                (*base[:2], {"target:a.py": "1" * 64, "target:new.py": "3" * 64}, base[3]),
                (*base[:3], {"dep": "m" * 64})]
    keys = {key.job_key(*v)[0] for v in variants}
    assert k0 not in keys and len(keys) == len(variants)
    assert set(p0) == {"config", "files", "needs"}
