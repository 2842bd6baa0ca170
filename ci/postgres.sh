#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server on 127.0.0.1 for exactsim's PostgreSQL
# tests, under target/ and never left running.
#
#   ci/postgres.sh run -- CMD [ARGS...]  fresh cluster, start, run CMD with the
#                                       connection in its environment, stop
#                                       (always, also when CMD fails)
#   ci/postgres.sh start                 start (initdb first if there is no
#                                       cluster yet); keeps an existing cluster
#   ci/postgres.sh stop                  stop the server by its pid
#   ci/postgres.sh kill                  crash it: kill -9 the postmaster and
#                                       every backend (prepared transactions
#                                       survive, open ones are lost)
#
# The directory is $EXACTSIM_PG_DIR (default target/pg). `start` writes
# $EXACTSIM_PG_DIR/env (shell syntax) with EXACTSIM_PG_URL (a
# tokio-postgres/libpq connection string), PGHOST, PGPORT, PGUSER,
# PGDATABASE, EXACTSIM_PG_DIR and EXACTSIM_PG_DATA (the cluster); `run`
# exports the same for CMD. The postmaster's pid is in
# $EXACTSIM_PG_DIR/server.pid while it runs.
#
# Binaries: /usr/lib/postgresql/15/bin, or $EXACTSIM_PG_BIN; if missing,
# Debian's postgresql-15 is installed with apt-get (root only). As root the
# server runs as the `postgres` user (initdb refuses root); otherwise as the
# calling user. $EXACTSIM_PG_MAX_PREPARED sets max_prepared_transactions of a
# new cluster (default 16). Authentication is `trust`, listening on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${EXACTSIM_PG_DIR:-target/pg}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# The server's own directory (cluster, socket, log): under $dir, unless the
# server's user cannot reach it there (a clone under a private home): then
# under /tmp, named after $dir.
resolve_home() {
  home="$dir"
  if [[ "$(id -u)" == 0 ]] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
    home="/tmp/exactsim-pg-$(echo "$dir" | cksum | cut -d' ' -f1)"
    mkdir -p "$home"
  fi
  data="$home/data"
  log="$home/server.log"
}
resolve_home
envfile="$dir/env"
pidfile="$dir/server.pid"

say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 2; }

find_bin() {
  local b="${EXACTSIM_PG_BIN:-/usr/lib/postgresql/15/bin}"
  if [[ ! -x "$b/postgres" ]]; then
    [[ "$(id -u)" == 0 ]] || die "no PostgreSQL 15 in $b and not root: install postgresql-15 or set EXACTSIM_PG_BIN"
    command -v apt-get >/dev/null || die "no PostgreSQL 15 in $b and no apt-get: set EXACTSIM_PG_BIN"
    say "installing postgresql-15 with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >&2
    [[ -x "$b/postgres" ]] || die "postgresql-15 installed but $b/postgres is missing"
  fi
  echo "$b"
}

# Run a command as the server's owner.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

owner_dirs() {
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres:postgres "$home"
  fi
}

port_free() {
  # Nothing accepts on it (bash's /dev/tcp), so a server can bind it.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if port_free "$p"; then echo "$p"; return; fi
  done
  die "no free port found on 127.0.0.1"
}

server_pid() {
  # The postmaster's pid if it is alive.
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q postgres "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

init_cluster() {
  local bin="$1" port
  rm -rf "$data"
  owner_dirs
  as_owner "$bin/initdb" --no-sync -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  port="$(pick_port)"
  # A crash here means kill -9 of processes, not of the machine: the OS
  # keeps every written page, so fsync buys nothing.
  as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF
# exactsim (ci/postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$home'
max_prepared_transactions = ${EXACTSIM_PG_MAX_PREPARED:-16}
max_connections = 40
# Readers of real-mode runs order rows by when their transaction committed.
track_commit_timestamp = on
fsync = off
full_page_writes = off
shared_buffers = 16MB
logging_collector = off
EOF
}

conf_port() { sed -n 's/^port = \([0-9]*\)$/\1/p' "$data/postgresql.conf" | tail -1; }

write_env() {
  local port
  port="$(conf_port)"
  cat >"$envfile" <<EOF
export EXACTSIM_PG_DIR='$dir'
export EXACTSIM_PG_DATA='$data'
export EXACTSIM_PG_URL='host=127.0.0.1 port=$port user=postgres dbname=postgres'
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
EOF
}

start() {
  local bin tries=0
  bin="$(find_bin)"
  resolve_home # the postgres user may be new
  if pid="$(server_pid)"; then
    say "already running (pid $pid)"
    write_env
    return
  fi
  [[ -f "$data/PG_VERSION" ]] || init_cluster "$bin"
  while :; do
    tries=$((tries + 1))
    if as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null; then
      break
    fi
    if [[ $tries -lt 4 ]] && grep -q "could not bind\|Address already in use" "$log"; then
      say "port $(conf_port) taken, picking another"
      as_owner sed -i "s/^port = [0-9]*$/port = $(pick_port)/" "$data/postgresql.conf"
      continue
    fi
    tail -20 "$log" >&2
    die "server did not start"
  done
  head -1 "$data/postmaster.pid" >"$pidfile"
  write_env
  say "started pid $(cat "$pidfile") on 127.0.0.1:$(conf_port), env in $envfile"
}

wait_gone() {
  local pid="$1" i
  for i in $(seq 1 "$2"); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

stop() {
  local pid
  if ! pid="$(server_pid)"; then
    rm -f "$pidfile"
    return 0
  fi
  kill -INT "$pid" 2>/dev/null || true # fast shutdown
  if ! wait_gone "$pid" 300; then
    say "server pid $pid did not stop in 30 s, killing it"
    kill_server
    return 0
  fi
  rm -f "$pidfile"
  say "stopped pid $pid"
}

kill_server() {
  local pid kids k
  pid="$(server_pid)" || die "no server running"
  kids="$(pgrep -P "$pid" || true)"
  kill -9 "$pid" 2>/dev/null || true
  for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
  wait_gone "$pid" 100 || die "postmaster $pid survived kill -9"
  for k in $kids; do wait_gone "$k" 100 || true; done
  # Every server process is dead: the lock file is stale.
  rm -f "$pidfile" "$data/postmaster.pid"
  say "killed pid $pid and its backends"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill_server ;;
  run)
    shift
    [[ "${1:-}" == "--" ]] && shift
    [[ $# -gt 0 ]] || die "usage: ci/postgres.sh run -- CMD [ARGS...]"
    stop
    rm -rf "$data"
    trap 'stop; if [[ "$home" != "$dir" ]]; then rm -rf "$home"; fi' EXIT
    trap 'exit 130' INT TERM
    start
    # shellcheck disable=SC1090
    source "$envfile"
    set +e
    "$@"
    rc=$?
    set -e
    exit $rc
    ;;
  *) die "usage: ci/postgres.sh run -- CMD [ARGS...] | start | stop | kill" ;;
esac
