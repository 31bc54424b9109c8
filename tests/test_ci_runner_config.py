"""The service's configuration: every bad value is an error at start-up naming its key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ci_runner import RUNNER_ROOT, config
from ci_runner.errors import ConfigError
from testing.ci_service import SECRET, TOKEN, ServiceConfig

ENV = {"WARMCI_WEBHOOK_SECRET": SECRET, "WARMCI_GITHUB_TOKEN": TOKEN}


def write(tmp_path: Path, service: dict[str, Any] | None = None, repo: dict[str, Any] | None = None,
          name: str = "o/demo") -> Path:
    table = {"clone_url": "https://github.com/o/demo.git", "checkout_dir": tmp_path / "co",
             "state_dir": tmp_path / "st"}
    table.update(repo or {})
    cfg = ServiceConfig(tmp_path / "ci.toml", tmp_path / "svc", port=8080, service=service or {},
                        repos={name: {k: v for k, v in table.items() if v is not None}})
    return cfg.write()


def test_a_good_config_loads_with_defaults(tmp_path: Path) -> None:
    c = config.load(write(tmp_path, repo={"pipeline": "buckaroo", "trusted_authors": ["Alice"]}), ENV)
    assert (c.host, c.port, c.workers, c.status_context) == ("127.0.0.1", 8080, 1, "warmci")
    assert c.public_url == "https://ci.example.org" and c.run_url(7) == "https://ci.example.org/runs/7"
    repo = c.repo("O/Demo")  # GitHub's names are case-insensitive
    assert repo is not None and repo.protected_branches == ("main",) and repo.trusted_authors == ("alice",)
    assert repo.pipeline == "buckaroo" and repo.checkout_dir == (tmp_path / "co").resolve()
    assert c.secrets.github_api == config.DEFAULT_API and c.secrets.values() == (SECRET, TOKEN)


@pytest.mark.parametrize(("service", "repo", "key", "words"), [
    ({"port": 0}, {}, "service.port", "from 1 to 65535"),
    ({"port": "8080"}, {}, "service.port", "expected int"),
    ({"workers": 0}, {}, "service.workers", "from 1"),
    ({"public_url": "ci.example.org"}, {}, "service.public_url", "http(s) URL"),
    ({"public_url": "https://u:p@ci.example.org"}, {}, "service.public_url", "no credentials"),
    ({"cancel_grace": -1}, {}, "service.cancel_grace", "positive"),
    ({"log_level": "loud"}, {}, "service.log_level", "one of"),
    ({"job_statuses": "yes"}, {}, "service.job_statuses", "expected bool"),
    ({"max_body_byte": 10}, {}, "service.max_body_byte", "unknown key"),
    ({}, {"clone_url": "https://x:ghp_secret@github.com/o/demo.git"}, "repos.o/demo.clone_url", "credentials"),
    ({}, {"clone_url": "not a url"}, "repos.o/demo.clone_url", "expected"),
    ({}, {"clone_url": None}, "repos.o/demo.clone_url", "is required"),
    ({}, {"checkout_dir": str(RUNNER_ROOT / "x")}, "repos.o/demo.checkout_dir", "runner's own tree"),
    ({}, {"state_dir": "CHECKOUT/state"}, "repos.o/demo.state_dir", "overlaps"),
    ({}, {"pipeline": "no-such-profile"}, "repos.o/demo.pipeline", "no profile named"),
    ({}, {"protected_branches": "main"}, "repos.o/demo.protected_branches", "expected list"),
    ({}, {"protected_branches": ["main", 3]}, "repos.o/demo.protected_branches", "list of non-empty strings"),
    ({}, {"trusted_author": ["a"]}, "repos.o/demo.trusted_author", "unknown key"),
])
def test_each_bad_value_names_its_key(tmp_path: Path, service: dict[str, Any], repo: dict[str, Any], key: str,
                                      words: str) -> None:
    repo = {k: (str(tmp_path / "co" / "state") if v == "CHECKOUT/state" else v) for k, v in repo.items()}
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, service, repo), ENV)
    assert err.value.key == key and words in str(err.value), str(err.value)
    assert "ghp_secret" not in str(err.value)


def test_a_bad_repository_name_and_no_repository_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"repos\.not-a-repo: expected a GitHub repository"):
        config.load(write(tmp_path, name="not-a-repo"), ENV)
    (tmp_path / "empty.toml").write_text('[service]\npublic_url = "https://x.org"\nstate_dir = "s"\n')
    with pytest.raises(ConfigError, match="no repository configured"):
        config.load(tmp_path / "empty.toml", ENV)


def test_missing_file_and_bad_toml_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", ENV)
    (tmp_path / "bad.toml").write_text("[service\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(tmp_path / "bad.toml", ENV)


@pytest.mark.parametrize(("env", "var"), [
    ({"WARMCI_GITHUB_TOKEN": TOKEN}, "WARMCI_WEBHOOK_SECRET"),
    ({"WARMCI_WEBHOOK_SECRET": "  ", "WARMCI_GITHUB_TOKEN": TOKEN}, "WARMCI_WEBHOOK_SECRET"),
    ({"WARMCI_WEBHOOK_SECRET": SECRET}, "WARMCI_GITHUB_TOKEN"),
    ({**ENV, "WARMCI_GITHUB_API": "ftp://x"}, "WARMCI_GITHUB_API"),
])
def test_secrets_come_from_the_environment_and_are_required_to_serve(tmp_path: Path, env: dict[str, str],
                                                                     var: str) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigError) as err:
        config.load(path, env)
    assert err.value.key == var
    # The operator commands only need the queue, not the secrets.
    assert config.load(path, {}, need_secrets=False).secrets.webhook_secret == ""
