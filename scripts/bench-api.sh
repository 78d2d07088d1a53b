#!/usr/bin/env bash
# The Open API benchmark: gateway-api (release) against a scratch database, driven by wrk with
# signed /mch/withdraw requests at CONCURRENCY connections for 15 s (each answer follows the commit
# of the withdrawal and its review job), then pgbench running a single-row insert at the same
# concurrency on the same cluster, and the ratio of the two. Both clients are separate C programs.
#
#   scripts/bench-api.sh [CONCURRENCY]     (default 32)
#
# `gatewayctl bench api` measures the same with an in-process Swift client instead of wrk.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CONCURRENCY="${1:-32}"
SECONDS_RUN=15

bash "$ROOT/scripts/bootstrap.sh"
source "$LOCAL/env"
cd "$ROOT"
if ! command -v wrk >/dev/null; then
    say "installing wrk"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y wrk >/dev/null; }
fi
say "building gatewayctl and gateway-api (release)"
swift build -c release --product gatewayctl
swift build -c release --product gateway-api
BIN="$(swift build -c release --show-bin-path)"
export GATEWAY_SQL_DIR="$ROOT/sql"

PORT="$(free_port 18080)"
CONFIG="$LOCAL/bench-api.yml"
sed -e "s/listen: 127.0.0.1:8080/listen: 127.0.0.1:$PORT/" -e 's/^log_level: info/log_level: warning/' "$ROOT/workers.yml" > "$CONFIG"
export GATEWAY_CONFIG="$CONFIG"
REQUESTS_FILE="$LOCAL/bench-api-requests.txt"
# Enough signed requests that none repeats within the run (a repeat is a refused replay).
"$BIN/gatewayctl" bench api --requests 200000 --write-requests "$REQUESTS_FILE"

DB="${POSTGRES_DB}_bench"
POSTGRES_DB="$DB" "$BIN/gateway-api" --config "$CONFIG" > "$LOCAL/bench-api-server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

out=$(WRK_REQUESTS="$REQUESTS_FILE" WRK_THREADS=2 wrk -t2 -c"$CONCURRENCY" -d"${SECONDS_RUN}s" -s "$ROOT/scripts/wrk-withdraw.lua" \
    "http://127.0.0.1:$PORT/mch/withdraw")
kill $SERVER 2>/dev/null || true
wait $SERVER 2>/dev/null || true
echo "$out" | grep -E '^(wrk_requests_per_s|p50_ms|p99_ms|errors) ' | sed 's/^wrk_requests_per_s/withdraw_requests_per_s/'
ours=$(echo "$out" | awk '/^wrk_requests_per_s/ {print $2}')
errors=$(echo "$out" | awk '/^errors/ {print $2}')

export PGHOST=127.0.0.1 PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_USER" PGDATABASE="$DB"
psql -qc "CREATE TABLE IF NOT EXISTS pgbench_single (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v float8, at timestamptz DEFAULT now())" 2>/dev/null
script="$LOCAL/pgbench-insert.sql"
echo "INSERT INTO pgbench_single (v) VALUES (random());" > "$script"
peer=$("$(pg_bindir)/pgbench" -n -c "$CONCURRENCY" -j 2 -T "$SECONDS_RUN" -f "$script" 2>/dev/null | awk '/^tps/ {print int($3)}')
echo "pgbench_single_insert_tps $peer"
echo "ratio $(python3 -c "print(round($ours / $peer, 2))")   (withdraw requests / pgbench inserts, concurrency $CONCURRENCY)"
[ "$errors" = "0" ] || { echo "the run had $errors failed requests" >&2; exit 1; }
