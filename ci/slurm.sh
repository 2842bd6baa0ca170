#!/usr/bin/env bash
# A sharded campaign on a real scheduler: a local Slurm cluster (a
# controller and two compute nodes, each in its own network and UTS
# namespace, joined by a bridge in a fourth namespace) runs the shards of a
# campaign as a job array with `campaign --shard auto`, and a merge job after
# them (--dependency=afterany). The merged report must equal an unsharded
# run of the same seeds, seed by seed. Then one node's job is killed and the
# merge must refuse, naming the missing shard.
#
# Needs root (namespaces, and apt-get when Slurm is missing). Everything it
# makes lives under target/slurm/<pid>/ (munge key and socket, slurm.conf,
# state, logs, reports) and in four namespaces named exactsim-<pid>-*; on
# exit it kills every process in those namespaces by pid, deletes the
# namespaces, and removes the directory unless the run failed.
#
# Environment: EXACTSIM_SLURM_SEEDS (default 48), EXACTSIM_SLURM_FIRST_SEED
# (default 1000), EXACTSIM_SLURM_PROFILE (default chaos),
# EXACTSIM_SLURM_TIMEOUT (seconds for the cluster part, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
seeds="${EXACTSIM_SLURM_SEEDS:-48}"
first="${EXACTSIM_SLURM_FIRST_SEED:-1000}"
profile="${EXACTSIM_SLURM_PROFILE:-chaos}"
limit="${EXACTSIM_SLURM_TIMEOUT:-300}"
t_start=$SECONDS

