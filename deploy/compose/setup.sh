#!/bin/sh
# The compose file's one-shot service `kafka-setup` (image target kafka-setup of deploy/Dockerfile):
# what deploy/local/kafka.sh start and `make run` do once the broker answers, as the admin principal
# (ESTAFETTE_KAFKA_BOOTSTRAP/_USERNAME/_PASSWORD):
#   1. estafette kafka setup   every service's SCRAM user, the national topics, their ACLs
#   2. estafette regions apply each region of deploy/regions.toml: its topics, grants, registry record
# The services' Kafka passwords come from <SERVICE>_KAFKA_PASSWORD, one per service of
# services/registry.py. Idempotent: run again after changing deploy/regions.toml.
# With arguments it runs that operator command instead, as admin:
#   docker compose -f deploy/compose.yaml run --rm kafka-setup keys create --role admin
set -eu
[ "$#" -eq 0 ] || exec estafette "$@"
umask 077
creds="$(mktemp)"
trap 'rm -f "$creds"' EXIT
python - "$creds" <<'PY'
import os
import sys

from services.registry import NAMES

missing = [f"{n.upper()}_KAFKA_PASSWORD" for n in NAMES if not os.environ.get(f"{n.upper()}_KAFKA_PASSWORD")]
if missing:
    sys.exit(f"kafka-setup: set {', '.join(missing)}")
with open(sys.argv[1], "w") as out:
    out.writelines(f"{n.upper()}_KAFKA_PASSWORD={os.environ[n.upper() + '_KAFKA_PASSWORD']}\n" for n in NAMES)
PY
# The broker takes connections a moment before it accepts admin's SCRAM login: try for a minute.
tries=0
until estafette kafka setup --credentials "$creds"; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "kafka-setup: Kafka did not accept the setup within a minute" >&2; exit 1; }
  sleep 2
done
estafette regions apply
