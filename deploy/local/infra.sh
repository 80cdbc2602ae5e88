#!/usr/bin/env bash
# The whole local infrastructure: Kafka, PostgreSQL (bootstrapped) and the mail sink.
set -euo pipefail
source "$(dirname "$0")/common.sh"
HERE="$ROOT/deploy/local"

usage() {
  cat <<USAGE
usage: $(basename "$0") {up|down|status}
  up      install what is missing, start Kafka, PostgreSQL (+ bootstrap of database
          \${ESTAFETTE_DB:-estafette}) and the mail sink; each step is idempotent
  down    stop all three
  status  show each; exit 0 only if all three run
state: $STATE_DIR (ESTAFETTE_STATE_DIR); ports: KAFKA_PORT, KAFKA_CONTROLLER_PORT,
       PGPORT_ESTAFETTE, MAILSINK_SMTP_PORT, MAILSINK_HTTP_PORT
USAGE
}

cmd_up() {
  local t0; t0=$(now_ms)
  say "infra: up (state $STATE_DIR)"
  "$HERE/kafka.sh" start
  "$HERE/postgres.sh" start
  "$HERE/postgres.sh" bootstrap "${ESTAFETTE_DB:-estafette}"
  "$HERE/mailsink.sh" start
  say "infra: all up in $(elapsed "$t0")"
}

cmd_down() {
  local t0; t0=$(now_ms) rc=0
  "$HERE/mailsink.sh" stop || rc=1
  "$HERE/postgres.sh" stop || rc=1
  "$HERE/kafka.sh" stop || rc=1
  say "infra: down in $(elapsed "$t0")"
  return $rc
}

cmd_status() {
  local rc=0
  "$HERE/kafka.sh" status || rc=1
  "$HERE/postgres.sh" status || rc=1
  "$HERE/mailsink.sh" status || rc=1
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
