#!/usr/bin/env bash
# PostgreSQL fails over under payment load, and nothing acknowledged is lost or paid twice. A real highly
# available formation (pg_auto_failover from Debian: a monitor and three data nodes, one synchronous standby, the
# monitor's timeouts tuned as ../shared/postgres-failover.md §2 lists) on loopback ports of its own, run as the
# unprivileged postgres user; the whole pipeline (gateway-api, review-worker, 2 autopay-workers, chain-worker,
# callback-worker, sweep-worker) given the nodes' multi-host URL and the monitor; devchain. Under a load of proxypay
# withdrawals through the Open API and deposits (swept), it runs the events — `pg_autoctl perform switchover`, a
# kill -9 of the primary's keeper and postmaster, a kill -9 of a secondary (each brought back) — spaced so that each
# completes, then counts (gatewayctl chaos failover --help says what) and exits 1 on any miss.
#
#   bash scripts/chaos-failover.sh                                   # the full run: 3 switchovers, 2 crashes
#   bash scripts/chaos-failover.sh --events switchover,crash-primary --rate 3     # what CI runs
#   bash scripts/chaos-failover.sh --nodes 2 --events switchover,switchover      # two data nodes, as the gaps of
#                                                                                # postgres-failover.md were measured
#
# Installs postgresql-15-auto-failover and pg-auto-failover-cli when missing. CHAOS_BUILD=release uses the release
# build (default: debug). Needs root (or sudo) for the postgres user and the package install.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pgaf.sh"

# --nodes N (this script's own option; the rest go to `gatewayctl chaos failover`).
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) [ $# -ge 2 ] || die "--nodes needs 2 or 3"; PGAF_NODES="$2"; shift 2 ;;
        --nodes=*) PGAF_NODES="${1#--nodes=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "$PGAF_NODES" in 2|3) ;; *) die "--nodes must be 2 or 3 (got '$PGAF_NODES')" ;; esac
set -- "${args[@]+"${args[@]}"}"

ensure_packages
ensure_swift
missing=()
for pkg in postgresql-15-auto-failover pg-auto-failover-cli; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

build="${CHAOS_BUILD:-debug}"
cd "$ROOT"
if [ "$build" = release ]; then swift build -c release >/dev/null; else swift build >/dev/null; fi
BIN="$(swift build -c "$build" --show-bin-path)"
PGAF="$LOCAL/pgaf"
LOGS="$LOCAL/logs/chaos-failover"
rm -rf "$LOGS"
mkdir -p "$LOGS"
DEV_PID=""
PEER_PID=""
cleanup() {
    [ -n "$DEV_PID" ] && kill "$DEV_PID" 2>/dev/null || true
    [ -n "$PEER_PID" ] && kill "$PEER_PID" 2>/dev/null || true
    pgaf_stop
    sleep 1
    rm -rf "$PGAF"
}
trap cleanup EXIT

say "pg_auto_failover: a monitor and $PGAF_NODES nodes under $PGAF"
pgaf_create 24400
say "monitor 127.0.0.1:$PGAF_MONITOR_PORT, nodes ${PGAF_PORTS[*]} (primary: $(pgaf_primary))"
HOSTS=$(printf '127.0.0.1:%s,' "${PGAF_PORTS[@]}")
HOSTS=${HOSTS%,}

DEVPORT=$(free_port 8760)
API_PORT=$(free_port 8780)
say "devchain on 127.0.0.1:$DEVPORT (a block on both chains every 250 ms)"
"$BIN/devchain" --listen "127.0.0.1:$DEVPORT" --no-automine --block-time-ms 250 --log-level warning >"$LOGS/devchain.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$DEVPORT") 2>/dev/null && break; sleep 0.1; done

od -An -tx1 -N64 /dev/urandom | tr -d ' \n' >"$LOCAL/chaos-failover.seed"
CONFIG="$LOCAL/chaos-failover.yml"
cat >"$CONFIG" <<YAML
database:
  url: postgres://gateway@$HOSTS/gateway?target_session_attrs=read-write
  monitor_url: postgres://autoctl_node@127.0.0.1:$PGAF_MONITOR_PORT/pg_auto_failover
  probe_interval: 500ms
