#!/usr/bin/env bash
# Sweep scheduler overhead (issue 4 benchmark): N children of a no-op script at
# concurrency 2 through `azml run submit-hyperdrive`, against N bare spawns of
# the same command at concurrency 2 (xargs -P 2). Reports the extra wall time
# per child for N = 100 and N = 500 (it must not grow with N), median of ROUNDS.
# Goal: at most 1 ms per child beyond the spawn. Also reports the CPU time
# (user+sys, azml and its children) per child beyond the bare spawns, which
# a busy machine distorts far less than wall time.
#
#   benches/sweep_overhead.sh                 # release build
#   SIZES="50" PROFILE=debug benches/sweep_overhead.sh
#   AZML_BIN=/path/to/azml benches/sweep_overhead.sh   # skip the build (A/B two builds)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-100 500}"
ROUNDS="${ROUNDS:-5}"   # bare and sweep alternate, so load changes hit both; single rounds vary by ±0.7 ms/child
PROFILE="${PROFILE:-release}"
if [ -n "${AZML_BIN:-}" ]; then
  AZML="$(cd "$(dirname "$AZML_BIN")" && pwd)/$(basename "$AZML_BIN")"
elif [ "$PROFILE" = release ]; then
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
mkdir "$work/src"
cd "$work/src"          # the source folder holds only the script; workspaces live beside it
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
  per_round=()
  for r in $(seq "$ROUNDS"); do
    export AZML_LOCAL_WORKSPACE="$work/ws-$n-$r"
    t0=$(now_us)
    /usr/bin/time -f "%U %S" -o "$work/cpu-bare" sh -c "seq $n | xargs -P 2 -I{} '$PY' noop.py --x 0.{} >/dev/null"
    t1=$(now_us)
    /usr/bin/time -f "%U %S" -o "$work/cpu-sweep" \
      "$AZML" run submit-hyperdrive -e bench --hyperdrive-configuration-name hd.yml noop.py >/dev/null 2>&1
    t2=$(now_us)
    cb=$(awk '{print $1 + $2}' "$work/cpu-bare") cs=$(awk '{print $1 + $2}' "$work/cpu-sweep")
    awk -v n="$n" -v r="$r" -v b=$((t1 - t0)) -v s=$((t2 - t1)) -v cb="$cb" -v cs="$cs" 'BEGIN {
      printf "  N=%-4d round %d: bare spawns %7.0f ms   sweep %7.0f ms   wall overhead %6.2f ms/child   CPU overhead %5.2f ms/child\n",
        n, r, b / 1000, s / 1000, (s - b) / 1000 / n, (cs - cb) * 1000 / n }'
    per_round+=($(( (t2 - t1 - (t1 - t0)) / n )))
  done
  printf '%s\n' "${per_round[@]}" | sort -n | awk -v n="$n" '{a[NR]=$1} END {
    printf "  N=%-4d median overhead %.2f ms/child (goal <= 1 ms)\n", n, a[int((NR+1)/2)] / 1000 }'
done
