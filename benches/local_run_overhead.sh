#!/usr/bin/env bash
# Overhead of a local run (issue 3 benchmark): `azml run submit-script noop.py`
# against `python3 noop.py`, alternating the two so machine load hits both alike.
# Reports medians in milliseconds. Goal: at most 30 ms extra.
#
#   benches/local_run_overhead.sh            # release build, 30 rounds
#   N=10 PROFILE=debug benches/local_run_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-30}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then
  cargo build --release -q --bin azml
  AZML="$PWD/target/release/azml"
else
  cargo build -q --bin azml
  AZML="$PWD/target/debug/azml"
fi
PY="$(command -v python3)"
# A pyenv-style shim would add its own startup to both sides; use the real binary.
PY="$("$PY" -c 'import sys; print(sys.executable)')"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
: > noop.py
export PATH="$(dirname "$PY"):$PATH" AZML_LOCAL_WORKSPACE="$work/ws"
unset MLFLOW_TRACKING_URI MLFLOW_RUN_ID

now_us() { echo $(( $(date +%s%N) / 1000 )); }
median_ms() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

"$AZML" run submit-script -e bench noop.py >/dev/null 2>&1   # warm-up: creates the store
bare=() azml=()
for _ in $(seq "$N"); do
  t0=$(now_us); "$PY" noop.py; t1=$(now_us)
  "$AZML" run submit-script -e bench noop.py >/dev/null 2>&1; t2=$(now_us)
  bare+=($((t1 - t0))) azml+=($((t2 - t1)))
done
b=$(printf '%s\n' "${bare[@]}" | median_ms)
a=$(printf '%s\n' "${azml[@]}" | median_ms)
echo "local run overhead ($PROFILE, N=$N, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "  python3 noop.py                      median ${b} ms"
echo "  azml run submit-script noop.py       median ${a} ms"
awk -v a="$a" -v b="$b" 'BEGIN {printf "  overhead                             %.1f ms (goal <= 30 ms)\n", a - b}'
