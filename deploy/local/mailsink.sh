#!/usr/bin/env bash
# Local mail sink (estafette/mailsink.py) in the background: SMTP on 127.0.0.1:$MAILSINK_SMTP_PORT,
# web page and JSON API on http://127.0.0.1:$MAILSINK_HTTP_PORT/. Messages, pid and log live in
# $ESTAFETTE_STATE_DIR/mail (default <repo>/.local/mail).
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") {start|stop|status}
  start   start in the background and wait until both ports answer (no-op if running)
  stop    SIGTERM, wait up to 10s, then SIGKILL
  status  exit 0 if running
env: MAILSINK_SMTP_PORT (1025), MAILSINK_HTTP_PORT (8025), ESTAFETTE_STATE_DIR (<repo>/.local)
USAGE
}

MDIR="$STATE_DIR/mail"
PIDFILE="$MDIR/mailsink.pid"
PORTS="$MDIR/ports"
LOG="$MDIR/mailsink.log"
SMTP_PORT="${MAILSINK_SMTP_PORT:-1025}"
HTTP_PORT="${MAILSINK_HTTP_PORT:-8025}"

# The ports of the running sink (written at start), else the configured ones.
live_ports() { if [[ -s "$PORTS" ]]; then cat "$PORTS"; else echo "$SMTP_PORT $HTTP_PORT"; fi; }

# ours PORT PID: the sink answering on PORT is process PID (another one may hold the port).
ours() {
  local reply
  reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /api/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 \
            && timeout 5 cat <&3) 2>/dev/null)" || return 1
  [[ "$reply" == *"\"pid\":$2,"* ]]
}

cmd_start() {
  if pid_alive "$PIDFILE"; then
    say "mailsink: already running (pid $(<"$PIDFILE"), smtp/http $(live_ports | tr ' ' /))"; return 0
  fi
  local t0 i; t0=$(now_ms)
  mkdir -p "$MDIR"
  wait_port_free "$SMTP_PORT" 5 || die "port $SMTP_PORT is already in use by another process (set MAILSINK_SMTP_PORT)"
  wait_port_free "$HTTP_PORT" 5 || die "port $HTTP_PORT is already in use by another process (set MAILSINK_HTTP_PORT)"
  echo "$SMTP_PORT $HTTP_PORT" >"$PORTS"
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.1"
  ESTAFETTE_STATE_DIR="$STATE_DIR" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    launch "$PIDFILE" "$LOG" "$ROOT" "$PY" -m estafette.tools.mailsink --smtp-port "$SMTP_PORT" --http-port "$HTTP_PORT"
  for ((i = 0; i < 300; i++)); do
    pid_alive "$PIDFILE" || { tail_log "$LOG"; die "the mail sink exited during start-up (log: $LOG)"; }
    if port_open "$SMTP_PORT" && ours "$HTTP_PORT" "$(<"$PIDFILE")"; then
      say "mailsink: ready, SMTP 127.0.0.1:$SMTP_PORT, web http://127.0.0.1:$HTTP_PORT/ (pid $(<"$PIDFILE")) in $(elapsed "$t0")"
      return 0
    fi
    sleep 0.1
  done
  tail_log "$LOG"; die "the mail sink did not open its ports within 30s (log: $LOG)"
}

cmd_status() {
  if pid_alive "$PIDFILE"; then
    local p; p="$(live_ports)"
    say "mailsink: running (pid $(<"$PIDFILE"), SMTP 127.0.0.1:${p% *}, web http://127.0.0.1:${p#* }/)"
  else
    say "mailsink: not running (state $MDIR)"; return 1
  fi
}

case "${1:-}" in
  start) lock mailsink; cmd_start ;;
  stop) lock mailsink; stop_pid "$PIDFILE" mailsink 10 || true; rm -f "$PORTS" ;;
  status) cmd_status ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
