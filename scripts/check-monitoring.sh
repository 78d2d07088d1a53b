#!/usr/bin/env bash
# The monitoring, tested against a real Prometheus: checks deploy/prometheus with promtool (rules, the unit test
# of every alert, the example config), then starts the pipeline on devchain (gateway-api and the five workers,
# a cluster of its own), Debian's prometheus-postgres-exporter with deploy/prometheus/queries.yaml (and a second
# one with a query that fails), and Debian's prometheus with a loopback copy of the scrape config and of the
# rules (every `for:` shortened to a few seconds). After the deposit demo it checks that every target is up,
# every rule evaluates without error, every panel query of deploy/grafana/usdt-gateway.json answers data, and
# that the failing exporter query raises GatewayExporterQueryFailing; then it stops callback-worker with a
# callback waiting and chain-worker while devchain mines, and waits for GatewayStageNotDraining{stage=callback},
# GatewayChainNotScanned and GatewayNoScannerLeader. Every wait is bounded; it exits 1 on the first miss and
# removes every process and the cluster on exit.
#
#   bash scripts/check-monitoring.sh            (scripts/test.sh runs it after the chaos scripts)
#
# Uses the debug build (CHAOS_BUILD=release: the release one), a cluster under .local/pg-monitoring and loopback
# ports of its own (PostgreSQL 24370+, devchain 25545+, processes 25080+, exporters 25187+, Prometheus 25090+).
# Logs: .local/logs/monitoring/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages
ensure_monitoring
ensure_swift

PROM_DIR="$ROOT/deploy/prometheus"
DASHBOARD="$ROOT/deploy/grafana/usdt-gateway.json"
CHECK="python3 $ROOT/scripts/monitoring_check.py"
SHORT_FOR=3s

say "promtool: the rules, the unit test of every alert, the example scrape config"
promtool check rules "$PROM_DIR/alerts.yml"
promtool test rules "$PROM_DIR/alerts_test.yml"
promtool check config "$PROM_DIR/prometheus.yml"
# Every alert has a unit test.
untested=$(comm -23 <(sed -n 's/^ *- alert: *//p' "$PROM_DIR/alerts.yml" | sort -u) \
                    <(sed -n 's/^ *alertname: *//p' "$PROM_DIR/alerts_test.yml" | sort -u))
[ -z "$untested" ] || die "alerts without a unit test in alerts_test.yml: $untested"
echo "every alert of alerts.yml has a unit test"

cd "$ROOT"
DATA="$LOCAL/pg-monitoring"
WORK="$LOCAL/monitoring"
LOGS="$LOCAL/logs/monitoring"
stop_cluster "$DATA"
rm -rf "$DATA" "$WORK" "$LOGS"
mkdir -p "$WORK" "$LOGS"
build="${CHAOS_BUILD:-debug}"
say "building ($build; normally already built)"
swift build -c "$build" >"$LOGS/build.log" 2>&1 || { tail -n 30 "$LOGS/build.log" >&2; die "swift build failed"; }
BIN="$(swift build -c "$build" --show-bin-path)"

PIDS=()
NAMES=()
cleanup() {
    local status=$?
    local i
    for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
    # Gracefully within 20 s, then not.
    for _ in $(seq 1 200); do
        local alive=0
        for i in "${!PIDS[@]}"; do kill -0 "${PIDS[$i]}" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for i in "${!PIDS[@]}"; do kill -KILL "${PIDS[$i]}" 2>/dev/null || true; wait "${PIDS[$i]}" 2>/dev/null || true; done
    stop_cluster "$DATA"
    rm -rf "$DATA" "$WORK/prometheus-data"
    [ "$status" -eq 0 ] || echo "check-monitoring failed; logs in $LOGS" >&2
}
trap cleanup EXIT
start() {  # start NAME COMMAND...: in the background, logging to $LOGS/NAME.log
    local name="$1"; shift
    "$@" >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
}
pid_of() {
    local i
    for i in "${!NAMES[@]}"; do [ "${NAMES[$i]}" = "$1" ] && { echo "${PIDS[$i]}"; return; }; done
}
# take_port VAR BASE: sets VAR to a free loopback port at or above BASE that this run has not handed out yet.
USED_PORTS=" "
take_port() {
    local p
    p=$(free_port "$2")
    while [[ "$USED_PORTS" == *" $p "* ]]; do p=$(free_port $((p + 1))); done
    USED_PORTS+="$p "
    printf -v "$1" '%s' "$p"
}
take_port PORT 24370
take_port DEVPORT 25545
take_port API_PORT 25080
take_port CONSOLE_PORT 25080
declare -A STAGE_PORT
for stage in review autopay chain callback sweep; do take_port stage_port 25101; STAGE_PORT[$stage]=$stage_port; done
take_port EXPORTER_PORT 25187
take_port BROKEN_EXPORTER_PORT 25187
take_port PROM_PORT 25090

