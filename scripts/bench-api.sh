#!/usr/bin/env bash
# The Open API benchmark: signed /mch/withdraw requests at 32 concurrent connections (each
# durable: withdrawal and review job committed), then pgbench running a single-row insert at the
# same concurrency on the same cluster, and the ratio of the two.
#
#   scripts/bench-api.sh [REQUESTS] [CONCURRENCY]     (defaults 20000 32)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REQUESTS="${1:-20000}"
CONCURRENCY="${2:-32}"

bash "$ROOT/scripts/bootstrap.sh"
source "$LOCAL/env"
cd "$ROOT"
say "building gatewayctl (release)"
swift build -c release --product gatewayctl
BIN="$(swift build -c release --show-bin-path)"
export GATEWAY_CONFIG="$ROOT/workers.yml" GATEWAY_SQL_DIR="$ROOT/sql"

ours=$("$BIN/gatewayctl" bench api --requests "$REQUESTS" --concurrency "$CONCURRENCY" | tee /dev/stderr | awk '/^withdraw_requests_per_s/ {print $2}')

DB="${POSTGRES_DB}_bench"
export PGHOST=127.0.0.1 PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_USER" PGDATABASE="$DB"
psql -qc "CREATE TABLE IF NOT EXISTS pgbench_single (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v float8, at timestamptz DEFAULT now())"
script="$LOCAL/pgbench-insert.sql"
echo "INSERT INTO pgbench_single (v) VALUES (random());" > "$script"
peer=$("$(pg_bindir)/pgbench" -n -c "$CONCURRENCY" -j 2 -T 15 -f "$script" 2>/dev/null | tee /dev/stderr | awk '/^tps/ {print int($3)}')
echo "pgbench_single_insert_tps $peer"
echo "ratio $(python3 -c "print(round($ours / $peer, 2))")   (withdraw requests / pgbench inserts, concurrency $CONCURRENCY)"
