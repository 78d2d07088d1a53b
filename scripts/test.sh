#!/usr/bin/env bash
# Runs the whole test suite against a throwaway PostgreSQL cluster (.local/pg-test), then removes
# it. Installs what is missing first (headless Chromium and chromedriver too, for the console's
# browser suite, which saves its screenshots in .local/screenshots). Exits with the tests' status. Extra arguments go to
# `swift test` (e.g. --filter QueueTests); with them, only those tests run (the chaos scripts and the monitoring check
# are skipped).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages
ensure_browser
ensure_swift

DATA="$LOCAL/pg-test"
stop_cluster "$DATA"
rm -rf "$DATA"
PORT=$(free_port "${GATEWAY_TEST_PG_PORT:-24339}")
cleanup() { stop_cluster "$DATA"; stop_cluster "$LOCAL/pg-test-ha-b"; stop_cluster "$LOCAL/pg-test-ha-a"; rm -rf "$DATA" "$LOCAL/pg-test-ha-a" "$LOCAL/pg-test-ha-b"; }
trap cleanup EXIT
start_cluster "$DATA" "$PORT" gateway_test

export POSTGRES_HOSTNAME=127.0.0.1 POSTGRES_PORT="$PORT" POSTGRES_USER=gateway POSTGRES_DB=gateway_test
unset DATABASE_URL POSTGRES_PASSWORD

# A primary and its streaming standby for the failover tests (FailoverTests promote the standby and make the primary
# read-only, as a switchover does): the router must follow, and fail fast while neither takes writes.
HA_A="$LOCAL/pg-test-ha-a"
HA_B="$LOCAL/pg-test-ha-b"
HA_A_PORT=$(free_port "$((PORT + 1))")
HA_B_PORT=$(free_port "$((HA_A_PORT + 1))")
stop_cluster "$HA_B"; stop_cluster "$HA_A"; rm -rf "$HA_A" "$HA_B"
start_cluster "$HA_A" "$HA_A_PORT" gateway_ha
start_standby "$HA_A_PORT" "$HA_B" "$HA_B_PORT"
export GATEWAY_TEST_HA_PORTS="$HA_A_PORT,$HA_B_PORT"

cd "$ROOT"
say "building (debug, with tests)"
swift build --build-tests
say "running tests against 127.0.0.1:$PORT"
set +e
# Serially: the suites share two cores with the PostgreSQL they test, and timing-sensitive
# behaviour (leases, heartbeats) must not be starved by a neighbouring suite's load.
# Line-buffered (stdbuf reaches the test binary through the environment), so a log cut short still ends at the last
# line printed; and bounded, so a test that never returns fails the run with its name instead of using up CI's time.
limit=${GATEWAY_TEST_TIMEOUT:-1800}
timeout -k 30 "$limit" stdbuf -oL -eL swift test --skip-build --no-parallel "$@" 2>&1 | tee "$LOCAL/test-output.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "error: the tests did not finish within ${limit} s (GATEWAY_TEST_TIMEOUT); started and never ended:" >&2
    grep -Eo 'Test [A-Za-z0-9_]+\(.*\) started' "$LOCAL/test-output.log" | sed -E 's/^Test (.*) started$/\1/' | sort -u > "$LOCAL/tests-started" || true
    grep -Eo 'Test [A-Za-z0-9_]+\(.*\) (passed|failed|skipped)' "$LOCAL/test-output.log" | sed -E 's/^Test (.*) (passed|failed|skipped)$/\1/' | sort -u > "$LOCAL/tests-ended" || true
    comm -23 "$LOCAL/tests-started" "$LOCAL/tests-ended" | sed 's/^/  /' >&2
fi
# One plain closing line: "N passed, N failed".
summary=$(grep -Eo 'Test run with [0-9]+ tests?' "$LOCAL/test-output.log" | tail -n 1 | grep -Eo '[0-9]+' || true)
failed=$(grep -Eo 'with [0-9]+ issues?' "$LOCAL/test-output.log" | tail -n 1 | grep -Eo '[0-9]+' || true)
if [ -n "$summary" ]; then
    if [ "$status" -eq 0 ]; then echo "$summary passed, 0 failed"; else echo "tests: $summary run, ${failed:-some} issue(s), exit $status"; fi
fi
[ "$status" -eq 0 ] || exit "$status"
# A chosen subset (--filter …) is a developer's quick run: the whole-system scripts below are for the full suite.
[ "$#" -eq 0 ] || exit 0

# Exactly once under chaos (payments): its own cluster and devchain, the debug build just made.
say "chaos: 300 withdrawals under SIGKILLs, node faults and a database restart"
stop_cluster "$DATA"; stop_cluster "$HA_B"; stop_cluster "$HA_A"
bash "$ROOT/scripts/chaos-withdrawals.sh" --count "${GATEWAY_CHAOS_COUNT:-300}"

# Sweeps exactly once under chaos: its own cluster and devchain, the same debug build.
say "chaos: ${GATEWAY_SWEEP_CHAOS_COUNT:-500} deposit addresses swept under SIGKILLs and node faults"
bash "$ROOT/scripts/chaos-sweeps.sh" --addresses "${GATEWAY_SWEEP_CHAOS_COUNT:-500}"

# PostgreSQL fails over under payment load (a real pg_auto_failover formation: a monitor and three nodes): one
# switchover and one crashed primary here; scripts/chaos-failover.sh alone runs the full sequence.
say "chaos: the database fails over (switchover, crashed primary) under withdrawals, deposits and sweeps"
bash "$ROOT/scripts/chaos-failover.sh" --events "${GATEWAY_FAILOVER_EVENTS:-switchover,crash-primary}" --rate 3

# The systemd units as shipped, under a real systemd in a container: hardening, credentials, the demos, a stop.
say "systemd: every unit of deploy/systemd booted in a container, the demos through them"
bash "$ROOT/scripts/check-systemd.sh"

# The monitoring against a real Prometheus: promtool on the rules (a unit test per alert), then the pipeline,
# the exporter and Prometheus on ports of their own; the alerts must fire when workers stop.
say "monitoring: promtool, then Prometheus and postgres-exporter against the running pipeline"
bash "$ROOT/scripts/check-monitoring.sh"