start_cluster "$DATA" "$PORT" gateway_monitoring
export POSTGRES_HOSTNAME=127.0.0.1 POSTGRES_PORT="$PORT" POSTGRES_USER=gateway POSTGRES_DB=gateway_monitoring
unset DATABASE_URL POSTGRES_PASSWORD GATEWAY_WALLET_SEED

# A configuration for this run: short polls and leases, 3 confirmations, a block every 250 ms, every worker's
# metrics on a port of its own, hot wallet low-water marks (exported by every process).
od -An -tx1 -N64 /dev/urandom | tr -d ' \n' >"$WORK/wallet.seed"
chmod 600 "$WORK/wallet.seed"
CONFIG="$WORK/workers.yml"
cat >"$CONFIG" <<YAML
log_level: info
api:
  listen: 127.0.0.1:$API_PORT
  callback_urls: { allow_loopback: true }
console:
  listen: 127.0.0.1:$CONSOLE_PORT
callbacks:
  request_timeout: 5s
stages:
  review:   { poll_interval: 200ms, shutdown_grace: 2s, metrics_listen: 127.0.0.1:${STAGE_PORT[review]} }
  autopay:  { poll_interval: 200ms, shutdown_grace: 2s, metrics_listen: 127.0.0.1:${STAGE_PORT[autopay]} }
  chain:    { poll_interval: 200ms, shutdown_grace: 2s, lease: 10s, backoff: { base: 200ms, factor: 2, cap: 2s }, metrics_listen: 127.0.0.1:${STAGE_PORT[chain]} }
  callback: { poll_interval: 200ms, shutdown_grace: 2s, backoff: { base: 200ms, factor: 2, cap: 2s }, metrics_listen: 127.0.0.1:${STAGE_PORT[callback]} }
  sweep:    { poll_interval: 1s, shutdown_grace: 2s, metrics_listen: 127.0.0.1:${STAGE_PORT[sweep]} }
chains:
  tron:
    kind: tron
    node_url: http://127.0.0.1:$DEVPORT
    confirmations: 3
    block_time: 250ms
    scan_from: 1
    request_timeout: 5s
    retry_attempts: 3
    tokens:
      USDT: { contract: TA3sQ23Piw8Y2hecVbLUcgdQahXidqoqiJ, decimals: 6 }
    hot_wallet_low_water: { USDT: "1000", TRX: "500" }
  ethereum:
    kind: evm
    node_url: http://127.0.0.1:$DEVPORT
    chain_id: 1337
    confirmations: 3
    block_time: 250ms
    scan_from: 1
    request_timeout: 5s
    retry_attempts: 3
    tokens:
      USDT: { contract: "0x72B256e9F62F7D4B17c867F749C63607771eFd3e", decimals: 6 }
    hot_wallet_low_water: { USDT: "1000", ETH: "0.5" }
wallet:
  seed_file: $WORK/wallet.seed
YAML
export GATEWAY_CONFIG="$CONFIG" GATEWAY_SQL_DIR="$ROOT/sql"
"$BIN/gatewayctl" migrate >/dev/null
# The exporter reads as the role deploy/prometheus/monitor-role.sql makes, so that its grants are tested too.
as_pg psql -q -h 127.0.0.1 -p "$PORT" -U gateway -d gateway_monitoring -v ON_ERROR_STOP=1 <"$PROM_DIR/monitor-role.sql" >/dev/null \
    || die "deploy/prometheus/monitor-role.sql failed"

