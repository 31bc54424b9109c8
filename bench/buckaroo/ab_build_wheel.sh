#!/bin/bash
# build-wheel, A (full_build.sh) against B (job_scripts/buckaroo_build.py), interleaved in one state dir
# (build-js up to date, so only build-wheel runs), N pairs; prints each run's duration, steps, phases and
# the wheel's normalized digest (the same digest both ways = the same wheel).
#   bench/buckaroo/ab_build_wheel.sh ~/src/buckaroo STATE_DIR [PAIRS]
set -euo pipefail
runner=$(cd "$(dirname "$0")/../.." && pwd)
target=$1 state=$2 pairs=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$runner/profiles/buckaroo.toml" "$work/B.toml"
sed 's#"python3", "{runner}/job_scripts/buckaroo_build.py"#"bash", "scripts/full_build.sh"#' "$work/B.toml" > "$work/A.toml"
cd "$runner"
for i in $(seq "$pairs"); do for v in A B; do
  id=ab-$i-$v-$(date +%H%M%S)
  echo "== $id load $(cut -d' ' -f1-3 /proc/loadavg)"
  WARMCI_RUN_ID=$id .venv/bin/python -m doit -f dodo.py target="$target" pipeline="$work/$v.toml" state="$state" build-wheel > /dev/null || true
  .venv/bin/python - "$state" "$id" <<'PY'
import glob, json, sys
from warmci.inputs import wheelkey
state, rid = sys.argv[1:]
j = json.load(open(f"{state}/runs/{rid}/results.json"))["jobs"]["build-wheel"]
w = glob.glob(f"{state}/artifacts/build-wheel/*.whl")
print(rid, j["status"], j["duration"], [(s["name"], s["duration"]) for s in j["steps"]],
      [(p["name"], p["seconds"]) for s in j["steps"] for p in s.get("phases", [])],
      w and wheelkey.digest(w[0])[:16], w and w[0].rsplit("/", 1)[-1])
PY
done; done
