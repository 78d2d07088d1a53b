#!/usr/bin/env bash
# The units of deploy/systemd under a real systemd. Boots a container (systemd-nspawn; the host's /usr read-only,
# the build's executables at /opt/usdt-gateway/bin) whose systemd runs every unit as shipped: its hardening, its
# credentials, the usdt-gateway user from the sysusers file, one copy of each stage on its metrics port. The
# processes reach, on the host's loopback, a PostgreSQL role that must present its password (the credential
# database-password) and devchain. Then, from the host:
#   - every unit is active, its main process runs as usdt-gateway with no new privileges;
#   - the deposit and withdrawal demos run through those units (API, chain, callback, review, autopay);
#   - a unit whose credential file is missing does not start, and its log names the credential;
#   - stopping usdt-gateway.target stops every unit gracefully (exit status 0, result "success").
# Run by scripts/test.sh; needs root (systemd-nspawn), installs systemd-container when missing.
#
#   bash scripts/check-systemd.sh        # uses the debug build (CHECK_BUILD=release for the release one)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_packages
ensure_swift
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "check-systemd.sh boots a container with systemd-nspawn: run it as root"
    exec sudo --preserve-env=PATH bash "$0" "$@"
fi
if ! command -v systemd-nspawn >/dev/null 2>&1; then
    say "installing systemd-container (systemd-nspawn)"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null || die "apt-get install systemd-container failed"
fi

cd "$ROOT"
build="${CHECK_BUILD:-debug}"
swift build -c "$build" >/dev/null
BIN="$(swift build -c "$build" --show-bin-path)"

TREE="$LOCAL/systemd-root"
DATA="$LOCAL/pg-systemd"
LOGS="$LOCAL/logs/systemd"
PORT=$(free_port 24390)
DEVPORT=$(free_port 27545)
API=$(free_port 27080)
CONSOLE=$(free_port $((API + 1)))
METRICS=$(free_port 27101)
PASSWORD="pw-$RANDOM$RANDOM"
NSPAWN_PID=""
DEV_PID=""

cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true   # nspawn powers the container off
        for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
    [ -n "$DEV_PID" ] && kill "$DEV_PID" 2>/dev/null || true
    stop_cluster "$DATA"
    rm -rf "$DATA" "$TREE"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    if [ -n "${CPID:-}" ]; then inside journalctl --no-pager -n 60 -u 'usdt-gateway-*' >&2 || true; fi
    exit 1
}

rm -rf "$LOGS" "$TREE"
mkdir -p "$LOGS"
stop_cluster "$DATA"
rm -rf "$DATA"
start_cluster "$DATA" "$PORT" gateway_systemd
pgbin=$(pg_bindir)
psql_owner() { as_pg psql -h 127.0.0.1 -p "$PORT" -U gateway -d gateway_systemd -v ON_ERROR_STOP=1 -Atqc "$1"; }
# The services' role must authenticate with its password; the owner keeps trust for the migrations.
psql_owner "CREATE ROLE gateway_svc LOGIN PASSWORD '$PASSWORD' IN ROLE gateway" >/dev/null
as_pg sed -i "1i host all gateway_svc 127.0.0.1/32 scram-sha-256" "$DATA/pg_hba.conf"
as_pg "$pgbin/pg_ctl" -D "$DATA" reload >/dev/null
if PGPASSWORD=wrong as_pg psql -h 127.0.0.1 -p "$PORT" -U gateway_svc -d gateway_systemd -Atqc "SELECT 1" >/dev/null 2>&1; then
    die "the services' role logged in with a wrong password: the check would prove nothing"
fi

say "devchain on 127.0.0.1:$DEVPORT"
"$BIN/devchain" --listen "127.0.0.1:$DEVPORT" --block-time-ms 250 --log-level warning >"$LOGS/devchain.log" 2>&1 &
DEV_PID=$!

