#!/usr/bin/env bash
# Exactly once under chaos: N withdrawals on EVM and TRON paid by 4 autopay-worker processes while a
# random one is SIGKILLed every few seconds and restarted, devchain fails 20 % of requests and drops
# some broadcasts, and PostgreSQL is restarted once (crash-style, -m immediate). At the end it prints
# the counts (gatewayctl chaos withdrawals --help says which) and exits non-zero unless every
# withdrawal was paid exactly once, its callbacks 1 and 3 delivered once, and the ledger consistent.
#
#   bash scripts/chaos-withdrawals.sh                 # 300 withdrawals (what CI runs)
#   bash scripts/chaos-withdrawals.sh --count 3000    # larger; any other gatewayctl chaos option too
#
# Uses a throwaway cluster (.local/pg-chaos) and devchain on ports of their own; CHAOS_BUILD=release
# uses the release build (default: debug, the one the tests build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages
ensure_swift
chaos_environment chaos 24360 8660

# A seed of its own, and a configuration for this run (children get the same file).
od -An -tx1 -N64 /dev/urandom | tr -d ' \n' >"$LOCAL/chaos.seed"
CONFIG="$LOCAL/chaos.yml"
cat >"$CONFIG" <<YAML
log_level: info
api:
  callback_urls: { allow_loopback: true }
callbacks:
  request_timeout: 5s
review:
  auto_approve_up_to: { USDT: "1000" }
autopay:
  max_batch: 100
  hot_wallet_retry: 5s
stages:
  review:   { concurrency: 16, batch_size: 16, poll_interval: 200ms, lease: 10s, max_attempts: 100, backoff: { base: 200ms, factor: 2, cap: 5s } }
  autopay:  { concurrency: 64, batch_size: 64, poll_interval: 200ms, lease: 5s, max_attempts: 1000, backoff: { base: 200ms, factor: 2, cap: 3s } }
  chain:    { concurrency: 64, batch_size: 64, poll_interval: 200ms, lease: 10s, max_attempts: 10000, backoff: { base: 200ms, factor: 2, cap: 3s } }
  callback: { concurrency: 32, batch_size: 32, poll_interval: 200ms, lease: 10s, max_attempts: 1000, backoff: { base: 200ms, factor: 2, cap: 3s } }
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
wallet:
  seed_file: $LOCAL/chaos.seed
YAML

cat >"$LOCAL/chaos-pg-restart.sh" <<SH
source "$ROOT/scripts/lib.sh"
as_pg "\$(pg_bindir)/pg_ctl" -D "$DATA" -m immediate -w -t 60 restart -l "$DATA/server.log" >/dev/null
SH

"$BIN/gatewayctl" migrate --config "$CONFIG" >/dev/null
say "chaos: logs in $LOGS"
"$BIN/gatewayctl" chaos withdrawals --config "$CONFIG" --devchain "http://127.0.0.1:$DEVPORT" --logs "$LOGS" \
    --pg-restart-command "bash $LOCAL/chaos-pg-restart.sh" "$@"
