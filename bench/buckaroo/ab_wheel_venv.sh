#!/bin/bash
# A clean venv with WHEEL[mcp] under the lock's constraints: bytecode compiled at install (UV_COMPILE_BYTECODE=1,
# what warmci did) against not compiled (what it does), interleaved; then the time of the first and of a second
# `import buckaroo.server.app` with bytecode writing on.
#   bench/buckaroo/ab_wheel_venv.sh WHEEL ~/src/buckaroo PYTHON3.13 [ROUNDS]
set -euo pipefail
runner=$(cd "$(dirname "$0")/../.." && pwd)
wheel=$(realpath "$1") target=$2 python=$3 rounds=${4:-2}
uv=$runner/.tools/bin/uv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$target" && "$uv" export --locked --no-hashes --all-extras --all-groups --no-emit-project \
   --format requirements-txt --quiet -o "$work/cons.txt")
now() { python3 -c 'import time; print(f"{time.time():.3f}")'; }
for i in $(seq "$rounds"); do for v in lazy compile; do
  "$uv" venv --quiet --clear --python "$python" "$work/$v"
  s=$(now)
  if [ "$v" = compile ]; then export UV_COMPILE_BYTECODE=1; else unset UV_COMPILE_BYTECODE; fi
  "$uv" pip install --quiet --python "$work/$v/bin/python" "${wheel}[mcp]" -c "$work/cons.txt"
  unset UV_COMPILE_BYTECODE
  e=$(now)
  PYTHONDONTWRITEBYTECODE="" "$work/$v/bin/python" -c "from buckaroo.server.app import make_app" 2>/dev/null; e2=$(now)
  PYTHONDONTWRITEBYTECODE="" "$work/$v/bin/python" -c "from buckaroo.server.app import make_app" 2>/dev/null; e3=$(now)
  python3 -c "print('$i $v install', round($e-$s, 1), 'first import', round($e2-$e, 1), 'second import', round($e3-$e2, 1), 'load', open('/proc/loadavg').read().split()[0])"
done; done