log_level: info
api:
  listen: 127.0.0.1:$API_PORT
  callback_urls: { allow_loopback: true }
  rate_limit_per_minute: 1000000
callbacks:
  request_timeout: 5s
review:
  auto_approve_up_to: { USDT: "1000" }
  daily_limit_per_merchant: { USDT: "100000000" }
  daily_limit_per_address: { USDT: "100000000" }
autopay:
  max_batch: 100
stages:
  review:   { concurrency: 16, batch_size: 16, poll_interval: 200ms, lease: 10s, max_attempts: 100, backoff: { base: 200ms, factor: 2, cap: 5s } }
  autopay:  { concurrency: 64, batch_size: 64, poll_interval: 200ms, lease: 10s, max_attempts: 1000, backoff: { base: 200ms, factor: 2, cap: 3s } }
  chain:    { concurrency: 64, batch_size: 64, poll_interval: 200ms, lease: 10s, max_attempts: 10000, backoff: { base: 200ms, factor: 2, cap: 3s } }
  callback: { concurrency: 32, batch_size: 32, poll_interval: 200ms, lease: 10s, max_attempts: 1000, backoff: { base: 200ms, factor: 2, cap: 3s } }
  sweep:    { concurrency: 32, batch_size: 32, poll_interval: 200ms, lease: 10s, max_attempts: 10000, backoff: { base: 200ms, factor: 2, cap: 3s } }
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
    payments: { poll_interval: 250ms, rebroadcast_every: 2s, expiration: 60s }
    sweep: { interval: 1s, coins: { USDT: { threshold: "100", hot_cap: "300000" } } }
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
    payments: { poll_interval: 250ms, rebroadcast_every: 2s, replace_after: 30s }
    # Top-ups from the gas address: the hot address's nonce then counts the payments alone.
    sweep: { interval: 1s, gas_wallet: true, coins: { USDT: { threshold: "100", hot_cap: "300000" } } }
wallet:
  seed_file: $LOCAL/chaos-failover.seed
YAML
unset DATABASE_URL POSTGRES_HOSTNAME POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB GATEWAY_WALLET_SEED
export GATEWAY_SQL_DIR="$ROOT/sql"
"$BIN/gatewayctl" migrate --config "$CONFIG" >/dev/null

# The events, for gatewayctl to run in turn: this script's functions, in a shell of their own.
cat >"$LOCAL/chaos-failover-event.sh" <<SH
set -euo pipefail
source "$ROOT/scripts/lib.sh"
source "$ROOT/scripts/pgaf.sh"
PGAF="$PGAF"
PGAF_MONITOR_PORT=$PGAF_MONITOR_PORT
PGAF_NODES=$PGAF_NODES
pgaf_event "\$1"
echo "    primary now: \$(pgaf_primary)"
SH

# The peer: libpq writing through the same nodes, one insert every 10 ms (scripts/failover-peer.c), so each event's
# write gap is printed beside what libpq itself gets on the same formation in the same run.
"${CC:-$(command -v cc || command -v clang)}" -O2 -o "$LOCAL/failover-peer" "$ROOT/scripts/failover-peer.c" -I"$(pg_config --includedir)" -lpq \
    || die "cannot build scripts/failover-peer.c (a C compiler and libpq-dev)"
"$LOCAL/failover-peer" "postgresql://gateway@$HOSTS/gateway?target_session_attrs=read-write&connect_timeout=2" \
    "$LOGS/peer-acks.txt" 2>"$LOGS/failover-peer.log" &
PEER_PID=$!

say "chaos: logs in $LOGS"
"$BIN/gatewayctl" chaos failover --config "$CONFIG" --devchain "http://127.0.0.1:$DEVPORT" --logs "$LOGS" \
    --event-command "bash $LOCAL/chaos-failover-event.sh" --peer-acks "$LOGS/peer-acks.txt" "$@"
