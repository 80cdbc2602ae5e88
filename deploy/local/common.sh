# shellcheck shell=bash disable=SC2034
# Shared helpers for the deploy/local/*.sh scripts (sourced, not executed).
# Defines ROOT (the repository), STATE_DIR (runtime state, git-ignored) and PY (a Python with the
# project's dependencies), plus small helpers for pid files, ports and timing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${ESTAFETTE_STATE_DIR:-$ROOT/.local}"
if [[ -n "${ESTAFETTE_PYTHON:-}" ]]; then PY="$ESTAFETTE_PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"
else PY="python3"; fi

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# now_ms: milliseconds since the epoch; elapsed START_MS: "1.23s" since then.
now_ms() { date +%s%3N; }
elapsed() { local d=$(( $(now_ms) - $1 )); printf '%d.%02ds' $((d / 1000)) $((d % 1000 / 10)); }

# proc_alive PID: true if the process exists and has not finished exiting (a killed process may
# linger as a zombie until it is reaped; its main thread may be a zombie while others still run).
proc_alive() {
  local state threads
  kill -0 "$1" 2>/dev/null || return 1
  read -r state threads < <(awk '/^State:/ {s = $2} /^Threads:/ {t = $2} END {print s, t}' "/proc/$1/status" 2>/dev/null) \
    || return 1
  [[ -n "$state" ]] || return 1
  [[ "$state" != Z && "$state" != X ]] || (( ${threads:-1} > 1 ))
}

# pid_alive PIDFILE: true if the file names a live process.
pid_alive() {
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(<"$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] && proc_alive "$pid"
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port_free PORT [TIMEOUT_S]: true once nothing listens on PORT (a process that has just
# exited may still hold it for a moment), false after TIMEOUT_S (default 10).
wait_port_free() {
  local i
  for ((i = 0; i < ${2:-10} * 10; i++)); do port_open "$1" || return 0; sleep 0.1; done
  return 1
}

# stop_pid PIDFILE NAME [TIMEOUT_S]: SIGTERM, wait up to TIMEOUT_S (default 30), then SIGKILL
# (and return 3: it did not exit cleanly).
stop_pid() {
  local pidfile="$1" name="$2" timeout="${3:-30}" pid i
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"; say "$name: not running"; return 0
  fi
  pid="$(<"$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    proc_alive "$pid" || { rm -f "$pidfile"; say "$name: stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  say "$name: did not exit within ${timeout}s after SIGTERM, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do proc_alive "$pid" || break; sleep 0.1; done
  rm -f "$pidfile"
  say "$name: killed (pid $pid)"
  return 3
}

# tail_log FILE [N]: show the last N (default 40) lines of a log, indented, on stderr.
tail_log() {
  [[ -f "$1" ]] || return 0
  printf -- '--- last lines of %s ---\n' "$1" >&2
  tail -n "${2:-40}" "$1" | sed 's/^/  /' >&2
}

# lock NAME: hold an exclusive lock on <state>/.NAME.lock (fd 9) until the script exits, so that
# two concurrent start/stop calls on the same state dir do not race. Whatever keeps running after
# the script must not inherit fd 9 (launch closes it).
lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.$1.lock"
  flock -w 300 9 || die "another $1 command on $STATE_DIR has been busy for 5 minutes"
}

# launch PIDFILE LOG DIR CMD...: run CMD in the background in its own session (it survives the
# calling shell and its Ctrl-C), cwd DIR, output to LOG; the pid file names CMD's own process.
launch() {
  local pidfile="$1" log="$2" dir="$3" i; shift 3
  rm -f "$pidfile"
  (cd "$dir" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$log" 2>&1 </dev/null 9>&-) &
  for ((i = 0; i < 50; i++)); do [[ -s "$pidfile" ]] && return 0; sleep 0.05; done
  die "could not launch $1 (log: $log)"
}
