"""Write the service config from docker/config.example.toml and KEY=VALUE files.

    python3 docker/render-config.py ENV_FILE... > config.toml

Later files win over earlier ones, the environment over both. A line whose
`${VAR}` is empty is left out (the key then takes its default); a variable
that is not set at all is an error naming it. Standard library only: it runs
on a fresh server's python3.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "config.example.toml"
VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
# Settings a one-host deployment never sets: unset means empty (the line is left out).
OPTIONAL = ("WARMCI_ENGINE", "WARMCI_HOST_NAME")


def read_env_file(path: str) -> dict[str, str]:
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SystemExit(f"render-config: {path}:{n}: expected KEY=VALUE, got {line!r}")
        out[key] = value.strip().strip("'\"")
    return out


def render(template: str, values: dict[str, str]) -> str:
    lines = []
    for n, line in enumerate(template.splitlines(), 1):
        names = VAR.findall(line)
        missing = [v for v in names if v not in values]
        if missing:
            raise SystemExit(f"render-config: {TEMPLATE.name}:{n} needs {', '.join(missing)}; set it in the env file")
        if any(not values[v] for v in names):
            continue
        for v in names:
            if '"' in values[v] or "\\" in values[v] or "\n" in values[v]:
                raise SystemExit(f"render-config: {v} must not contain quotes, backslashes or newlines")
        lines.append(VAR.sub(lambda m: values[m.group(1)], line))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    values: dict[str, str] = dict.fromkeys(OPTIONAL, "")
    for path in argv:
        values.update(read_env_file(path))
    values.update({k: v for k, v in os.environ.items() if k.startswith("WARMCI_")})
    sys.stdout.write(render(TEMPLATE.read_text(), values))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
