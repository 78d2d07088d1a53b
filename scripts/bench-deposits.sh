#!/usr/bin/env bash
# The deposit benchmark (release build): deposits credited per second, callbacks delivered per
# second, and the latency from the confirming block to the merchant's callback. See README.
#
#   scripts/bench-deposits.sh [gatewayctl bench deposits options, e.g. --deposits 5000 --per-block 100]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bash "$ROOT/scripts/bootstrap.sh"
source "$LOCAL/env"
cd "$ROOT"
say "building gatewayctl (release)"
swift build -c release --product gatewayctl
BIN="$(swift build -c release --show-bin-path)"
export GATEWAY_CONFIG="$ROOT/workers.yml" GATEWAY_SQL_DIR="$ROOT/sql"
"$BIN/gatewayctl" bench deposits "$@"
