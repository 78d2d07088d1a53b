# Shared helpers for the scripts in this folder. Sourced, never run.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages the gateway needs, when any is missing.
ensure_packages() {
    local missing=()
    # systemd: its systemd-analyze checks the units of deploy/systemd in the tests.
    for pkg in postgresql libsecp256k1-dev libpq-dev pkg-config systemd; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # A fresh machine has empty package lists: update first, then install.
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# Installs headless Chromium and chromedriver (Debian's chromium, chromium-driver) for the console's
# browser suite, when missing.
ensure_browser() {
    local missing=()
    for pkg in chromium chromium-driver; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]} (the console's browser suite)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# Installs Debian's prometheus (server and promtool) and prometheus-postgres-exporter, when missing, for
# scripts/check-monitoring.sh. Without recommends: the node exporter and friends are not needed here.
ensure_monitoring() {
    local missing=()
    for pkg in prometheus prometheus-postgres-exporter; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]} (the monitoring check)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# ensure_totp_key FILE: writes a new random key (64 hex digits, mode 0600) for sealing console users'
# TOTP secrets (workers.yml console.totp_key_file), unless FILE exists. Never overwrites one: the
# secrets sealed with it would no longer open.
ensure_totp_key() {
    local file="$1"
    [ -f "$file" ] && return 0
    mkdir -p "$(dirname "$file")"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$file")
    say "wrote the console's TOTP secret key to $file (back it up apart from the database: without it no console user can sign in)"
}

# ensure_dev_seed FILE: writes a random development wallet seed (128 hex digits, mode 0600) to FILE
# (workers.yml wallet.seed_file), unless FILE exists, so that the signing workers of the embedded set-up
# start on a fresh clone. It has no mnemonic backup: production creates its seed with `gatewayctl keys new`.
ensure_dev_seed() {
    local file="$1"
    [ -f "$file" ] && return 0
    mkdir -p "$(dirname "$file")"
    (umask 077 && od -An -tx1 -N64 /dev/urandom | tr -d ' \n' > "$file" && echo >> "$file")
    say "wrote a development wallet seed to $file (this machine only; it has no backup). In production create the seed with \`gatewayctl keys new\`, which shows its mnemonic backup once"
}

ensure_swift() {
    command -v swift >/dev/null 2>&1 && return 0
    [ -x /opt/swift/usr/bin/swift ] && { export PATH="/opt/swift/usr/bin:$PATH"; return 0; }
    die "swift is not installed (expected on PATH or in /opt/swift/usr/bin); install Swift 6.1 or newer"
}

# cpu_ticks PID: clock ticks (getconf CLK_TCK a second) of CPU used so far by PID and its children — those running
# (utime + stime) and those it has reaped (its cutime + cstime): a postmaster and every backend, WAL writer, … it started.
cpu_ticks() {
    python3 - "$1" <<'PY'
import os, sys
root, total = int(sys.argv[1]), 0
for p in os.listdir('/proc'):
    if not p.isdigit():
        continue
    try:
        text = open(f'/proc/{p}/stat').read()
    except OSError:
        continue
    f = text[text.rindex(')') + 2:].split()
    if int(p) == root:
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    elif int(f[1]) == root:
        total += int(f[11]) + int(f[12])
print(total)
PY
}

# cpu_ms_per TICKS COUNT: milliseconds of CPU per unit of work, two decimals.
cpu_ms_per() {
    python3 -c "import os; print('%.3f' % ($1 * 1000 / os.sysconf('SC_CLK_TCK') / max($2, 1)))"
}

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    echo "$d"
}

