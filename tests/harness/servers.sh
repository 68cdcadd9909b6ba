#!/usr/bin/env bash
# Private Redis and PostgreSQL servers in one folder, on free 127.0.0.1 ports.
# Used by with-servers.sh (ctest SERVERS tests), tests that restart a server
# mid-run, and run.sh (the local servers in ./var).
#
#   servers.sh start DIR         start both; writes DIR/env.sh (SHIELD_TEST_*,
#                                with SHIELD_TEST_HTTP_PORT: a free port reserved
#                                for the runtime's HTTP listener)
#   servers.sh stop DIR          stop both (fast shutdown) and remove DIR
#   servers.sh redis-stop DIR    stop one server; *-start restarts it on the
#   servers.sh redis-start DIR   same port with the same data
#   servers.sh pg-stop DIR
#   servers.sh pg-start DIR
#   servers.sh port DIR          print one more free port, reserved until stop
#
# Environment: SHIELD_SERVERS_{REDIS,PG,HTTP}_PORT fix the ports instead of
# picking free ones; SHIELD_SERVERS_DURABLE=1 keeps PostgreSQL's fsync on (tests
# turn it off for speed); SHIELD_PG_BINDIR overrides the PostgreSQL binaries.
set -euo pipefail

readonly STARTUP_SECONDS=30
readonly STOP_SECONDS=30
readonly MARKER=.shield-servers
UID_NOW=$(id -u)
readonly UID_NOW
readonly PORT_LOCKS=${TMPDIR:-/tmp}/shield-test-ports-$UID_NOW

die() {
  echo "servers.sh: $*" >&2
  exit 1
}

now_ms() { date +%s%3N; }

# --- processes ---------------------------------------------------------------

