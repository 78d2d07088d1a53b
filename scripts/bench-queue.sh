#!/usr/bin/env bash
# The queue benchmark side by side with pgqueuer 1.6.0 on the same local cluster, at batch 10 and
# batch 100, with the disk's fdatasync rate read just before. Needs PyPI for pgqueuer (installed
# into .venv-pgq). Prints both figures and their ratio per batch size.
#
#   scripts/bench-queue.sh [JOBS] [WORKERS]     (defaults 50000 5)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
JOBS="${1:-50000}"
WORKERS="${2:-5}"

bash "$ROOT/scripts/bootstrap.sh"
source "$LOCAL/env"
cd "$ROOT"
say "building gatewayctl (release)"
swift build -c release --product gatewayctl
BIN="$(swift build -c release --show-bin-path)"
export GATEWAY_CONFIG="$ROOT/workers.yml" GATEWAY_SQL_DIR="$ROOT/sql"

PEER="$ROOT/../shared/bench/pgqueuer_bench.py"
[ -f "$PEER" ] || die "peer benchmark not found at $PEER"
if [ ! -x "$ROOT/.venv-pgq/bin/python" ]; then
    say "installing pgqueuer 1.6.0 into .venv-pgq"
    python3 -m venv "$ROOT/.venv-pgq"
    "$ROOT/.venv-pgq/bin/pip" install -q pgqueuer==1.6.0 asyncpg uvloop
fi
export PGHOST=127.0.0.1 PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_USER" PGDATABASE=pgq_bench
if ! psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'pgq_bench'" | grep -q 1; then
    psql -d postgres -qc "CREATE DATABASE pgq_bench"
fi
if ! psql -Atqc "SELECT to_regclass('pgqueuer')" | grep -q pgqueuer; then
    "$ROOT/.venv-pgq/bin/pgq" install >/dev/null
fi

fsync_rate() {
    "$(pg_bindir)/pg_test_fsync" -s 2 -f "$LOCAL/pg_test_fsync.out" 2>/dev/null | grep -m1 -E '^[[:space:]]+fdatasync[[:space:]]+[0-9]' | awk '{print $2}'
    rm -f "$LOCAL/pg_test_fsync.out"
}

for batch in 10 100; do
    echo "--- batch $batch, $JOBS jobs, $WORKERS workers; pg_test_fsync fdatasync/s: $(fsync_rate)"
    ours=$("$BIN/gatewayctl" bench queue --jobs "$JOBS" --workers "$WORKERS" --batch "$batch" --single 0 | tee /dev/stderr | awk '/^drain_jobs_per_s/ {print $2}')
    peer=$("$ROOT/.venv-pgq/bin/python" "$PEER" --jobs "$JOBS" --single 0 --workers "$WORKERS" --dequeue-batch "$batch" \
        | "$ROOT/.venv-pgq/bin/python" -c 'import json,sys; print(int(json.load(sys.stdin)["drain_jobs_s"]))')
    echo "pgqueuer_drain_jobs_per_s $peer"
    echo "ratio $(python3 -c "print(round($ours / $peer, 2))")   (ours / pgqueuer, batch $batch; pg_test_fsync after: $(fsync_rate))"
done
