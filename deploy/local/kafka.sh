#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, no Docker.
# Jars come from the project file deploy/local/kafka/pom.xml via Maven; state lives in
# $ESTAFETTE_STATE_DIR/kafka (default <repo>/.local/kafka).
#
# Security: clients connect with SASL_PLAINTEXT + SCRAM-SHA-512 only (a client without credentials is
# refused); the StandardAuthorizer allows nothing without an ACL, except to the super user `admin`.
# The controller listener takes SASL/PLAIN with one static user, admin (SCRAM cannot be used there:
# its credentials live in the metadata log the controller serves). Every principal's password is
# generated once per state dir into <state>/kafka/credentials.env (mode 600); admin's SCRAM credential
# is written at storage format time, the services' SCRAM users, the national topics and their ACLs by
# `estafette kafka setup`, which `start` runs once the broker answers.
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") {install|start|stop|status|wait|setup|logs}
  install  gather the Kafka jars with Maven into <state>/kafka/lib (skipped when present) and
           build the admin program (kafka/KafkaAdmin.java) into <state>/kafka/admin
  start    install if needed, make the passwords once, format storage once, start the broker,
           wait until it answers (as admin), then run the setup
  setup    SCRAM users of the services, national topics, their ACLs (estafette kafka setup)
  stop     SIGTERM, wait up to 30s, then SIGKILL
  status   exit 0 if running
  wait     wait until the broker answers a metadata request (KAFKA_WAIT_TIMEOUT, default 60s)
files: <state>/kafka/credentials.env  ADMIN_KAFKA_PASSWORD=..., <SERVICE>_KAFKA_PASSWORD=... (mode 600)
       <state>/kafka/admin.properties client properties of the admin principal (mode 600)
  logs     tail the broker log (-f to follow)
env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), ESTAFETTE_STATE_DIR (<repo>/.local),
     KAFKA_CDS=0 to start without the class-data-sharing archive
USAGE
}

HERE="$ROOT/deploy/local/kafka"
KDIR="$STATE_DIR/kafka"
LIB="$KDIR/lib"
DATA="$KDIR/data"
CONF="$KDIR/server.properties"
CREDS="$KDIR/credentials.env"
ADMIN_PROPS="$KDIR/admin.properties"
ADMIN_SRC="$HERE/KafkaAdmin.java"
PIDFILE="$KDIR/kafka.pid"
LOG="$KDIR/kafka.log"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
WAIT_TIMEOUT="${KAFKA_WAIT_TIMEOUT:-60}"

# The jar cache is complete once the install step wrote its stamp (holding the pom's checksum).
pom_sum() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }
installed() { [[ -f "$LIB/.complete" && "$(<"$LIB/.complete")" == "$(pom_sum)" ]]; }

cmd_install() {
  if installed; then
    say "kafka: jars present ($(ls "$LIB"/*.jar | wc -l) in $LIB)"; compile_admin; return 0
  fi
  command -v java >/dev/null || die "java not found: install a JDK 17+ (Debian: openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: maven)"
  pid_alive "$PIDFILE" && die "kafka is running from the jars to be replaced; stop it first: $0 stop"
  local t0; t0=$(now_ms)
  say "kafka: gathering jars with Maven into $LIB ..."
  rm -rf "$LIB" "$KDIR"/kafka-*.jsa*; mkdir -p "$LIB"
  # (sed: Debian's Maven 3.8 prints stray colour resets even in batch mode)
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIB" -DincludeScope=runtime 2>&1 | sed 's/\x1b\[0m//g' \
    || die "Maven could not gather the Kafka jars (see its output above)"
  pom_sum >"$LIB/.complete"
  say "kafka: installed $(ls "$LIB"/*.jar | wc -l) jars in $(elapsed "$t0")"
  compile_admin
}

# The admin program (SCRAM users, ACLs: aiokafka cannot) built against the jars, into
# <state>/kafka/admin/kafka-admin.jar (estafette/tools/kafka_security.py AdminTool: stamped with the
# source's and the jars' checksums, rebuilt when either changes).
ADMIN_JAR="$KDIR/admin/kafka-admin.jar"
compile_admin() {
  local want; want="$(sha256sum "$ADMIN_SRC" | cut -d' ' -f1) $(<"$LIB/.complete")"
  [[ -f "$KDIR/admin/.complete" && "$(<"$KDIR/admin/.complete")" == "$want" ]] && return 0
  command -v javac >/dev/null || die "javac not found: install a JDK 17+ (Debian: openjdk-17-jdk-headless)"
  ( cd "$ROOT" && "$PY" -m estafette.tools.kafka_security build "$LIB" >/dev/null ) \
    || die "building the admin program ($ADMIN_SRC) failed"
}

