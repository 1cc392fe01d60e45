#!/usr/bin/env bash
# Sweep scheduler overhead (issue 4 benchmark): N children of a no-op script at
# concurrency 2 through `azml run submit-hyperdrive`, against N bare spawns of
# the same command at concurrency 2 (xargs -P 2). Reports the extra wall time
# per child for N = 100 and N = 500 (it must not grow with N).
# Goal: at most 1 ms per child beyond the spawn.
#
#   benches/sweep_overhead.sh                 # release build
#   SIZES="50" PROFILE=debug benches/sweep_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-100 500}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then
  cargo build --release -q --bin azml
  AZML="$PWD/target/release/azml"
else
  cargo build -q --bin azml
  AZML="$PWD/target/debug/azml"
fi
PY="$(command -v python3)"
PY="$("$PY" -c 'import sys; print(sys.executable)')"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
: > noop.py
export PATH="$(dirname "$PY"):$PATH"
unset MLFLOW_TRACKING_URI MLFLOW_RUN_ID

now_us() { echo $(( $(date +%s%N) / 1000 )); }

echo "sweep scheduler overhead ($PROFILE, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
for n in $SIZES; do
  cat > hd.yml <<YML
sampling:
  type: random
  parameter_space:
  - {name: x, expression: uniform, values: [0, 1]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: maximize
max_total_runs: $n
max_concurrent_runs: 2
YML
  export AZML_LOCAL_WORKSPACE="$work/ws-$n"
  t0=$(now_us)
  seq "$n" | xargs -P 2 -I{} "$PY" noop.py --x 0.{} >/dev/null
  t1=$(now_us)
  "$AZML" run submit-hyperdrive -e bench --hyperdrive-configuration-name hd.yml noop.py >/dev/null 2>&1
  t2=$(now_us)
  awk -v n="$n" -v b=$((t1 - t0)) -v s=$((t2 - t1)) 'BEGIN {
    printf "  N=%-4d bare spawns %7.0f ms   sweep %7.0f ms   overhead %.2f ms/child (goal <= 1 ms)\n",
      n, b / 1000, s / 1000, (s - b) / 1000 / n }'
done
