#!/bin/sh
# Create Temporal's two PostgreSQL databases and bring their schemas up to date: idempotent, so
# it runs before every start (docker-compose.yml's temporal-schema job; the cluster tests run
# this same file). Needs temporal-sql-tool on PATH and, in the environment:
#   SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD     the PostgreSQL server (a superuser, or one that
#                                               may create databases)
#   TEMPORAL_SCHEMA_DIR    the server release's schema/postgresql/v12 directory
#   TEMPORAL_DB_NAME TEMPORAL_VISIBILITY_DB_NAME (temporal, temporal_visibility)
set -eu
export SQL_PLUGIN=postgres12
schema="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
main="${TEMPORAL_DB_NAME:-temporal}"
visibility="${TEMPORAL_VISIBILITY_DB_NAME:-temporal_visibility}"
for pair in "$main:temporal" "$visibility:visibility"; do
  db="${pair%%:*}"
  kind="${pair#*:}"
  # create-database fails when it exists; --quiet keeps going (a rerun, a second job)
  temporal-sql-tool --db "$db" --quiet create-database
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$schema/$kind/versioned"
done
