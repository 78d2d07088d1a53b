#!/usr/bin/env bash
# Runs the gateway end to end on its embedded defaults: installs what is missing, starts the local
# PostgreSQL cluster (.local/pg), builds, migrates, then starts devchain, gateway-api and every
# worker with workers.yml, and drives the deposit demo (gatewayctl demo deposits): a merchant,
# TRON and Ethereum deposit addresses through the Udun API, USDT sent by devchain, the callbacks
# printed by a local merchant receiver that verifies their signatures, then gatewayctl status.
# Logs go to .local/logs/. Ctrl-C stops everything cleanly.
#
#   scripts/run.sh            run (and demo) until Ctrl-C
#   scripts/run.sh --smoke    start everything, check it answers, run the demo, stop (exit 0 when all worked)
#   GATEWAY_BUILD=release scripts/run.sh    use a release build (slower to build, faster to run)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
CONFIG="${GATEWAY_CONFIG:-$ROOT/workers.yml}"
BUILD="${GATEWAY_BUILD:-debug}"

bash "$ROOT/scripts/bootstrap.sh"
source "$LOCAL/env"
cd "$ROOT"
say "building ($BUILD)"
swift build -c "$BUILD"
BIN="$(swift build -c "$BUILD" --show-bin-path)"
export GATEWAY_CONFIG="$CONFIG" GATEWAY_SQL_DIR="$ROOT/sql"
"$BIN/gatewayctl" migrate
# devchain starts a new chain every run: scan it from its beginning rather than from where the last
# run's chain ended (which would look like a deep reorganisation).
for chain in tron ethereum; do "$BIN/gatewayctl" chain rescan --chain "$chain" --from 1 >/dev/null; done

LOGS="$LOCAL/logs"
mkdir -p "$LOGS"
PIDS=()
NAMES=()
start() {
    local name="$1"; shift
    "$BIN/$name" "$@" >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
}

stopping=0
stop_all() {
    [ "$stopping" -eq 1 ] && return
    stopping=1
    say "stopping"
    local i
    for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
    for i in "${!PIDS[@]}"; do
        if wait "${PIDS[$i]}" 2>/dev/null; then echo "  ${NAMES[$i]} stopped"; else echo "  ${NAMES[$i]} exited with status $?"; fi
    done
    stop_cluster "$LOCAL/pg"
    say "stopped"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

# The seed fixes devchain's USDT contract addresses, which workers.yml names.
start devchain --listen 127.0.0.1:8545 --seed devchain --block-time-ms 500
start gateway-api --config "$CONFIG"
for w in review autopay chain callback sweep; do start "$w-worker" --config "$CONFIG"; done
start gateway-console --config "$CONFIG"

# Wait until every process has said it is ready (or died).
for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"
    for _ in $(seq 1 100); do
        grep -q "ready\|listening" "$LOGS/$name.log" 2>/dev/null && break
        kill -0 "${PIDS[$i]}" 2>/dev/null || { cat "$LOGS/$name.log" >&2; die "$name exited at start (log: $LOGS/$name.log)"; }
        sleep 0.1
    done
done

say "running: devchain, gateway-api, 5 workers and gateway-console; logs in $LOGS/<process>.log"
echo "  merchant API     http://127.0.0.1:8080/mch/  (healthz, metrics on the same port)"
echo "  console          http://127.0.0.1:8090/      (users: $BIN/gatewayctl user add NAME --role reviewer --level 1)"
echo "  devchain         http://127.0.0.1:8545"
echo "  worker metrics   http://127.0.0.1:9101..9105/metrics"
echo "  queue status     $BIN/gatewayctl status"
"$BIN/gatewayctl" status

if [ "$SMOKE" -eq 1 ]; then
    ok=1
    for url in http://127.0.0.1:8080/healthz http://127.0.0.1:8090/healthz http://127.0.0.1:8545/healthz http://127.0.0.1:9101/healthz http://127.0.0.1:9104/metrics; do
        if python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$url" 2>/dev/null; then
            echo "  ok   $url"
        else
            echo "  FAIL $url"; ok=0
        fi
    done
    [ "$ok" -eq 1 ] || exit 1
fi

say "deposit demo"
if ! "$BIN/gatewayctl" demo deposits; then
    echo "  the demo failed: see $LOGS/chain-worker.log and $LOGS/callback-worker.log" >&2
    [ "$SMOKE" -eq 1 ] && exit 1
fi
say "withdrawal demo"
if ! "$BIN/gatewayctl" demo withdrawals; then
    echo "  the demo failed: see $LOGS/autopay-worker.log, $LOGS/review-worker.log and $LOGS/chain-worker.log" >&2
    [ "$SMOKE" -eq 1 ] && exit 1
fi
if [ "$SMOKE" -eq 1 ]; then
    say "smoke check passed"
    exit 0
fi
say "still running; press Ctrl-C to stop"
wait
