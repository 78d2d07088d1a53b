#!/usr/bin/env bash
# The Open API benchmark: gateway-api (release) against a scratch database, driven by wrk with
# signed /mch/withdraw requests at CONCURRENCY connections for 15 s (each answer follows the commit
# of the withdrawal, its review job and its replay record), then, on the same cluster in the same run, the peer:
# pgbench running the API's own withdrawal statement for one request per transaction (the same three rows, the
# same conflict handling: `gatewayctl bench api --write-pgbench`), the same three rows the plain way (three inserts
# in one transaction), and pgbench's single-row insert for scale.
# Prints each rate with the CPU it cost per unit of work (the process's and PostgreSQL's, in ms), and the ratios.
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
PGBENCH_SCRIPT="$LOCAL/pgbench-withdraw.sql"
"$BIN/gatewayctl" bench api --requests 200000 --write-requests "$REQUESTS_FILE" --write-pgbench "$PGBENCH_SCRIPT"
POSTMASTER=$(head -n 1 "$LOCAL/pg/postmaster.pid")

DB="${POSTGRES_DB}_bench"
POSTGRES_DB="$DB" "$BIN/gateway-api" --config "$CONFIG" > "$LOCAL/bench-api-server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

api0=$(cpu_ticks "$SERVER"); pg0=$(cpu_ticks "$POSTMASTER")
out=$(WRK_REQUESTS="$REQUESTS_FILE" WRK_THREADS=2 wrk -t2 -c"$CONCURRENCY" -d"${SECONDS_RUN}s" -s "$ROOT/scripts/wrk-withdraw.lua" \
    "http://127.0.0.1:$PORT/mch/withdraw")
api1=$(cpu_ticks "$SERVER"); pg1=$(cpu_ticks "$POSTMASTER")
kill $SERVER 2>/dev/null || true
wait $SERVER 2>/dev/null || true
count=$(echo "$out" | awk '/^wrk_requests / {print $2}')
echo "$out" | grep -E '^(wrk_requests_per_s|p50_ms|p99_ms|errors) ' | sed 's/^wrk_requests_per_s/withdraw_requests_per_s/'
echo "api_cpu_ms_per_request $(cpu_ms_per $((api1 - api0)) "$count")"
echo "postgres_cpu_ms_per_request $(cpu_ms_per $((pg1 - pg0)) "$count")"
ours=$(echo "$out" | awk '/^wrk_requests_per_s/ {print $2}')
errors=$(echo "$out" | awk '/^errors/ {print $2}')

export PGHOST=127.0.0.1 PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_USER" PGDATABASE="$DB"
# pgbench_run NAME SCRIPT: pgbench at the same concurrency; prints NAME_tps and PostgreSQL's CPU per transaction, and
# sets $tps.
pgbench_run() {
    local name=$1 script=$2 p0 p1 report transactions
    p0=$(cpu_ticks "$POSTMASTER")
    report=$("$(pg_bindir)/pgbench" -n -M prepared -c "$CONCURRENCY" -j 2 -T "$SECONDS_RUN" -f "$script" 2>&1) \
        || { echo "$report" >&2; die "pgbench ($name) failed"; }
    p1=$(cpu_ticks "$POSTMASTER")
    tps=$(echo "$report" | awk '/^tps/ {print int($3)}')
    transactions=$(echo "$report" | awk -F'[:/ ]+' '/number of transactions actually processed/ {print $6}')
    echo "${name}_tps $tps"
    echo "${name}_latency_ms $(echo "$report" | awk '/^latency average/ {print $4}')"
    echo "${name}_postgres_cpu_ms_per_tx $(cpu_ms_per $((p1 - p0)) "$transactions")"
}
pgbench_run pgbench_same_statement "$PGBENCH_SCRIPT"
same=$tps
pgbench_run pgbench_plain_three_inserts "${PGBENCH_SCRIPT%.sql}-plain.sql"
plain=$tps
psql -qc "CREATE TABLE IF NOT EXISTS pgbench_single (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v float8, at timestamptz DEFAULT now())" 2>/dev/null
single_script="$LOCAL/pgbench-insert.sql"
echo "INSERT INTO pgbench_single (v) VALUES (random());" > "$single_script"
pgbench_run pgbench_single_insert "$single_script"
single=$tps
echo "ratio_same_statement $(python3 -c "print(round($ours / $same, 2))")   (withdraw requests / pgbench running the API's statement, one request per transaction, concurrency $CONCURRENCY)"
echo "ratio_plain_three_inserts $(python3 -c "print(round($ours / $plain, 2))")   (withdraw requests / pgbench storing the same three rows the plain way: three inserts in one transaction)"
echo "ratio_single_insert $(python3 -c "print(round($ours / $single, 2))")   (withdraw requests / pgbench single-row inserts: scale only, not the same work)"
[ "$errors" = "0" ] || { echo "the run had $errors failed requests" >&2; exit 1; }
