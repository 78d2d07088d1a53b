#!/usr/bin/env bash
# Payout benchmark (release): approved withdrawals paid per second, approval → confirmed callback,
# from one hot address and from eight, with 4 autopay workers on devchain. Prints the figures of
# `gatewayctl bench payouts` for each, and pg_test_fsync's reading beside them.
#   scripts/bench-payouts.sh [COUNT]      # default 3000 withdrawals per run
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages
ensure_swift
COUNT="${1:-3000}"
bash "$ROOT/scripts/bootstrap.sh" >/dev/null
# shellcheck disable=SC1091
source "$LOCAL/env"
cd "$ROOT"
say "building gatewayctl (release)"
swift build -c release --product gatewayctl >/dev/null
BIN="$(swift build -c release --show-bin-path)"
say "pg_test_fsync (2 s per method; fdatasync line)"
"$(pg_bindir)/pg_test_fsync" -s 2 -f "$LOCAL/pg_test_fsync.tmp" 2>/dev/null | grep -m1 "fdatasync" || true
rm -f "$LOCAL/pg_test_fsync.tmp"
for hot in 1 8; do
    say "payouts from $hot hot address(es)"
    "$BIN/gatewayctl" bench payouts --count "$COUNT" --hot-addresses "$hot" --workers 4
done