# Runs a command as the unprivileged owner of the cluster: root may not run postgres.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# start_cluster DATA_DIR PORT DB: creates (once) and starts a loopback cluster, creates DB.
start_cluster() {
    local data="$1" port="$2" db="$3" bin
    bin=$(pg_bindir)
    mkdir -p "$(dirname "$data")"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "user 'postgres' is missing (it comes with the postgresql package)"
        # The unprivileged owner must reach the data folder through every parent.
        runuser -u postgres -- test -x "$(dirname "$data")" \
            || die "user postgres cannot enter $(dirname "$data"); make its parents world-executable (chmod o+x)"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating PostgreSQL cluster in $data (port $port)"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
        chmod 700 "$data"
        as_pg "$bin/initdb" -D "$data" -U gateway --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null \
            || die "initdb failed for $data"
        cat >> "$data/postgresql.conf" <<CONF
# usdt-gateway embedded cluster: loopback only, on a port of its own.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
max_connections = 200
# Queue tables churn: room for hot pages, and checkpoints far enough apart that a busy minute does
# not write every page it touches twice (full-page images after each checkpoint).
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = lz4
CONF
    fi
    local i running_port
    # A cluster made with another port (an older default, GATEWAY_PG_PORT changed) moves to this one.
    if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        running_port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)
        if [ -n "$running_port" ] && [ "$running_port" != "$port" ]; then
            say "PostgreSQL in $data listens on $running_port; restarting it on $port"
            as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || die "could not stop PostgreSQL in $data"
        fi
    fi
    if ! grep -qx "port = $port" "$data/postgresql.conf"; then
        as_pg sed -i "s/^port = [0-9]*\$/port = $port/" "$data/postgresql.conf"
    fi
    if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "starting PostgreSQL on 127.0.0.1:$port"
        # Our ports lie below Linux's ephemeral range (32768-60999), where no client connection is given
        # a local port; they were inside it once, and a CI run lost its chaos cluster to a connection
        # that held the port for over 30 s. A listener that comes and goes is still possible: try
        # again for a while, and say who holds the port if it stays taken.
        for i in $(seq 1 15); do
            as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null && break
            if [ "$i" -lt 15 ] && tail -n 20 "$data/server.log" | grep -q "Address already in use"; then
                say "port $port is taken for the moment; trying again in 2 s"
                sleep 2
                continue
            fi
            tail -n 20 "$data/server.log" >&2
            if command -v ss >/dev/null 2>&1; then
                echo "sockets on port $port:" >&2
                ss -tanp 2>/dev/null | awk -v p=":$port" 'NR == 1 || index($4, p) || index($5, p)' >&2 || true
            fi
            die "PostgreSQL did not start (log: $data/server.log)"
        done
    fi
    for i in $(seq 1 50); do
        as_pg "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q && break
        sleep 0.2
    done
    if ! as_pg psql -h 127.0.0.1 -p "$port" -U gateway -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
        as_pg psql -h 127.0.0.1 -p "$port" -U gateway -d postgres -qc "CREATE DATABASE \"$db\"" >/dev/null \
            || die "could not create database $db"
    fi
}

# start_standby PRIMARY_PORT DATA_DIR PORT: a streaming standby of the cluster on PRIMARY_PORT (pg_basebackup -R),
# hot (it answers reads, refuses writes), on 127.0.0.1:PORT. Removed and made again each time.
start_standby() {
    local primary_port="$1" data="$2" port="$3" bin
    bin=$(pg_bindir)
    stop_cluster "$data"
    rm -rf "$data"
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
    chmod 700 "$data"
    as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U gateway -D "$data" -R -X stream -c fast >/dev/null \
        || die "pg_basebackup from 127.0.0.1:$primary_port failed"
    as_pg sed -i "s/^port = [0-9]*\$/port = $port/; s|^unix_socket_directories = .*|unix_socket_directories = '$data'|" "$data/postgresql.conf"
    rm -f "$data/postmaster.pid" "$data/server.log"
    as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null || { tail -n 20 "$data/server.log" >&2; die "standby in $data did not start"; }
}

stop_cluster() {
    local data="$1" bin
    bin=$(pg_bindir)
    [ -f "$data/PG_VERSION" ] || return 0
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# A free loopback TCP port at or above $1.
free_port() {
    local p="$1"
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

# The chaos scripts' shared set-up: the build they run (CHAOS_BUILD=release, default debug), a
# throwaway cluster $LOCAL/pg-NAME (database gateway_chaos) on a free port from PG_BASE, and
# devchain (a block on both chains every 250 ms) on a free port from DEV_BASE, logging to
# $LOCAL/logs/NAME; both are removed on exit. Sets BIN, DATA, LOGS, PORT, DEVPORT and the
# POSTGRES_* environment.
#   chaos_environment NAME PG_BASE DEV_BASE
chaos_environment() {
    local name="$1" pg_base="$2" dev_base="$3" build="${CHAOS_BUILD:-debug}"
    cd "$ROOT"
    if [ "$build" = release ]; then swift build -c release >/dev/null; else swift build >/dev/null; fi
    BIN="$(swift build -c "$build" --show-bin-path)"
    DATA="$LOCAL/pg-$name"
    LOGS="$LOCAL/logs/$name"
    rm -rf "$LOGS"
    mkdir -p "$LOGS"
    stop_cluster "$DATA"
    rm -rf "$DATA"
    PORT=$(free_port "$pg_base")
    DEVPORT=$(free_port "$dev_base")
    CHAOS_DEVPID=""
    trap chaos_cleanup EXIT
    start_cluster "$DATA" "$PORT" gateway_chaos
    export POSTGRES_HOSTNAME=127.0.0.1 POSTGRES_PORT="$PORT" POSTGRES_USER=gateway POSTGRES_DB=gateway_chaos
    unset DATABASE_URL POSTGRES_PASSWORD GATEWAY_WALLET_SEED

    say "devchain on 127.0.0.1:$DEVPORT (a block on both chains every 250 ms)"
    "$BIN/devchain" --listen "127.0.0.1:$DEVPORT" --no-automine --block-time-ms 250 --log-level warning >"$LOGS/devchain.log" 2>&1 &
    CHAOS_DEVPID=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$DEVPORT") 2>/dev/null && break; sleep 0.1; done
}

chaos_cleanup() {
    [ -n "${CHAOS_DEVPID:-}" ] && kill "$CHAOS_DEVPID" 2>/dev/null || true
    stop_cluster "$DATA"
    rm -rf "$DATA"
}