# A process that exited but was not reaped yet still answers kill -0; the
# container's init may never reap it, so a zombie counts as gone.
alive() {
  local pid=$1 state
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# wait_gone PID SECONDS: 0 once PID is gone, 1 at the deadline.
wait_gone() {
  local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
  while alive "$pid"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
}

# --- ports -------------------------------------------------------------------

# port_in_use PORT [all]: a listener on PORT; with "all", any socket on it (a
# connection bound to a port makes a later listen there fail too).
port_in_use() {
  if command -v ss >/dev/null; then
    if [[ ${2:-} == all ]]; then
      [[ -n $(ss -Htan "sport = :$1") ]]
    else
      [[ -n $(ss -Hltn "sport = :$1") ]]
    fi
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Ports are reserved, under one flock, by a folder naming the owning test
# folder, so parallel harnesses never pick the same port, and a server stopped
# mid-test keeps its port until its folder is stopped. A reservation whose
# folder is gone (a harness killed with SIGKILL) is stale and taken over.
reserve_port() {
  local dir=$1 lock="$PORT_LOCKS/$2" owner fd rc=0
  mkdir -p "$PORT_LOCKS"
  exec {fd}>"$PORT_LOCKS/.lock"
  flock -w 30 "$fd" || die "timeout waiting for $PORT_LOCKS/.lock"
  if [[ -d $lock ]]; then
    owner=$(cat "$lock/owner" 2>/dev/null) || owner=
    if [[ $owner != "$dir" && -n $owner && -e $owner/$MARKER ]]; then rc=1; fi
  fi
  if ((rc == 0)); then
    rm -rf "$lock"
    mkdir "$lock"
    echo "$dir" >"$lock/owner"
  fi
  exec {fd}>&-
  return "$rc"
}

release_ports() {
  local dir=$1 lock
  for lock in "$PORT_LOCKS"/*; do
    [[ -f $lock/owner && $(cat "$lock/owner" 2>/dev/null) == "$dir" ]] && rm -rf "$lock"
  done
  return 0
}

# Picks a free port outside the kernel's ephemeral range (so no outgoing
# connection can be holding it when a server restarts on it) and reserves it:
# below the range when it starts above 21000, else above it. A range covering
# both sides leaves 20000-32767, with a warning.
pick_port() {
  local dir=$1 low=20000 high=32767 eph_low eph_high port try
  read -r eph_low eph_high </proc/sys/net/ipv4/ip_local_port_range || { eph_low=32768 eph_high=60999; }
  if ((eph_low > low + 1000)); then
    high=$((eph_low - 1))
  elif ((eph_high < 64535)); then
    low=$((eph_high + 1)) high=65535
  else
    echo "servers.sh: the ephemeral port range $eph_low-$eph_high covers every port; a client connection may take a server's port" >&2
  fi
  for ((try = 0; try < 200; try++)); do
    port=$((low + (RANDOM * 32768 + RANDOM) % (high - low + 1)))
    reserve_port "$dir" "$port" || continue
    if port_in_use "$port" all; then
      rm -rf "${PORT_LOCKS:?}/$port"
      continue
    fi
    echo "$port"
    return 0
  done
  die "no free port found in $low-$high"
}

# fixed_port DIR PORT: reserves a port the caller chose.
fixed_port() {
  reserve_port "$1" "$2" || die "port $2 is reserved by another test folder"
  ! port_in_use "$2" || die "port $2 is already in use"
  echo "$2"
}

# --- PostgreSQL binaries and user ---------------------------------------------

# Debian's /usr/bin/pg_* are wrappers and pg_config --bindir names the
# client's folder: take the newest server installation instead.
pg_bindir() {
  if [[ -n ${SHIELD_PG_BINDIR:-} ]]; then
    echo "$SHIELD_PG_BINDIR"
    return
  fi
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -n $dir && -x $dir/postgres ]] || die "no PostgreSQL server found under /usr/lib/postgresql"
  echo "$dir"
}

# PostgreSQL refuses to run as root: as root, its commands run as postgres,
# from / (the caller's folder may be closed to postgres; all paths are absolute).
as_pg() {
  if ((UID_NOW == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_chown() {
  if ((UID_NOW == 0)); then chown -R postgres:postgres "$@"; fi
}

# --- PostgreSQL template --------------------------------------------------------

# initdb takes seconds: one template cluster (with the shield database) is made
# once per user and PostgreSQL version, under a flock, then copied per start.
# TEMPLATE_FORMAT changes whenever make_template does, so old caches are not used.
readonly TEMPLATE_FORMAT=1
pg_template() {
  local bindir=$1 version base tmp lockfd
  version=$(basename "$(dirname "$bindir")")
  base=${SHIELD_PG_TEMPLATE:-${TMPDIR:-/tmp}/shield-pg-template-$UID_NOW-$version-f$TEMPLATE_FORMAT}
  exec {lockfd}>"$base.lock"
  flock -w 120 "$lockfd" || die "timeout waiting for the PostgreSQL template lock $base.lock"
  if [[ ! -d $base ]]; then
    tmp=$(mktemp -d "$base.tmp.XXXXXX")
    chmod 755 "$tmp"
    pg_chown "$tmp"
    if ! make_template "$bindir" "$tmp"; then
      rm -rf "$tmp"
      die "could not create the PostgreSQL template (see above)"
    fi
    mv -T "$tmp" "$base"
  fi
  exec {lockfd}>&-
  echo "$base"
}

make_template() {
  local bindir=$1 tmp=$2
  as_pg "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    --no-instructions >"$tmp/initdb.log" 2>&1 || {
    cat "$tmp/initdb.log" >&2
    return 1
  }
  cat >"$tmp/data/pg_hba.conf" <<'EOF'
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  # Each copy's own settings (port, socket, fsync) live in shield.conf.
  echo "include_if_exists 'shield.conf'" >>"$tmp/data/postgresql.conf"
  pg_chown "$tmp/data"
  # No TCP listener: the database is created over a socket in the private folder.
  as_pg "$bindir/pg_ctl" start -D "$tmp/data" -w -t "$STARTUP_SECONDS" -l "$tmp/pg.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$tmp' -c fsync=off" >/dev/null || {
    cat "$tmp/pg.log" >&2
    return 1
  }
  local rc=0
  as_pg "$bindir/psql" -X -q -h "$tmp" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c 'CREATE DATABASE shield' || rc=1
  as_pg "$bindir/pg_ctl" stop -D "$tmp/data" -m fast -w -t "$STOP_SECONDS" >/dev/null || rc=1
  rm -f "$tmp/pg.log" "$tmp/initdb.log"
  return "$rc"
}

# --- Redis ----------------------------------------------------------------------

# The Unix socket of the Redis in DIR, or nothing when its path is too long
# for a socket address (108 bytes): Redis then listens on TCP only.
redis_socket() {
  local path=$1/redis/redis.sock
  ((${#path} < 108)) && echo "$path"
  return 0
}

redis_write_conf() {
  local dir=$1 port=$2 sock
  sock=$(redis_socket "$dir")
  {
    echo "port $port"
    echo "bind 127.0.0.1"
    [[ -n $sock ]] && printf 'unixsocket "%s"\nunixsocketperm 700\n' "$sock"
    cat <<EOF
dir "$dir/redis"
daemonize no
appendonly yes
appendfsync everysec
save ""
logfile ""
EOF
  } >"$dir/redis/redis.conf"
}

# 0 when Redis answers PONG; 1 when it died; 2 at the deadline.
redis_wait_ready() {
  local pid=$1 port=$2 deadline=$(($(now_ms) + STARTUP_SECONDS * 1000))
  while :; do
    alive "$pid" || return 1
    [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && return 0
    (($(now_ms) < deadline)) || return 2
    sleep 0.05
  done
}

redis_launch() {
  local dir=$1 port=$2 pid
  # setsid: a Ctrl-C meant for the test or the runtime must not reach Redis.
  setsid redis-server "$dir/redis/redis.conf" </dev/null >>"$dir/redis/redis.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/redis/redis.pid"
  redis_wait_ready "$pid" "$port"
}

redis_start() {
  local dir=$1 port=$2 rc=0
  redis_launch "$dir" "$port" || rc=$?
  case $rc in
  0) return 0 ;;
  2) die "redis-server on port $port did not answer within ${STARTUP_SECONDS}s (log: $dir/redis/redis.log)" ;;
  *) return 1 ;;
  esac
}

redis_init() {
  local dir=$1 port attempt
  mkdir -p "$dir/redis"
  for ((attempt = 0; attempt < 5; attempt++)); do
    if [[ -n ${SHIELD_SERVERS_REDIS_PORT:-} ]]; then
      port=$(fixed_port "$dir" "$SHIELD_SERVERS_REDIS_PORT")
    else
      port=$(pick_port "$dir")
    fi
    redis_write_conf "$dir" "$port"
    if redis_start "$dir" "$port"; then
      REDIS_PORT=$port
      return 0
    fi
    # Lost a race for the port with a process outside the harness: pick another.
    if [[ -n ${SHIELD_SERVERS_REDIS_PORT:-} ]] || ! grep -q 'Address already in use' "$dir/redis/redis.log"; then
      die "redis-server exited at start: $(tail -n 5 "$dir/redis/redis.log")"
    fi
    rm -rf "${PORT_LOCKS:?}/$port"
  done
  die "redis-server could not bind a port after $attempt attempts"
}

redis_stop() {
  local dir=$1 pid
  [[ -f $dir/redis/redis.pid ]] || return 0
  pid=$(cat "$dir/redis/redis.pid")
  if alive "$pid"; then
    # SIGTERM makes Redis fsync the AOF and exit cleanly.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$STOP_SECONDS"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || die "redis-server $pid does not exit"
    fi
  fi
  rm -f "$dir/redis/redis.pid"
}

# --- PostgreSQL -------------------------------------------------------------------

pg_write_conf() {
  local dir=$1 port=$2 fast=on
  [[ ${SHIELD_SERVERS_DURABLE:-0} == 1 ]] && fast=off
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir/pg/sock'"
    echo "shared_buffers = 32MB"
    if [[ $fast == on ]]; then
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } >"$dir/pg/data/shield.conf"
  pg_chown "$dir/pg/data/shield.conf"
}

pg_start() {
  local dir=$1 port=$2 bindir deadline
  bindir=$(pg_bindir)
  # pg_ctl detaches the postmaster into its own session and -w waits until it
  # accepts connections (or has exited).
  as_pg "$bindir/pg_ctl" start -D "$dir/pg/data" -w -t "$STARTUP_SECONDS" -l "$dir/pg/pg.log" >/dev/null ||
    return 1
  deadline=$(($(now_ms) + STARTUP_SECONDS * 1000))
  until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -d shield -U postgres; do
    (($(now_ms) < deadline)) || die "PostgreSQL on port $port did not answer within ${STARTUP_SECONDS}s"
    sleep 0.05
  done
}

pg_init() {
  local dir=$1 bindir template port attempt sock
  bindir=$(pg_bindir)
  template=$(pg_template "$bindir")
  sock="$dir/pg/sock/.s.PGSQL.65535"
  ((${#sock} < 108)) || die "folder path too long for a unix socket: $dir"
  mkdir -p "$dir/pg/sock"
  rm -rf "$dir/pg/data" # left by a start that failed before env.sh was written
  cp -a "$template/data" "$dir/pg/data"
  pg_chown "$dir/pg"
  for ((attempt = 0; attempt < 5; attempt++)); do
    if [[ -n ${SHIELD_SERVERS_PG_PORT:-} ]]; then
      port=$(fixed_port "$dir" "$SHIELD_SERVERS_PG_PORT")
    else
      port=$(pick_port "$dir")
    fi
    pg_write_conf "$dir" "$port"
    if pg_start "$dir" "$port"; then
      PG_PORT=$port
      return 0
    fi
    if [[ -n ${SHIELD_SERVERS_PG_PORT:-} ]] || ! grep -q 'could not bind' "$dir/pg/pg.log"; then
      die "PostgreSQL exited at start: $(tail -n 5 "$dir/pg/pg.log")"
    fi
    rm -rf "${PORT_LOCKS:?}/$port"
  done
  die "PostgreSQL could not bind a port after $attempt attempts"
}

pg_stop() {
  local dir=$1 bindir
  [[ -f $dir/pg/data/postmaster.pid ]] || return 0
  if ! alive "$(head -n 1 "$dir/pg/data/postmaster.pid")"; then
    rm -f "$dir/pg/data/postmaster.pid" # left by a killed postmaster
    return 0
  fi
  bindir=$(pg_bindir)
  as_pg "$bindir/pg_ctl" stop -D "$dir/pg/data" -m fast -w -t "$STOP_SECONDS" >/dev/null 2>&1 ||
    as_pg "$bindir/pg_ctl" stop -D "$dir/pg/data" -m immediate -w -t "$STOP_SECONDS" >/dev/null 2>&1 ||
    [[ ! -f $dir/pg/data/postmaster.pid ]] || die "PostgreSQL in $dir does not stop"
}

# --- commands -------------------------------------------------------------------

write_env() {
  local dir=$1
  {
    printf 'export SHIELD_TEST_DIR=%q\n' "$dir"
    printf 'export SHIELD_TEST_REDIS_PORT=%s\n' "$REDIS_PORT"
    printf 'export SHIELD_TEST_REDIS_URL=redis://127.0.0.1:%s/0\n' "$REDIS_PORT"
    printf 'export SHIELD_TEST_REDIS_SOCKET=%q\n' "$(redis_socket "$dir")"
    printf 'export SHIELD_TEST_PG_PORT=%s\n' "$PG_PORT"
    printf 'export SHIELD_TEST_PG_URL=postgresql://postgres@127.0.0.1:%s/shield\n' "$PG_PORT"
    printf 'export SHIELD_TEST_PG_SOCKET_DIR=%q\n' "$dir/pg/sock"
    printf 'export SHIELD_TEST_HTTP_PORT=%s\n' "$HTTP_PORT"
  } >"$dir/env.sh.tmp"
  mv "$dir/env.sh.tmp" "$dir/env.sh"
}

# The ports of an initialized folder, from its env.sh.
load_env() {
  local dir=$1
  [[ -f $dir/env.sh ]] || die "$dir has no env.sh: not started with 'servers.sh start'"
  # shellcheck source=/dev/null
  . "$dir/env.sh"
  REDIS_PORT=$SHIELD_TEST_REDIS_PORT
  PG_PORT=$SHIELD_TEST_PG_PORT
  HTTP_PORT=$SHIELD_TEST_HTTP_PORT
}

cmd_start() {
  local dir=$1
  if [[ -f $dir/env.sh ]]; then
    # An initialized folder (run.sh's ./var): start what is not running.
    load_env "$dir"
    if ! reserve_port "$dir" "$REDIS_PORT" || ! reserve_port "$dir" "$PG_PORT" ||
      ! reserve_port "$dir" "$HTTP_PORT"; then
      die "the ports of $dir are reserved by another folder"
    fi
    cmd_redis_start "$dir"
    cmd_pg_start "$dir"
    return
  fi
  [[ -z $(ls -A "$dir") || -e $dir/$MARKER ]] || die "$dir is not empty"
  touch "$dir/$MARKER"
  # postgres must be able to reach its data dir: the folder may come from mktemp -d.
  chmod go+x "$dir"
  if ((UID_NOW == 0)) && ! runuser -u postgres -- test -x "$dir"; then
    die "user postgres cannot reach $dir (a parent folder is not searchable)"
  fi
  redis_init "$dir"
  pg_init "$dir"
  if [[ -n ${SHIELD_SERVERS_HTTP_PORT:-} ]]; then
    HTTP_PORT=$(fixed_port "$dir" "$SHIELD_SERVERS_HTTP_PORT")
  else
    HTTP_PORT=$(pick_port "$dir")
  fi
  write_env "$dir"
}

cmd_stop() {
  local dir=$1
  [[ -d $dir ]] || return 0
  [[ -e $dir/$MARKER ]] || die "$dir was not made by servers.sh: not removing it"
  redis_stop "$dir"
  pg_stop "$dir"
  release_ports "$dir"
  rm -rf "$dir"
}

cmd_redis_start() {
  local dir=$1
  load_env "$dir"
  if [[ -f $dir/redis/redis.pid ]] && alive "$(cat "$dir/redis/redis.pid")"; then return 0; fi
  # Same port and data: the port stayed reserved while Redis was down.
  redis_start "$dir" "$REDIS_PORT" ||
    die "redis-server exited at start: $(tail -n 5 "$dir/redis/redis.log")"
}

cmd_pg_start() {
  local dir=$1
  load_env "$dir"
  if [[ -f $dir/pg/data/postmaster.pid ]] && alive "$(head -n 1 "$dir/pg/data/postmaster.pid")"; then
    return 0
  fi
  pg_start "$dir" "$PG_PORT" || die "PostgreSQL exited at start: $(tail -n 5 "$dir/pg/pg.log")"
}

main() {
  (($# == 2)) || die "usage: servers.sh start|stop|redis-stop|redis-start|pg-stop|pg-start|port DIR"
  local cmd=$1 dir=$2
  if [[ $cmd == start ]]; then mkdir -p "$dir"; fi
  if [[ -d $dir ]]; then dir=$(cd "$dir" && pwd -P); fi
  case $cmd in
  start) cmd_start "$dir" ;;
  stop) cmd_stop "$dir" ;;
  redis-stop) load_env "$dir" && redis_stop "$dir" ;;
  redis-start) cmd_redis_start "$dir" ;;
  pg-stop) load_env "$dir" && pg_stop "$dir" ;;
  pg-start) cmd_pg_start "$dir" ;;
  port) load_env "$dir" && pick_port "$dir" ;;
  *) die "unknown command '$cmd'" ;;
  esac
}

main "$@"
