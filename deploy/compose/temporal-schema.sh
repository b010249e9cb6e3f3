#!/bin/sh
# One-shot (admin-tools image): Temporal's two databases on PostgreSQL, created and brought to the
# image's schema version. Every step is idempotent (create-database and setup-schema leave an existing
# database alone; update-schema applies only the versions it lacks), so this runs at every `up`, and
# after an image upgrade it upgrades the schema before the new server starts.
# The connection comes from SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD.
set -eu
schema=/etc/temporal/schema/postgresql/v12
for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  temporal-sql-tool --db "$db" create-database
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$schema/${pair#*:}/versioned"
done
echo "Temporal schemas ready"
