#!/usr/bin/env bash
# Sweeps exactly once under chaos: N deposit addresses holding USDT on EVM and TRON swept by 3
# sweep-worker processes while a random one is SIGKILLed every few seconds and restarted, and
# devchain fails 20 % of requests. Hot wallets have a cap, so part of the sweeps go to the wallets'
# watch-only cold addresses. At the end it prints the counts (gatewayctl chaos sweeps --help says
# which) and exits non-zero unless every address was swept exactly once (one top-up, one sweep), the
# totals at the hot and cold addresses are exact, and the ledger reconciles.
#
#   bash scripts/chaos-sweeps.sh                     # 500 deposit addresses
#   bash scripts/chaos-sweeps.sh --addresses 50      # smaller; any other gatewayctl chaos sweeps option too
#
# Uses a throwaway cluster (.local/pg-chaos-sweeps) and devchain on ports of their own (below the
# withdrawals chaos script's); CHAOS_BUILD=release uses the release build (default: debug).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages
ensure_swift
chaos_environment chaos-sweeps 24350 8760

# A seed of its own, and a configuration for this run (children get the same file).
od -An -tx1 -N64 /dev/urandom | tr -d ' \n' >"$LOCAL/chaos-sweeps.seed"
CONFIG="$LOCAL/chaos-sweeps.yml"
cat >"$CONFIG" <<YAML
log_level: info
stages:
  chain:    { concurrency: 64, batch_size: 64, poll_interval: 200ms, lease: 10s, max_attempts: 10000, backoff: { base: 200ms, factor: 2, cap: 3s } }
  sweep:    { concurrency: 32, batch_size: 32, poll_interval: 200ms, lease: 5s, max_attempts: 10000, backoff: { base: 200ms, factor: 2, cap: 3s } }
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
    sweep: { interval: 1s, coins: { USDT: { threshold: "100", hot_cap: "300000" } } }
wallet:
  seed_file: $LOCAL/chaos-sweeps.seed
YAML

"$BIN/gatewayctl" migrate --config "$CONFIG" >/dev/null
say "chaos: logs in $LOGS"
"$BIN/gatewayctl" chaos sweeps --config "$CONFIG" --devchain "http://127.0.0.1:$DEVPORT" --logs "$LOGS" "$@"