# admin_tool [ARGS]: run the admin program (request JSON on stdin, answer JSON on stdout).
admin_tool() {
  java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m -Xshare:auto -Xlog:disable -Xlog:all=error:stderr \
    -Dlog4j2.configurationFile="$HERE/admin-log4j2.properties" -cp "$ADMIN_JAR:$LIB/*" KafkaAdmin "$@"
}

# --- passwords --------------------------------------------------------------------------------
# Every principal's password, made once per state dir (the data dir may be wiped, e.g. by each test
# session, and formatted again: the passwords stay). A principal added later (a new service in
# services/registry.py) gets its password at the next start; kept ones never change.
PRINCIPALS=""
principals() {
  if [[ -z "$PRINCIPALS" ]]; then
    PRINCIPALS="admin $(cd "$ROOT" && "$PY" -c 'from services.registry import NAMES; print(" ".join(NAMES))')" \
      || die "cannot read the services from services/registry.py (with $PY)"
  fi
  printf '%s\n' $PRINCIPALS
}
credential() { { [[ -f "$CREDS" ]] && sed -n "s/^${1^^}_KAFKA_PASSWORD=//p" "$CREDS" | tail -n 1; } || true; }
new_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

ensure_credentials() {
  local p missing=0 tmp="$CREDS.tmp"
  mkdir -p "$KDIR"
  principals >/dev/null  # (once, here: not in a subshell)
  for p in $(principals); do [[ -n "$(credential "$p")" ]] || missing=1; done
  if [[ $missing == 1 ]]; then
    ( umask 077
      { echo "# Written by deploy/local/kafka.sh: the Kafka principals' SCRAM-SHA-512 passwords (kept across data wipes)."
        for p in $(principals); do printf '%s_KAFKA_PASSWORD=%s\n' "${p^^}" "$(credential "$p")"; done
      } >"$tmp" )
    # fill the new ones (hex only: no quoting needed in JAAS or properties)
    local line out=""
    while IFS= read -r line; do
      [[ "$line" == *_KAFKA_PASSWORD= ]] && line="$line$(new_password)"
      out+="$line"$'\n'
    done <"$tmp"
    ( umask 077; printf '%s' "$out" >"$tmp" )
    mv -f "$tmp" "$CREDS"
    say "kafka: passwords written to $CREDS"
  fi
  chmod 600 "$CREDS"
}

# write_config [repair]: (mode 600: it holds admin's password). `repair` also lets admin log in on the
# client listener with SASL/PLAIN (the static password of credentials.env), for repair_admin only.
write_config() {
  local admin repair=""; admin="$(credential admin)"
  [[ -n "$admin" ]] || die "no admin password in $CREDS"
  if [[ "${1:-}" == repair ]]; then
    repair="# REPAIR MODE (repair_admin): admin may log in with PLAIN here until the next start.
listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"$admin\";"
  fi
  mkdir -p "$DATA"
  ( umask 077; cat >"$CONF.tmp" <<PROPS
# Generated by deploy/local/kafka.sh at each start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=CLIENT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=CLIENT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
# Clients (and this broker's own inter-broker traffic, as admin): SCRAM-SHA-512 only.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512${repair:+,PLAIN}
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
${repair}
# The controller listener: SASL/PLAIN with one static user (SCRAM credentials live in the metadata
# the controller serves, so they cannot guard it); the broker part and the admin program's repair
# of admin's SCRAM credential log in there as admin.
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
# Nothing is allowed without an ACL; admin may do everything.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a crash (kill -9) the new process may register only once the old registration's session
# expired: a shorter session (default 9 s) makes such a restart quicker.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
PROPS
  )
  mv -f "$CONF.tmp" "$CONF"
  ( umask 077; cat >"$ADMIN_PROPS.tmp" <<PROPS
# The admin principal's client properties for the local broker (written by deploy/local/kafka.sh),
# e.g. for Kafka's own tools: --command-config $ADMIN_PROPS
bootstrap.servers=127.0.0.1:$PORT
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
PROPS
  )
  mv -f "$ADMIN_PROPS.tmp" "$ADMIN_PROPS"
}

# secured_conf: the running broker's config is this script's secured one (an older kafka.sh
# started brokers without security).
secured_conf() { grep -q '^authorizer.class.name=' "$CONF" 2>/dev/null; }