say() { echo "slurm.sh: $*"; }
die() { echo "slurm.sh: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces; apt-get if Slurm is missing)"

missing=()
for tool in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge jq:jq; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release --quiet
bin="$repo/target/release/exactsim"

w="$repo/target/slurm/$$"
ns_hub="exactsim-$$-hub" ns_ctl="exactsim-$$-ctl" ns_n1="exactsim-$$-n1" ns_n2="exactsim-$$-n2"
namespaces=()
pids=()
watchdog=""
ok=0

cleanup() {
  local rc=$?
  set +e
  if [ -n "$watchdog" ]; then
    pkill -P "$watchdog" 2>/dev/null
    kill "$watchdog" 2>/dev/null
  fi
  # Every process in our namespaces is ours: the daemons, slurmstepd, jobs.
  for sig in TERM KILL; do
    local left=""
    for ns in "${namespaces[@]}"; do
      for p in $(ip netns pids "$ns" 2>/dev/null) "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null && { kill -"$sig" "$p" 2>/dev/null; left=1; }
      done
    done
    [ -z "$left" ] && break
    for _ in $(seq 30); do
      local alive=""
      for ns in "${namespaces[@]}"; do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && alive=1; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
  done
  wait "${pids[@]}" 2>/dev/null
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$ok" = 1 ]; then
    rm -rf "$w"
  else
    echo "slurm.sh: logs kept in $w" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "slurm.sh: FAILED: interrupted or over the ${limit}s limit" >&2; exit 1' TERM INT

( sleep "$limit"; kill -TERM $$ ) 2>/dev/null &
watchdog=$!

mkdir -p "$w"/{munge,ctld,logs,shards,lost}
chmod 700 "$w/munge"

# The network: a bridge in a hub namespace, one veth into each host's
# namespace. Nothing is added to the machine's own network namespace.
for ns in "$ns_hub" "$ns_ctl" "$ns_n1" "$ns_n2"; do
  ip netns add "$ns"
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
done
ip -n "$ns_hub" link add br0 type bridge
ip -n "$ns_hub" link set br0 up
declare -A addr=(["$ns_ctl"]=10.199.16.1 ["$ns_n1"]=10.199.16.11 ["$ns_n2"]=10.199.16.12)
i=0
for ns in "$ns_ctl" "$ns_n1" "$ns_n2"; do
  i=$((i + 1))
  ip -n "$ns_hub" link add "v$i" type veth peer name eth0 netns "$ns"
  ip -n "$ns_hub" link set "v$i" master br0 up
  ip -n "$ns" addr add "${addr[$ns]}/24" dev eth0
  ip -n "$ns" link set eth0 up
done

# Our own munge: key, socket, logs under $w.
head -c 1024 /dev/urandom >"$w/munge/munge.key"
chmod 400 "$w/munge/munge.key"
sock="$w/munge/munge.sock"
nsenter --net="/run/netns/$ns_ctl" munged -F --force --key-file="$w/munge/munge.key" --socket="$sock" \
  --pid-file="$w/munge/munged.pid" --log-file="$w/munge/munged.log" --seed-file="$w/munge/munged.seed" \
  >"$w/logs/munged.out" 2>&1 &
pids+=($!)

export SLURM_CONF="$w/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=exactsim
SlurmctldHost=ctl(10.199.16.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$w/ctld
SlurmdSpoolDir=$w/slurmd-%n
SlurmctldPidFile=$w/slurmctld.pid
SlurmdPidFile=$w/slurmd-%n.pid
SlurmctldLogFile=$w/logs/slurmctld.log
SlurmdLogFile=$w/logs/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=2
MinJobAge=600
MailProg=/bin/true
NodeName=n1 NodeAddr=10.199.16.11 CPUs=1 State=UNKNOWN
NodeName=n2 NodeAddr=10.199.16.12 CPUs=1 State=UNKNOWN
PartitionName=main Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF

for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || die "munged did not start (see $w/munge/munged.log)"

t_cluster=$SECONDS
# Each host has its own hostname (UTS namespace), as on a real cluster.
# Started with &, the function's subshell execs the daemon: $! is its pid.
host() { # host NAMESPACE HOSTNAME CMD...
  local ns=$1 name=$2
  shift 2
  exec nsenter --net="/run/netns/$ns" unshare --uts sh -c "hostname $name && exec \"\$@\"" sh "$@"
}
host "$ns_ctl" ctl slurmctld -D -i >"$w/logs/slurmctld.out" 2>&1 &
pids+=($!)
host "$ns_n1" n1 slurmd -D >"$w/logs/slurmd-n1.out" 2>&1 &
pids+=($!)
host "$ns_n2" n2 slurmd -D >"$w/logs/slurmd-n2.out" 2>&1 &
pids+=($!)

# Slurm clients talk to the controller from its namespace.
client() { nsenter --net="/run/netns/$ns_ctl" "$@"; }

up=""
for _ in $(seq 300); do
  if [ "$(client sinfo -h -N -o '%T' 2>/dev/null | grep -c '^idle$')" = 2 ]; then up=1; break; fi
  sleep 0.1
done
[ -n "$up" ] || die "the cluster did not come up (see $w/logs)"
say "cluster up in $((SECONDS - t_cluster))s: $(client sinfo -h -N -o '%N=%T' | tr '\n' ' ')"

# The shards: an array whose ids start at 0 and step by 2, so --shard auto
# must use SLURM_ARRAY_TASK_MIN and _STEP: tasks 0, 2, 4, 6 are shards 1..4.
campaign=(campaign --scenario all --profile "$profile" --first-seed "$first" --check-determinism)
submit_shards() { # submit_shards REPORT_ROOT SEEDS
  local root=$1 n=$2 cmd
  cmd=$(printf '%q ' "$bin" "${campaign[@]}" --seeds "$n" --jobs 1 --shard auto --report)
  client sbatch --parsable --array=0-6:2 -o "$w/logs/$(basename "$root")-%a.out" -J exactsim-shard \
    --wrap "echo node=\$(hostname) task=\$SLURM_ARRAY_TASK_ID; exec $cmd $(printf %q "$root")/\$SLURM_ARRAY_TASK_ID"
}
submit_merge() { # submit_merge AFTER REPORT_ROOT OUT
  local after=$1 root=$2 out=$3
  client sbatch --parsable --dependency="afterany:$after" -o "$out.log" -J exactsim-merge \
    --wrap "'$bin' merge '$root'/*/ --report '$out' --junit '$out.xml'; echo \$? >'$out.rc'"
}
wait_for() { # wait_for FILE
  for _ in $(seq $((limit * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
  die "timed out waiting for $1"
}

t_jobs=$SECONDS
array=$(submit_shards "$w/shards" "$seeds")
merge=$(submit_merge "$array" "$w/shards" "$w/merged")
say "submitted array $array (4 shards) and merge job $merge (afterany:$array)"
wait_for "$w/merged.rc"
say "shards and merge done in $((SECONDS - t_jobs))s; merge exit $(cat "$w/merged.rc")"
cat "$w/merged.log"
rc=$(cat "$w/merged.rc")
[ "$rc" = 0 ] || [ "$rc" = 1 ] || die "merge exited $rc (see $w/merged.log)"
for k in 0 2 4 6; do
  grep -q '"shard": "'$((k / 2 + 1))'/4"' "$w/shards/$k/campaign.json" || die "task $k did not run shard $((k / 2 + 1))/4"
done
# Where the tasks ran: both compute nodes took part.
nodes=$(cat "$w"/logs/shards-*.out | sed -n 's/^node=\([a-z0-9]*\) .*/\1/p' | sort -u | tr '\n' ' ')
say "the shards ran on: $nodes"
[ "$nodes" = "n1 n2 " ] || die "expected the shards on both compute nodes, got: $nodes"

# The same seeds on one machine, unsharded.
"$bin" "${campaign[@]}" --seeds "$seeds" --jobs 2 --report "$w/whole" >"$w/logs/whole.out" || [ $? = 1 ]
same() { jq -c "$1" "$w/merged/campaign.json" >"$w/a.json"; jq -c "$1" "$w/whole/campaign.json" >"$w/b.json"; diff -q "$w/a.json" "$w/b.json" >/dev/null; }
# Per run: scenario, seed, verdict, trace hash, failed checks, determinism
# re-run; not its wall time.
same '.runs[] | del(.wall_ms)' || {
  diff "$w/a.json" "$w/b.json" | head || true
  die "merged runs differ from the unsharded campaign"
}
same '{verdict, faults, coverage, scenarios: (.scenarios | map_values(del(.wall_ms)))}' \
  || die "merged figures differ from the unsharded campaign"
runs=$(jq '.runs | length' "$w/merged/campaign.json")
[ "$runs" -gt 0 ] || die "no runs"
say "merged report == unsharded run: $runs runs, seed by seed (trace hashes, verdicts, determinism re-runs, figures, coverage)"

# A lost shard: kill -9 the campaign of the job running on n2.
lost_seeds=$((seeds * 4))
array2=$(submit_shards "$w/lost" "$lost_seeds")
merge2=$(submit_merge "$array2" "$w/lost" "$w/lost-merged")
victim=""
for _ in $(seq 300); do
  for p in $(ip netns pids "$ns_n2"); do
    if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = exactsim ]; then victim=$p; break 2; fi
  done
  sleep 0.05
done
[ -n "$victim" ] || die "no shard ran on n2"
task=$(tr '\0' '\n' <"/proc/$victim/environ" | sed -n 's/^SLURM_ARRAY_TASK_ID=//p')
kill -KILL "$victim"
say "killed pid $victim on n2: array task $task, shard $((task / 2 + 1))/4"
wait_for "$w/lost-merged.rc"
cat "$w/lost-merged.log"
[ "$(cat "$w/lost-merged.rc")" = 2 ] || die "merge of a campaign with a lost shard exited $(cat "$w/lost-merged.rc"), expected 2"
grep -q "missing shard $((task / 2 + 1))/4" "$w/lost-merged.log" || die "merge did not name the lost shard"
say "merge refused the campaign with the lost shard, naming shard $((task / 2 + 1))/4"

verdict=$(jq -r .verdict "$w/merged/campaign.json")
ok=1
say "passed in $((SECONDS - t_start))s (cluster up to teardown $((SECONDS - t_cluster))s); campaign verdict=$verdict"
[ "$verdict" = pass ] || { ok=0; die "the campaign found a violation (see $w/merged)"; }
