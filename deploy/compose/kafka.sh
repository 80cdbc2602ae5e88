#!/bin/bash
# The compose file's Kafka broker (deploy/compose.yaml, service `kafka`, image apache/kafka): one KRaft
# node secured as deploy/local/kafka.sh secures the local one. Clients connect with SASL_PLAINTEXT +
# SCRAM-SHA-512 only, the StandardAuthorizer allows nothing without an ACL except to the super user
# admin, the controller listener takes admin alone with SASL/PLAIN. admin's SCRAM credential is added
# when the storage is formatted (once per data volume); the services' users, topics and ACLs are made
# afterwards by the one-shot service `kafka-setup` (estafette kafka setup, estafette regions apply).
# Env: ADMIN_KAFKA_PASSWORD (required; hex or letters, digits and hyphens: it is written into JAAS lines).
set -euo pipefail
: "${ADMIN_KAFKA_PASSWORD:?set ADMIN_KAFKA_PASSWORD}"
[[ "$ADMIN_KAFKA_PASSWORD" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "ADMIN_KAFKA_PASSWORD: letters, digits, . _ - only" >&2; exit 2; }

KAFKA=/opt/kafka
DATA=/var/lib/kafka/data
CONF=/var/lib/kafka/server.properties
admin="$ADMIN_KAFKA_PASSWORD"

umask 077
cat >"$CONF" <<PROPS
# Written by deploy/compose/kafka.sh at each start (mirrors deploy/local/kafka.sh's write_config).
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=kafka:9093
listeners=CLIENT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093
advertised.listeners=CLIENT://kafka:9092,CONTROLLER://kafka:9093
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
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
PROPS

if [[ ! -f "$DATA/meta.properties" ]]; then
  # As deploy/local/kafka.sh: the arguments (admin's password among them) go to java through a
  # mode-600 argument file, never on a command line.
  # A Kafka Uuid: 16 random bytes, base64url without padding, not starting with '-'.
  id=""
  while [[ -z "$id" || "$id" == -* ]]; do id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; done
  args="$(mktemp)"
  printf '%s\n' -cp "$KAFKA/libs/*" kafka.tools.StorageTool format --standalone \
    -t "$id" -c "$CONF" --ignore-formatted \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$admin]" >"$args"
  rc=0; java "@$args" >/dev/null || rc=$?
  rm -f "$args"
  [[ $rc -eq 0 ]] || { echo "kafka: formatting the storage in $DATA failed" >&2; exit 1; }
fi
exec "$KAFKA/bin/kafka-server-start.sh" "$CONF"