# Storage is formatted once per state dir; the log dir is bound to the cluster id kept beside it.
format_storage() {
  [[ -f "$DATA/meta.properties" ]] && return 0
  if [[ ! -s "$KDIR/cluster.id" ]]; then
    local id=""
    # A Kafka Uuid: 16 random bytes, base64url without padding, not starting with '-'.
    while [[ -z "$id" || "$id" == -* ]]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    printf '%s\n' "$id" >"$KDIR/cluster.id"
  fi
  say "kafka: formatting storage (cluster id $(<"$KDIR/cluster.id"))"
  # admin's SCRAM credential goes into the new metadata log; the arguments are in a file (mode 600)
  # so that its password never shows on a command line.
  local args="$KDIR/format.args" rc=0
  ( umask 077; printf '%s\n' -cp "$LIB/*" "-Dlog4j2.configurationFile=$HERE/log4j2.properties" \
      kafka.tools.StorageTool format --standalone -t "$(<"$KDIR/cluster.id")" -c "$CONF" --ignore-formatted \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$(credential admin)]" >"$args" )
  java "@$args" >/dev/null || rc=$?
  rm -f "$args"
  [[ $rc -eq 0 ]] || die "formatting Kafka storage in $DATA failed"
}

# repair_admin: admin's SCRAM credential is missing from the metadata log (a data dir formatted by an
# older kafka.sh, without security) or is not the password of credentials.env (the file was replaced).
# The admin client cannot change SCRAM credentials through the controller listener, so the broker is
# restarted once with SASL/PLAIN for admin also enabled on the client listener, admin's SCRAM credential
# is set over it, and the broker is restarted as configured (SCRAM only).
repair_admin() {
  local admin rc=0 answer; admin="$(credential admin)"
  say "kafka: the broker refuses admin's password (data dir formatted without it?); restoring admin's SCRAM credential"
  compile_admin
  cmd_stop >/dev/null
  write_config repair
  launch_broker
  answer="$(admin_tool <<JSON
{"connection": {"bootstrap.servers": "127.0.0.1:$PORT", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
  "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required username=\\"admin\\" password=\\"$admin\\";",
  "default.api.timeout.ms": "$((WAIT_TIMEOUT * 1000))"},
 "operations": [{"op": "upsert-scram", "user": "admin", "password": "$admin"}]}
JSON
)" || rc=$?
  cmd_stop >/dev/null
  write_config
  [[ $rc -eq 0 ]] || { tail_log "$LOG"; die "could not restore admin's SCRAM credential: $answer"; }
  launch_broker
}