# The container's root: its own /etc (the units, enabled; the configuration; the credentials, root-only), the
# host's /usr bound read-only at boot.
mkdir -p "$TREE"/{etc,var,tmp,run,proc,sys,dev,root,usr,opt/usdt-gateway/bin,opt/swift}
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$TREE/$l"; done
cp /etc/os-release /etc/passwd /etc/group /etc/shadow /etc/nsswitch.conf "$TREE/etc/"
: >"$TREE/etc/machine-id"
mkdir -p "$TREE/etc/sysusers.d" "$TREE/etc/systemd/system/usdt-gateway.target.wants" "$TREE/etc/systemd/system/multi-user.target.wants"
cp "$ROOT/deploy/systemd/usdt-gateway.sysusers" "$TREE/etc/sysusers.d/usdt-gateway.conf"
cp "$ROOT"/deploy/systemd/*.service "$ROOT"/deploy/systemd/*.target "$TREE/etc/systemd/system/"
ln -s /etc/systemd/system/usdt-gateway.target "$TREE/etc/systemd/system/multi-user.target.wants/"
UNITS=(usdt-gateway-api.service usdt-gateway-console.service)
ln -s ../usdt-gateway-api.service ../usdt-gateway-console.service "$TREE/etc/systemd/system/usdt-gateway.target.wants/"
i=0
for stage in review autopay chain callback sweep; do
    unit="usdt-gateway-$stage@$((METRICS + i)).service"
    ln -s "../usdt-gateway-$stage@.service" "$TREE/etc/systemd/system/usdt-gateway.target.wants/$unit"
    UNITS+=("$unit")
    i=$((i + 1))
done

CONF="$TREE/etc/usdt-gateway"
CREDS="$CONF/credentials"
mkdir -p "$CREDS"
chmod 700 "$CREDS"
(umask 077
 printf '%s' "$PASSWORD" >"$CREDS/database-password"
 od -An -tx1 -N64 /dev/urandom | tr -d ' \n' >"$CREDS/wallet-seed"
 od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$CREDS/console-totp-key")
cat >"$CONF/workers.yml" <<YAML
database:
  url: postgres://gateway_svc@127.0.0.1:$PORT/gateway_systemd
  password_credential: database-password
log_level: info
api:
  listen: 127.0.0.1:$API
  callback_urls: { allow_loopback: true }
review:
  auto_approve_up_to: { USDT: "1000" }
stages:
  review: { poll_interval: 200ms, metrics_listen: 127.0.0.1:$METRICS }
  autopay: { poll_interval: 200ms, metrics_listen: 127.0.0.1:$METRICS }
  chain: { poll_interval: 200ms, metrics_listen: 127.0.0.1:$METRICS }
  callback: { poll_interval: 200ms, metrics_listen: 127.0.0.1:$METRICS }
  sweep: { poll_interval: 1s, metrics_listen: 127.0.0.1:$METRICS }
chains:
  tron:
    kind: tron
    node_url: http://127.0.0.1:$DEVPORT
    confirmations: 3
    block_time: 250ms
    scan_from: 1
    tokens:
      USDT: { contract: TA3sQ23Piw8Y2hecVbLUcgdQahXidqoqiJ, decimals: 6 }
    sweep:
      interval: 2s
      coins:
        USDT: { threshold: "100", hot_cap: "100000" }
  ethereum:
    kind: evm
    node_url: http://127.0.0.1:$DEVPORT
    chain_id: 1337
    confirmations: 3
    block_time: 250ms
    scan_from: 1
    tokens:
      USDT: { contract: "0x72B256e9F62F7D4B17c867F749C63607771eFd3e", decimals: 6 }
wallet:
  seed_credential: wallet-seed
console:
  listen: 127.0.0.1:$CONSOLE
  totp_key_credential: console-totp-key
YAML
# The host's gatewayctl uses the same file and the same credentials directory (as a process under systemd would).
export CREDENTIALS_DIRECTORY="$CREDS" GATEWAY_SQL_DIR="$ROOT/sql"
unset DATABASE_URL POSTGRES_HOSTNAME POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB GATEWAY_WALLET_SEED
POSTGRES_USER=gateway POSTGRES_PASSWORD= "$BIN/gatewayctl" migrate --config "$CONF/workers.yml" >/dev/null

say "booting systemd in a container (logs: $LOGS/nspawn.log)"
systemd-nspawn --quiet --register=no --keep-unit --console=passive -D "$TREE" --machine="usdt-gateway-check-$$" \
    --bind-ro=/usr --bind-ro="$BIN:/opt/usdt-gateway/bin" --bind-ro=/opt/swift --bind-ro="$ROOT/README.md:/opt/usdt-gateway/README.md" \
    --boot >"$LOGS/nspawn.log" 2>&1 &
NSPAWN_PID=$!
CPID=""
for _ in $(seq 1 150); do
    CPID=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
    [ -n "$CPID" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$LOGS/nspawn.log" >&2; die "systemd-nspawn exited: this machine cannot boot a container"; }
    sleep 0.2
done
[ -n "$CPID" ] || die "the container's systemd did not start (log: $LOGS/nspawn.log)"
inside() { nsenter --target "$CPID" --mount --uts --ipc --net --pid -- "$@"; }
state=""
for _ in $(seq 1 300); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.2
done
say "container up (systemd: ${state:-not answering})"

# 1. Every unit active, as usdt-gateway, with NoNewPrivs.
for unit in "${UNITS[@]}"; do
    for _ in $(seq 1 150); do
        [ "$(inside systemctl is-active "$unit" 2>/dev/null || true)" = active ] && break
        sleep 0.2
    done
    [ "$(inside systemctl is-active "$unit" 2>/dev/null || true)" = active ] || fail "$unit is not active"
    pid=$(inside systemctl show -p MainPID --value "$unit")
    user=$(inside ps -o user= -p "$pid" | tr -d ' ')
    [ "$user" = usdt-gateway ] || fail "$unit runs as '$user', not usdt-gateway"
    inside grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "$unit can gain privileges"
    echo "  ok   $unit active (pid $pid, user $user, no new privileges)"
done
for url in "http://127.0.0.1:$API/healthz" "http://127.0.0.1:$CONSOLE/healthz" $(seq -f "http://127.0.0.1:%g/metrics" "$METRICS" $((METRICS + 4))); do
    python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$url" || fail "$url does not answer"
done
echo "  ok   api, console and every copy's metrics port answer"

# 2. The demos through the units: the API in the container, deposits credited and called back, withdrawals paid.
"$BIN/gatewayctl" demo deposits --config "$CONF/workers.yml" --timeout 120 >"$LOGS/demo-deposits.log" 2>&1 \
    || { cat "$LOGS/demo-deposits.log" >&2; fail "the deposit demo failed through the units"; }
echo "  ok   deposit demo (log: $LOGS/demo-deposits.log)"
"$BIN/gatewayctl" demo withdrawals --config "$CONF/workers.yml" >"$LOGS/demo-withdrawals.log" 2>&1 \
    || { cat "$LOGS/demo-withdrawals.log" >&2; fail "the withdrawal demo failed through the units"; }
echo "  ok   withdrawal demo (log: $LOGS/demo-withdrawals.log)"

# 3. A unit missing its credential does not run, and its log says which.
mv "$CREDS/console-totp-key" "$CREDS/console-totp-key.away"
inside systemctl restart usdt-gateway-console.service >/dev/null 2>&1 || true
named=0
for _ in $(seq 1 100); do
    if inside journalctl --no-pager -u usdt-gateway-console.service | grep -q "credential 'console-totp-key' is missing"; then named=1; break; fi
    sleep 0.2
done
[ "$named" -eq 1 ] || fail "the console's log does not name the missing credential console-totp-key"
[ "$(inside systemctl is-active usdt-gateway-console.service || true)" != active ] || fail "the console runs without its credential"
python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$CONSOLE/healthz" 2>/dev/null \
    && fail "the console answers without its credential"
mv "$CREDS/console-totp-key.away" "$CREDS/console-totp-key"
inside systemctl restart usdt-gateway-console.service
for _ in $(seq 1 100); do
    python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$CONSOLE/healthz" 2>/dev/null && break
    sleep 0.2
done
[ "$(inside systemctl is-active usdt-gateway-console.service || true)" = active ] || fail "the console did not start again with its credential back"
echo "  ok   a unit missing its credential file does not run, and its log names the credential"

# 4. Stopping the target stops every unit gracefully.
start=$(date +%s)
inside systemctl stop usdt-gateway.target
for unit in "${UNITS[@]}"; do
    result=$(inside systemctl show -p Result --value "$unit")
    status=$(inside systemctl show -p ExecMainStatus --value "$unit")
    [ "$result" = success ] && [ "$status" = 0 ] || fail "$unit stopped with result $result, exit status $status"
done
echo "  ok   every unit stopped gracefully in $(($(date +%s) - start)) s (result success, exit status 0)"
inside journalctl --no-pager -u 'usdt-gateway-*' >"$LOGS/journal.log" 2>&1 || true
say "systemd check passed"