say "devchain (127.0.0.1:$DEVPORT), gateway-api (:$API_PORT), five workers (:${STAGE_PORT[review]}...), logs in $LOGS"
start devchain "$BIN/devchain" --listen "127.0.0.1:$DEVPORT" --no-automine --block-time-ms 250 --log-level warning
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$DEVPORT") 2>/dev/null && break; sleep 0.1; done
start gateway-api "$BIN/gateway-api" --config "$CONFIG"
start gateway-console "$BIN/gateway-console" --config "$CONFIG"
for stage in review autopay chain callback sweep; do start "$stage-worker" "$BIN/$stage-worker" --config "$CONFIG"; done
for name in gateway-api gateway-console review-worker autopay-worker chain-worker callback-worker sweep-worker; do
    for _ in $(seq 1 300); do
        grep -q "ready" "$LOGS/$name.log" 2>/dev/null && break
        kill -0 "$(pid_of "$name")" 2>/dev/null || { cat "$LOGS/$name.log" >&2; die "$name exited at start"; }
        sleep 0.1
    done
    grep -q "ready" "$LOGS/$name.log" || die "$name did not say it was ready within 30 s (log: $LOGS/$name.log)"
done

say "postgres-exporter (:$EXPORTER_PORT) with queries.yaml; another (:$BROKEN_EXPORTER_PORT) with a query that fails"
DSN="postgresql://gateway_monitor@127.0.0.1:$PORT/gateway_monitoring?sslmode=disable"
start postgres-exporter env DATA_SOURCE_NAME="$DSN" prometheus-postgres-exporter --web.listen-address="127.0.0.1:$EXPORTER_PORT" \
    --extend.query-path="$PROM_DIR/queries.yaml" --disable-settings-metrics
# Bad input: a query the database refuses (a view that does not exist) must show as the exporter's error metric.
cat >"$WORK/broken-queries.yaml" <<'YAML'
gateway_broken:
  query: "SELECT 1 AS value FROM monitor.no_such_view"
  metrics:
    - value:
        usage: "GAUGE"
        description: "never exported: the query fails"
YAML
start postgres-exporter-broken env DATA_SOURCE_NAME="$DSN" prometheus-postgres-exporter \
    --web.listen-address="127.0.0.1:$BROKEN_EXPORTER_PORT" --extend.query-path="$WORK/broken-queries.yaml" \
    --disable-default-metrics --disable-settings-metrics

# The scrape config of deploy/prometheus/prometheus.yml with this run's loopback targets, scraped every second;
# the rules with every `for:` shortened.
sed -E "s/^([[:space:]]*for:[[:space:]]*).*/\1$SHORT_FOR/" "$PROM_DIR/alerts.yml" >"$WORK/alerts.yml"
grep -q "for: $SHORT_FOR" "$WORK/alerts.yml" || die "no for: to shorten in alerts.yml"
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $WORK/alerts.yml
scrape_configs:
  - job_name: gateway-api
    static_configs: [{ targets: ["127.0.0.1:$API_PORT"] }]
  - job_name: gateway-console
    static_configs: [{ targets: ["127.0.0.1:$CONSOLE_PORT"] }]
  - job_name: review-worker
    static_configs: [{ targets: ["127.0.0.1:${STAGE_PORT[review]}"] }]
  - job_name: autopay-worker
    static_configs: [{ targets: ["127.0.0.1:${STAGE_PORT[autopay]}"] }]
  - job_name: chain-worker
    static_configs: [{ targets: ["127.0.0.1:${STAGE_PORT[chain]}"] }]
  - job_name: callback-worker
    static_configs: [{ targets: ["127.0.0.1:${STAGE_PORT[callback]}"] }]
  - job_name: sweep-worker
    static_configs: [{ targets: ["127.0.0.1:${STAGE_PORT[sweep]}"] }]
  - job_name: postgres-exporter
    static_configs: [{ targets: ["127.0.0.1:$EXPORTER_PORT", "127.0.0.1:$BROKEN_EXPORTER_PORT"] }]