launch_broker() {
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.1"
  launch "$PIDFILE" "$LOG" "$KDIR" java -Xms256m -Xmx512m -XX:+UseG1GC \
    "$(cds_opts)" -Xlog:cds=off -Xlog:cds+dynamic=off -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$LIB/*" kafka.Kafka "$CONF"
}

# Class-data sharing: the first run dumps the classes it loaded into an archive when it exits
# cleanly (kafka.sh stop); later starts map it and start faster. The archive is bound to the
# JDK build and the jar set, so its name carries both.
cds_opts() {
  local java_home sum
  if [[ "${KAFKA_CDS:-1}" == 0 ]]; then echo "-Xshare:auto"; return 0; fi
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  sum="$(cat "$java_home/release" "$LIB/.complete" 2>/dev/null | sha256sum | cut -c1-12)"
  JSA="$KDIR/kafka-$sum.jsa"
  rm -f "$KDIR"/*.jsa.tmp
  find "$KDIR" -maxdepth 1 -name 'kafka-*.jsa' ! -name "kafka-$sum.jsa" -delete
  # (-Xlog: the dump warns about each class it cannot archive; a stale archive is just not used)
  if [[ -s "$JSA" ]]; then echo "-XX:SharedArchiveFile=$JSA"; else echo "-XX:ArchiveClassesAtExit=$JSA.tmp"; fi
}

# After a clean exit, a freshly dumped archive becomes the one to use.
adopt_cds() {
  local tmp
  for tmp in "$KDIR"/kafka-*.jsa.tmp; do [[ -s "$tmp" ]] && mv -f "$tmp" "${tmp%.tmp}"; done
  return 0
}

cmd_stop() {
  local rc=0
  stop_pid "$PIDFILE" kafka 30 || rc=$?
  if [[ $rc -eq 0 ]]; then adopt_cds; else rm -f "$KDIR"/*.jsa.tmp; fi
}

running_port() { sed -n 's/^listeners=[A-Z_]*:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$CONF" 2>/dev/null || true; }

# ready_check: 0 once our broker (our cluster id) answers a metadata request as admin, 2 if its
# process died, 3 if admin's password is refused, 1 on timeout.
ready_check() {
  local port; port="$(running_port)"
  KAFKA_READY_USERNAME=admin KAFKA_READY_PASSWORD="$(credential admin)" \
    "$PY" "$ROOT/deploy/local/kafka_ready.py" "${port:-$PORT}" "$WAIT_TIMEOUT" "$(<"$PIDFILE")" \
    "$(cat "$KDIR/cluster.id" 2>/dev/null)"
}

# wait_result RC: 0 goes on; any other result of ready_check says what went wrong and stops.
wait_result() {
  case $1 in
    0) return 0 ;;
    2) tail_log "$LOG"; die "kafka exited during start-up (log: $LOG)" ;;
    3) die "kafka refuses admin's password from $CREDS; restart it to restore it: $0 stop && $0 start" ;;
    4) die "the readiness check needs aiokafka: create the project's environment first (make install)" ;;
    *) tail_log "$LOG"
       die "kafka did not answer on 127.0.0.1:$(running_port) within ${WAIT_TIMEOUT}s (log: $LOG)" ;;
  esac
}

cmd_wait() {
  pid_alive "$PIDFILE" || die "kafka is not running (state $KDIR)"
  local rc=0
  ready_check || rc=$?
  wait_result $rc
}

# cmd_setup: the services' SCRAM users, the national topics and the ACLs (estafette kafka setup),
# as admin on this broker.
cmd_setup() {
  pid_alive "$PIDFILE" || die "kafka is not running (state $KDIR)"
  local t0; t0=$(now_ms)
  ( cd "$ROOT" && ESTAFETTE_STATE_DIR="$STATE_DIR" ESTAFETTE_KAFKA_BOOTSTRAP="127.0.0.1:$(running_port)" \
      ESTAFETTE_KAFKA_USERNAME=admin ESTAFETTE_KAFKA_PASSWORD="$(credential admin)" \
      "$PY" -m estafette.tools.cli kafka setup ) || die "the Kafka setup failed (estafette kafka setup)"
  say "kafka: setup done in $(elapsed "$t0")"
}

cmd_start() {
  if pid_alive "$PIDFILE" && ! secured_conf; then
    say "kafka: running without security (started by an older kafka.sh); restarting it"
    cmd_stop
  fi
  if pid_alive "$PIDFILE"; then
    local rc=0
    ready_check || rc=$?
    case $rc in
      0) say "kafka: already running (pid $(<"$PIDFILE"), 127.0.0.1:$(running_port))"; return 0 ;;
      2) say "kafka: the previous process (pid $(<"$PIDFILE")) just exited; starting anew" ;;
      3) say "kafka: the running broker refuses admin's password from $CREDS; restarting it"; cmd_stop ;;
      4) die "the readiness check needs aiokafka: create the project's environment first (make install)" ;;
      *) tail_log "$LOG"; die "kafka is running (pid $(<"$PIDFILE")) but does not answer; try: $0 stop" ;;
    esac
  fi
  cmd_install
  local t0; t0=$(now_ms)
  wait_port_free "$PORT" || die "port $PORT is already in use by another process (set KAFKA_PORT)"
  wait_port_free "$CPORT" || die "port $CPORT is already in use by another process (set KAFKA_CONTROLLER_PORT)"
  ensure_credentials
  write_config
  format_storage
  launch_broker
  local rc=0
  ready_check || rc=$?
  if [[ $rc -eq 3 ]]; then
    repair_admin
    rc=0; ready_check || rc=$?
  fi
  wait_result $rc
  say "kafka: ready on 127.0.0.1:$PORT (SASL/SCRAM-SHA-512; controller $CPORT, pid $(<"$PIDFILE")) in $(elapsed "$t0")"
  cmd_setup
}

cmd_status() {
  if pid_alive "$PIDFILE"; then
    say "kafka: running (pid $(<"$PIDFILE"), 127.0.0.1:$(running_port), state $KDIR)"
  else
    say "kafka: not running (state $KDIR)"; return 1
  fi
}

cmd_logs() {
  [[ -f "$LOG" ]] || die "no log yet at $LOG"
  if [[ "${1:-}" == "-f" ]]; then exec tail -n 50 -f "$LOG"; else tail -n 100 "$LOG"; fi
}

case "${1:-}" in
  install) lock kafka; cmd_install ;;
  start) lock kafka; cmd_start ;;
  stop) lock kafka; cmd_stop ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  setup) lock kafka; cmd_setup ;;
  logs) shift; cmd_logs "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
