#!/usr/bin/env bash
# Local PostgreSQL server with a private data dir in $ESTAFETTE_STATE_DIR/pg (default
# <repo>/.local/pg), on 127.0.0.1 only; not Debian's own cluster. No Docker.
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") {install|start|stop|restart [--immediate]|status|bootstrap [DBNAME]|psql [DBNAME] [PSQL_ARGS...]}
  install    install the PostgreSQL server package (apt-get) if initdb/pg_ctl are missing
  start      install if needed, create the data dir once, start, wait until it accepts connections
             (first waits until nothing listens on the port: a server that has just stopped may
             still hold it; then until the new server listens on it)
  stop       fast shutdown
  restart    stop and start again; --immediate: stop like a crash (pg_ctl -m immediate: no
             checkpoint, the start runs crash recovery), as the fault suite does (docs/faults.md)
  status     exit 0 if running
  bootstrap  (idempotent) database DBNAME (default estafette), one login role + own schema per
             service ($SERVICES); each role's password is ESTAFETTE_DB_PASSWORD_<SERVICE>
             if set, else the one kept in <state>/pg/passwords.env, else a new random one;
             passwords.env (mode 600) then holds <SERVICE>_DATABASE_PASSWORD=... for each service
  psql       psql as superuser postgres (password postgres) on DBNAME (default estafette)
env: PGPORT_ESTAFETTE (15432), ESTAFETTE_STATE_DIR (<repo>/.local), ESTAFETTE_DB_PASSWORD_<SERVICE>
USAGE
}

# One role and schema per service of services/registry.py (the one list of services).
SERVICES="$(cd "$ROOT" && "$PY" -c 'from services.registry import NAMES; print(" ".join(NAMES))')"
PGDIR="$STATE_DIR/pg"
DATA="$PGDIR/data"
RUN="$PGDIR/run"
LOG="$PGDIR/postgres.log"
PASSWORDS="$PGDIR/passwords.env"
PORT="${PGPORT_ESTAFETTE:-15432}"
export PGPASSWORD=postgres PGCONNECT_TIMEOUT=5

# The server programs: the version the data dir was made with, else PATH, else Debian's newest.
find_bindir() {
  local d cands=()
  [[ -f "$DATA/PG_VERSION" ]] && cands+=("/usr/lib/postgresql/$(<"$DATA/PG_VERSION")/bin")
  command -v pg_ctl >/dev/null && cands+=("$(dirname "$(readlink -f "$(command -v pg_ctl)")")")
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do cands+=("$d"); done
  for d in "${cands[@]}"; do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" && -x "$d/psql" && -x "$d/pg_isready" ]]; then
      echo "$d"; return 0
    fi
  done
  return 1
}