YAML
# The shipped config's jobs and this copy's must be the same (the alerts name them).
diff <(sed -n 's/^ *- job_name: *//p' "$PROM_DIR/prometheus.yml" | sort) <(sed -n 's/^ *- job_name: *//p' "$WORK/prometheus.yml" | sort) \
    || die "the test's scrape config and deploy/prometheus/prometheus.yml name different jobs"
promtool check config "$WORK/prometheus.yml" >/dev/null
say "prometheus on 127.0.0.1:$PROM_PORT"
start prometheus prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus-data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn
PROM="http://127.0.0.1:$PROM_PORT"

say "deposit demo: API requests, deposits credited, callbacks delivered (so that every metric has data)"
"$BIN/gatewayctl" demo deposits --timeout 90 >"$LOGS/demo.log" 2>&1 || { tail -n 20 "$LOGS/demo.log" >&2; die "the deposit demo failed"; }
grep -h "==> every deposit" "$LOGS/demo.log" || true
# Node errors on purpose: the chain worker's next TRON requests get HTTP 500 (retried), counted per chain and kind.
$CHECK post "http://127.0.0.1:$DEVPORT/devchain/faults" '{"mode":"http500","count":3,"scope":"tron"}' >/dev/null

say "every target up, every rule evaluated without error"
$CHECK targets "$PROM" 9 30
$CHECK rules "$PROM" 30
say "the processes' own metrics saw the demo and the node faults"
$CHECK positive "$PROM" 'sum by (route, code) (gateway_api_requests_total{route="/mch/address/create", code="200"})' 10
$CHECK positive "$PROM" 'sum by (outcome) (gateway_callback_deliveries_total{outcome="delivered"})' 10
$CHECK positive "$PROM" 'sum by (chain, kind) (gateway_node_errors_total{chain="tron", kind="http_status"})' 30
$CHECK value "$PROM" 'sum by (route, method, status, code) (gateway_api_requests_total)'

say "every panel of deploy/grafana/usdt-gateway.json answers data"
$CHECK panels "$PROM" "$DASHBOARD" 30

say "a failing exporter query is the exporter's error metric, and alerts"
$CHECK value "$PROM" 'pg_exporter_last_scrape_error'
$CHECK alert "$PROM" GatewayExporterQueryFailing 30 "instance=127.0.0.1:$BROKEN_EXPORTER_PORT"

say "stop callback-worker, then make a callback wait: a deposit to the demo's TRON address"
kill -TERM "$(pid_of callback-worker)"
wait "$(pid_of callback-worker)" || true
psql_q() { as_pg psql -h 127.0.0.1 -p "$PORT" -U gateway -d gateway_monitoring -Atqc "$1"; }
address=$(psql_q "SELECT address FROM gateway.addresses WHERE chain = 'tron' ORDER BY id LIMIT 1")
[ -n "$address" ] || die "the demo left no TRON deposit address"
$CHECK post "http://127.0.0.1:$DEVPORT/devchain/tron/usdt" "{\"to\":\"$address\",\"amount\":\"7000000\"}" >/dev/null
for _ in $(seq 1 300); do
    [ "$(psql_q "SELECT count(*) FROM gateway.callbacks WHERE state = 'pending'")" -gt 0 ] && break
    sleep 0.1
done
[ "$(psql_q "SELECT count(*) FROM gateway.callbacks WHERE state = 'pending'")" -gt 0 ] || die "no callback waits 30 s after the deposit"
echo "a deposit callback waits; callback-worker is stopped"

say "stop chain-worker while devchain mines"
kill -TERM "$(pid_of chain-worker)"
wait "$(pid_of chain-worker)" || true

say "the alerts fire (their for: is $SHORT_FOR here; the conditions take 30 s to become true)"
$CHECK alert "$PROM" GatewayStageNotDraining 90 stage=callback
$CHECK alert "$PROM" GatewayNoScannerLeader 60 chain=tron
$CHECK alert "$PROM" GatewayChainNotScanned 60 chain=tron
$CHECK alert "$PROM" GatewayProcessDown 30 job=chain-worker
say "monitoring checked"
