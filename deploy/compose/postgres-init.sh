#!/bin/bash
# The compose file's database bootstrap (run once, by the postgres image, when its data volume is new):
# what deploy/local/postgres.sh bootstrap does. One login role per service of ESTAFETTE_SERVICES (the
# services of services/registry.py) with the password <SERVICE>_DATABASE_PASSWORD, a schema of the
# same name owned by it, search_path set to it, and nothing else: no access to other schemas or public.
set -euo pipefail
db="${POSTGRES_DB:?}"
for svc in ${ESTAFETTE_SERVICES:?}; do
  var="${svc^^}_DATABASE_PASSWORD"
  [[ -n "${!var:-}" ]] || { echo "postgres-init: set $var" >&2; exit 1; }
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$db" -v svc="$svc" -v pw="${!var}" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'svc', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'svc') \gexec
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', :'svc', :'svc') \gexec
SELECT format('ALTER ROLE %I IN DATABASE %I SET search_path = %I', :'svc', :'db', :'svc') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'svc') \gexec
SQL
done
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$db" -v db="$db" <<'SQL'
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