# Run a server program as the postgres user when we are root (PostgreSQL refuses root).
as_pg() {
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

cmd_install() {
  if BIN="$(find_bindir)"; then say "postgres: server programs present ($BIN)"; return 0; fi
  [[ $EUID -eq 0 ]] || die "PostgreSQL server programs not found; install them (Debian: sudo apt-get install postgresql) or run this as root"
  command -v apt-get >/dev/null || die "PostgreSQL server programs not found and no apt-get to install them"
  local t0; t0=$(now_ms)
  say "postgres: installing the postgresql package with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$STATE_DIR"
  local apt_log="$STATE_DIR/apt-postgresql.log"
  if ! { apt-get update && apt-get install -y --no-install-recommends postgresql; } >"$apt_log" 2>&1 9>&-; then
    tail_log "$apt_log"; die "installing postgresql with apt-get failed (log: $apt_log)"
  fi
  # The package creates and may start its own cluster (port 5432); we never use it.
  local conf
  for conf in /etc/postgresql/*/main/start.conf; do
    [[ -f "$conf" ]] || continue
    echo manual >"$conf"
    local ver; ver="$(basename "$(dirname "$(dirname "$conf")")")"
    pg_ctlcluster "$ver" main stop >/dev/null 2>&1 9>&- || true
  done
  BIN="$(find_bindir)" || die "postgresql installed, but initdb/pg_ctl still not found"
  say "postgres: installed ($BIN) in $(elapsed "$t0")"
}

# The data dir must belong to the server's user; as root that is 'postgres', who must also be
# able to reach it (the state dir's parents may have been created by root).
prepare_dirs() {
  mkdir -p "$PGDIR"
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "there is no 'postgres' user to run the server as"
    chown postgres:postgres "$PGDIR"
    if ! runuser -u postgres -- test -x "$PGDIR"; then
      local d path=""
      IFS=/ read -ra parts <<<"${PGDIR#/}"
      for d in "${parts[@]}"; do
        path="$path/$d"
        if ! runuser -u postgres -- test -x "$path"; then
          say "postgres: making $path traversable for the postgres user (chmod o+x)"
          chmod o+x "$path"
        fi
      done
    fi
  fi
  chmod 700 "$PGDIR"
  as_pg mkdir -p "$RUN"
}

init_data() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  local t0; t0=$(now_ms)
  say "postgres: creating the data dir $DATA"
  as_pg bash -c 'umask 077; echo postgres >"$1"' _ "$PGDIR/pwfile"
  if ! as_pg "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$PGDIR/pwfile" --auth=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1; then
    rm -f "$PGDIR/pwfile"; tail_log "$PGDIR/initdb.log"; die "initdb failed (log: $PGDIR/initdb.log)"
  fi
  rm -f "$PGDIR/pwfile"
  as_pg bash -c 'cat >>"$1"' _ "$DATA/postgresql.conf" <<'CONF'

# --- Estafette local development settings ---
shared_buffers = 128MB
max_connections = 200
include_if_exists = 'estafette.conf'   # rewritten by deploy/local/postgres.sh at each start
CONF
  say "postgres: data dir created in $(elapsed "$t0")"
}

# running: the postmaster named in postmaster.pid is alive (and is a postgres, not a process that
# reused the pid of a server that died); also sets BIN.
pm_pid() { sed -n 1p "$DATA/postmaster.pid" 2>/dev/null || true; }
running() {
  local pid; pid="$(pm_pid)"
  [[ "$pid" =~ ^[0-9]+$ ]] && proc_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q postgres \
    && BIN="$(find_bindir)"
}
# The port the running server listens on (4th line of postmaster.pid), else the configured one.
live_port() { local p; p="$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)"; echo "${p:-$PORT}"; }

wait_ready() {
  local port i; port="$(live_port)"
  for ((i = 0; i < 300; i++)); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U postgres && return 0
    sleep 0.1
  done
  tail_log "$LOG"; die "postgres does not accept connections on 127.0.0.1:$port (log: $LOG)"
}

cmd_start() {
  if running; then
    wait_ready; say "postgres: already running (127.0.0.1:$(live_port), data $DATA)"; return 0
  fi
  cmd_install
  prepare_dirs
  init_data
  # A postmaster killed just now may not be reaped yet; its lock file would stop the new one.
  local old i; old="$(pm_pid)"
  if [[ "$old" =~ ^[0-9]+$ ]]; then
    for ((i = 0; i < 100; i++)); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  fi
  local t0; t0=$(now_ms)
  # The port of a server that has just stopped (or crashed) may be held for a moment more.
  wait_port_free "$PORT" 30 || die "port $PORT is already in use by another process (set PGPORT_ESTAFETTE)"
  as_pg bash -c 'cat >"$1"' _ "$DATA/estafette.conf" <<CONF
# Generated by deploy/local/postgres.sh at each start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
CONF
  # setsid: the server gets its own session, so a Ctrl-C in the calling terminal does not stop it.
  if ! as_pg setsid "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -s 9>&-; then
    tail_log "$LOG"; die "postgres did not start (log: $LOG)"
  fi
  wait_ready
  wait_bound
  say "postgres: ready on 127.0.0.1:$PORT (data $DATA) in $(elapsed "$t0")"
}

# wait_bound: until the server accepts TCP connections on its port (pg_isready may answer through
# a server that is still starting; clients connect over TCP).
wait_bound() {
  local port i; port="$(live_port)"
  for ((i = 0; i < 300; i++)); do port_open "$port" && return 0; sleep 0.1; done
  tail_log "$LOG"; die "postgres does not listen on 127.0.0.1:$port (log: $LOG)"
}

cmd_restart() {
  local mode=fast
  [[ "${1:-}" == "--immediate" ]] && mode=immediate
  if ! running; then cmd_start; return; fi
  local t0; t0=$(now_ms)
  as_pg "$BIN/pg_ctl" stop -D "$DATA" -m "$mode" -w -t 30 -s
  # The postmaster's children leave the port with it; start waits until it is free.
  cmd_start
  say "postgres: restarted ($mode stop) in $(elapsed "$t0")"
}

cmd_stop() {
  if ! running; then say "postgres: not running"; return 0; fi
  as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 30 -s \
    || as_pg "$BIN/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 -s
  say "postgres: stopped"
}

cmd_status() {
  if running; then say "postgres: running (127.0.0.1:$(live_port), data $DATA)"
  else say "postgres: not running (data $DATA)"; return 1; fi
}

need_running() { running || die "postgres is not running; start it with: $0 start"; }

psql_super() { PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(live_port)" -U postgres "$@"; }

# The password of service $1's role: ESTAFETTE_DB_PASSWORD_<SERVICE>, else the one kept in
# passwords.env, else a new random one (48 hex digits).
role_password() {
  local upper="${1^^}" kept=""
  local given="ESTAFETTE_DB_PASSWORD_$upper"
  if [[ -n "${!given:-}" ]]; then printf '%s' "${!given}"; return 0; fi
  [[ -f "$PASSWORDS" ]] && kept="$(sed -n "s/^${upper}_DATABASE_PASSWORD=//p" "$PASSWORDS" | tail -n 1)"
  if [[ -n "$kept" ]]; then printf '%s' "$kept"; return 0; fi
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

# psql commands that give each service's role its password (as psql variables: any character is
# quoted by psql itself, and nothing appears on a command line).
password_sql() {
  local svc pw
  for svc in $SERVICES; do
    pw="$(role_password "$svc")"
    pw="${pw//\\/\\\\}"; pw="${pw//\'/\'\'}"  # psql's quoting: \ → \\, ' → ''
    printf "\\set pw '%s'\n" "$pw"
    printf "SELECT format('ALTER ROLE %%I PASSWORD %%L', '%s', :'pw') \\gexec\n" "$svc"
  done
}

# Keep every service's password in passwords.env (mode 600), as the settings name them.
write_passwords() {
  local svc tmp="$PASSWORDS.tmp" given
  for svc in $SERVICES; do
    given="ESTAFETTE_DB_PASSWORD_${svc^^}"
    [[ "${!given:-}" != *$'\n'* ]] || die "$given must be one line"
  done
  ( umask 077
    { echo "# Written by deploy/local/postgres.sh bootstrap: the database role passwords of the services."
      for svc in $SERVICES; do printf '%s_DATABASE_PASSWORD=%s\n' "${svc^^}" "$(role_password "$svc")"; done
    } >"$tmp" )
  chmod 600 "$tmp"
  mv "$tmp" "$PASSWORDS"
}

cmd_bootstrap() {
  local db="${1:-estafette}"
  [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database name must match [a-z_][a-z0-9_]*: $db"
  need_running
  local t0; t0=$(now_ms)
  write_passwords
  psql_super -d postgres -v db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
  psql_super -d "$db" -v db="$db" -v services="$SERVICES" <<'SQL'
CREATE TEMP TABLE svc AS SELECT unnest(string_to_array(:'services', ' ')) AS name;
SELECT format('CREATE ROLE %I', name) FROM svc
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', name) FROM svc \gexec
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', name, name) FROM svc \gexec
SELECT format('ALTER SCHEMA %I OWNER TO %I', name, name) FROM svc \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET search_path = %I', name, :'db', name) FROM svc \gexec
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', name) FROM svc \gexec
SQL
  password_sql | psql_super -d "$db"
  say "postgres: bootstrapped database $db (roles and schemas: $SERVICES) in $(elapsed "$t0")"
  say "  DSN: postgresql://<service>:<password>@127.0.0.1:$(live_port)/$db (passwords: $PASSWORDS)"
}

cmd_psql() {
  local db=estafette
  if [[ $# -gt 0 && "$1" != -* ]]; then db="$1"; shift; fi
  need_running
  exec "$BIN/psql" -X -h 127.0.0.1 -p "$(live_port)" -U postgres -d "$db" "$@"
}

BIN=""
case "${1:-}" in
  install) lock postgres; cmd_install ;;
  start) lock postgres; cmd_start ;;
  stop) lock postgres; cmd_stop ;;
  restart) shift; lock postgres; cmd_restart "$@" ;;
  status) cmd_status ;;
  bootstrap) shift; lock postgres; cmd_bootstrap "$@" ;;
  psql) shift; cmd_psql "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
