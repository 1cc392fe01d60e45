#!/usr/bin/env bash
# Overhead of a local run (issue 3 benchmark): `azml run submit-script noop.py`
# against `python3 noop.py`, alternating the two so machine load hits both alike.
# Reports medians in milliseconds. Goal: at most 30 ms extra.
#
#   benches/local_run_overhead.sh            # release build, 30 rounds
#   N=10 PROFILE=debug benches/local_run_overhead.sh
#   AZML_BIN=target/release/azml benches/local_run_overhead.sh   # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-30}"
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

# CPU seconds (user + sys) used by finished children of this shell so far.
# (`times` must run in this shell, not in a `$(…)` subshell, hence the file.)
cpu_now() { times > "$work/times"; tail -1 "$work/times" | awk '{gsub(/[ms]/," "); print ($1*60+$2)+($3*60+$4)}'; }

"$AZML" run submit-script -e bench noop.py >/dev/null 2>&1   # warm-up: creates the store
bare=() azml=()
cpu_bare=0 cpu_azml=0
for _ in $(seq "$N"); do
  cpu_now > "$work/c0"; t0=$(now_us); "$PY" noop.py; t1=$(now_us); cpu_now > "$work/c1"
  "$AZML" run submit-script -e bench noop.py >/dev/null 2>&1; t2=$(now_us); cpu_now > "$work/c2"
  c0=$(cat "$work/c0") c1=$(cat "$work/c1") c2=$(cat "$work/c2")
  bare+=($((t1 - t0))) azml+=($((t2 - t1)))
  cpu_bare=$(awk -v s="$cpu_bare" -v a="$c0" -v b="$c1" 'BEGIN {print s + b - a}')
  cpu_azml=$(awk -v s="$cpu_azml" -v a="$c1" -v b="$c2" 'BEGIN {print s + b - a}')
done
b=$(printf '%s\n' "${bare[@]}" | median_ms)
a=$(printf '%s\n' "${azml[@]}" | median_ms)
echo "local run overhead ($PROFILE, N=$N, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "  python3 noop.py                      wall median ${b} ms"
echo "  azml run submit-script noop.py       wall median ${a} ms"
awk -v a="$a" -v b="$b" 'BEGIN {printf "  overhead, wall                       %.1f ms (goal <= 30 ms)\n", a - b}'
# CPU time is what azml itself costs; wall time on a busy machine adds scheduling waits.
awk -v a="$cpu_azml" -v b="$cpu_bare" -v n="$N" 'BEGIN {printf "  overhead, CPU (user+sys)             %.1f ms per run\n", (a - b) * 1000 / n}'
