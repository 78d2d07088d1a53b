#!/usr/bin/env bash
# Sweep benchmark (release): deposit addresses swept per second (gas top-up confirmed, then the sweep
# confirmed) with 2 sweep workers and a chain worker on devchain (Ethereum, a block every 200 ms).
# Prints the figures of `gatewayctl bench sweeps`, sweeps_per_s among them.
#   scripts/bench-sweeps.sh [COUNT]      # default 2000 deposit addresses
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages
ensure_swift
COUNT="${1:-2000}"
bash "$ROOT/scripts/bootstrap.sh" >/dev/null
# shellcheck disable=SC1091
source "$LOCAL/env"
cd "$ROOT"
say "building gatewayctl (release)"
swift build -c release --product gatewayctl >/dev/null
BIN="$(swift build -c release --show-bin-path)"
say "sweeps of $COUNT deposit addresses, 2 sweep workers"
"$BIN/gatewayctl" bench sweeps --count "$COUNT" --workers 2
