#!/usr/bin/env bash
# SSH targets (issue 7 benchmark), against a private sshd on 127.0.0.1:
# 1. overhead of a remote run of a no-op script, `azml run submit-script --ct box noop.py`,
#    against `ssh host python3 noop.py` with the same warm shared connection
#    (goal: at most 1.5x);
# 2. a 2,000-file source tree: first submit (everything sent), unchanged resubmit,
#    resubmit after changing one file (only that file sent), with the bytes sent.
# Reports medians in milliseconds.
#
#   benches/ssh_overhead.sh                 # release build, 20 rounds
#   N=5 PROFILE=debug benches/ssh_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-20}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then
  cargo build --release -q --bin azml
  AZML="$PWD/target/release/azml"
else
  cargo build -q --bin azml
  AZML="$PWD/target/debug/azml"
fi
SSHD="$(command -v sshd || echo /usr/sbin/sshd)"
[ -x "$SSHD" ] || { echo "needs sshd (apt-get install openssh-server)" >&2; exit 1; }

work="$(mktemp -d /tmp/azml-bench-ssh.XXXXXX)"
sshd_pid=""
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- a private sshd, as the tests use -------------------------------------
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
mkdir -p "$work/remote-home" "$work/home"
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$work/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
AllowTcpForwarding yes
MaxSessions 30
SetEnv HOME=$work/remote-home
EOF
"$SSHD" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.05
done

export HOME="$work/home"
unset MLFLOW_TRACKING_URI MLFLOW_RUN_ID AZML_LOCAL_WORKSPACE
now_us() { echo $(( $(date +%s%N) / 1000 )); }
median_ms() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

project() {  # project DIR: a folder with the SSH target attached and a runconfig `box` for it
  mkdir -p "$1/.azureml"
  (cd "$1" && "$AZML" computetarget attach remote -n box -a 127.0.0.1 --ssh-port "$port" \
      -u "$(id -un)" --private-key-file "$work/client_key" >/dev/null 2>&1)
  printf 'target: box\nenvironment:\n  python:\n    userManagedDependencies: true\n    interpreterPath: python3\n' \
    > "$1/.azureml/box.runconfig"
}

# --- 1. no-op run overhead ---------------------------------------------------
p="$work/noop"
project "$p"
: > "$p/noop.py"
SSH=(ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new
     -o UserKnownHostsFile="$work/bench_known_hosts" -o ControlMaster=auto
     -o ControlPath="$work/cm-%C" -o ControlPersist=60 -i "$work/client_key" -p "$port" 127.0.0.1)
"${SSH[@]}" true
(cd "$p" && "$AZML" run submit-script -c box -e bench noop.py >/dev/null 2>&1)   # warm-up
bare=() azml=()
# A pause before each timed command: a run leaves a spare copy of its tree
# behind on the host in the background, which must not land on the next
# measurement (on a real host it runs on the host, not here).
for _ in $(seq "$N"); do
  sleep 0.05; t0=$(now_us); "${SSH[@]}" python3 -c pass; t1=$(now_us)
  sleep 0.05; t2=$(now_us)
  (cd "$p" && "$AZML" run submit-script -c box -e bench noop.py >/dev/null 2>&1); t3=$(now_us)
  bare+=($((t1 - t0))) azml+=($((t3 - t2)))
done
b=$(printf '%s\n' "${bare[@]}" | median_ms)
a=$(printf '%s\n' "${azml[@]}" | median_ms)
echo "SSH target overhead ($PROFILE, N=$N, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "  ssh host python3 -c pass (shared connection)   median ${b} ms"
echo "  azml run submit-script -c box noop.py          median ${a} ms"
awk -v a="$a" -v b="$b" 'BEGIN {printf "  ratio                                          %.2fx (goal <= 1.5x)\n", a / b}'
# CPU time (user+sys of the command and the children it waited for: ssh
# clients, and for azml also its tracking server threads); less noisy than wall under load.
cpu_ms() {  # cpu_ms CMD...: median CPU milliseconds (getrusage of waited-for children) over N runs
  python3 - "$N" "$@" <<'PY'
import resource, statistics, subprocess, sys
n, cmd = int(sys.argv[1]), sys.argv[2:]
def used():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
samples = []
for _ in range(n):
    before = used()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples.append((used() - before) * 1000)
print("%.1f" % statistics.median(samples))
PY
}
echo "  CPU time, ssh host python3 -c pass             median $(cpu_ms "${SSH[@]}" python3 -c pass) ms (local ssh client only)"
echo "  CPU time, azml run submit-script -c box        median $(cd "$p" && cpu_ms "$AZML" run submit-script -c box -e bench noop.py) ms (azml + its ssh clients)"
if command -v strace >/dev/null; then  # process starts of one warm run (successful execve only)
  (cd "$p" && strace -f -qq -z -e trace=execve -e signal=none -o "$work/execve.txt" \
      "$AZML" run submit-script -c box -e bench noop.py >/dev/null 2>&1) || true
  ssh_starts=$(grep -c 'execve("[^"]*/ssh",' "$work/execve.txt" || true)
  control=$(grep 'execve("[^"]*/ssh",' "$work/execve.txt" | grep -c '"-O"' || true)
  echo "  per warm run: $ssh_starts local ssh client starts, $control of them 'ssh -O' requests to the shared connection"
fi

# --- 2. sync of a 2,000-file tree -------------------------------------------
p="$work/tree"
project "$p"
python3 - "$p" <<'EOF'
import os, sys, random
root = sys.argv[1]
rnd = random.Random(7)
for i in range(2000):
    d = os.path.join(root, "pkg%02d" % (i % 40))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "m%04d.py" % i), "w") as f:
        f.write("# %d\n" % i + "".join(rnd.choice("abcdefgh \n") for _ in range(1000)))
open(os.path.join(root, "noop.py"), "w").close()
EOF
submit() {  # prints "<ms> <sync line>"
  local t0 t1 line
  sleep 0.3  # the previous run's spare copy is made on the host after it ended
  t0=$(now_us)
  line=$(cd "$p" && "$AZML" --verbose run submit-script -c box -e sync noop.py 2>&1 >/dev/null | grep -o 'synced.*\|already on.*' || true)
  t1=$(now_us)
  awk -v t=$((t1 - t0)) -v l="$line" 'BEGIN {printf "%8.1f ms   %s\n", t/1000, l}'
}
echo "2,000-file tree (2 MB), end-to-end submit of a no-op script:"
echo "  first submit:        $(submit)"
echo "  unchanged resubmit:  $(submit)"
echo "# changed" >> "$p/pkg07/m0007.py"
echo "  one file changed:    $(submit)"
# The same tree on this machine (`--ct local`): what the SSH path adds to it.
local_submit() {
  local t0 t1
  sleep 0.3
  t0=$(now_us)
  (cd "$p" && "$AZML" run submit-script --ct local -e local noop.py >/dev/null 2>&1)
  t1=$(now_us)
  awk -v t=$((t1 - t0)) 'BEGIN {printf "%8.1f ms", t/1000}'
}
local_submit >/dev/null
echo "  for comparison, --ct local unchanged resubmit: $(local_submit)"
