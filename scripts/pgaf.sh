# pg_auto_failover on loopback for the failover chaos (sourced by scripts/chaos-failover.sh, never run): a monitor
# and data nodes (three, or PGAF_NODES) run by pg_autoctl as the unprivileged postgres user, under $PGAF (HOME and XDG folders there
# too, so pg_autoctl's state stays out of ~postgres), and the failure events the chaos run asks for.
# shellcheck shell=bash

PGAF_FORMATION=default
# Data nodes: 3 (one synchronous standby survives the loss of a node), or 2 (the formation postgres-failover.md measured:
# number_sync_standbys 0, so the survivor of a lost node runs without synchronous replication until it is back).
PGAF_NODES=${PGAF_NODES:-3}

# pgaf_env: runs a command as postgres with pg_autoctl's environment.
pgaf_as() {
    as_pg env PATH="$(pg_bindir):$PATH" HOME="$PGAF/home" XDG_CONFIG_HOME="$PGAF/home/config" XDG_DATA_HOME="$PGAF/home/data" \
        XDG_RUNTIME_DIR="$PGAF/home/run" "$@"
}

# Monitor queries, as the monitor's superuser.
pgaf_monitor_sql() { as_pg psql -h 127.0.0.1 -p "$PGAF_MONITOR_PORT" -U postgres -d pg_auto_failover -Atqc "$1"; }

# pgaf_start_keeper DIR: runs a node's (or the monitor's) keeper in the background, logging to DIR.log.
pgaf_start_keeper() {
    local dir="$1"
    pgaf_as bash -c "nohup pg_autoctl run --pgdata '$dir' >>'$dir.log' 2>&1 &"
}

# pgaf_create PORT_BASE: a monitor and nodes node1..node$PGAF_NODES, tuned as postgres-failover.md §2 (and, with three, one
# synchronous standby, so that losing a node keeps synchronous replication). Sets PGAF_MONITOR_PORT and PGAF_PORTS.
pgaf_create() {
    local base="$1" n port
    rm -rf "$PGAF"
    mkdir -p "$PGAF/home/run"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$PGAF"
    PGAF_MONITOR_PORT=$(free_port "$base")
    pgaf_as pg_autoctl create monitor --pgdata "$PGAF/monitor" --pgport "$PGAF_MONITOR_PORT" --hostname 127.0.0.1 --auth trust --no-ssl \
        >"$PGAF/create-monitor.log" 2>&1 || { cat "$PGAF/create-monitor.log" >&2; die "pg_autoctl create monitor failed"; }
    pgaf_as pg_autoctl config set --pgdata "$PGAF/monitor" postgresql.listen_addresses 127.0.0.1 >/dev/null
    pgaf_start_keeper "$PGAF/monitor"
    for _ in $(seq 1 100); do as_pg pg_isready -q -h 127.0.0.1 -p "$PGAF_MONITOR_PORT" && break; sleep 0.2; done
    PGAF_PORTS=()
    port=$PGAF_MONITOR_PORT
    for n in $(seq 1 "$PGAF_NODES"); do
        port=$(free_port $((port + 1)))
        PGAF_PORTS+=("$port")
        pgaf_as pg_autoctl create postgres --pgdata "$PGAF/node$n" --pgport "$port" --listen 127.0.0.1 --hostname 127.0.0.1 --name "node$n" \
            --auth trust --no-ssl --dbname gateway --username gateway \
            --monitor "postgres://autoctl_node@127.0.0.1:$PGAF_MONITOR_PORT/pg_auto_failover?sslmode=prefer" \
            >"$PGAF/create-node$n.log" 2>&1 || { tail -n 20 "$PGAF/create-node$n.log" >&2; die "pg_autoctl create postgres node$n failed"; }
        pgaf_as pg_autoctl config set --pgdata "$PGAF/node$n" timeout.network_partition_timeout 5 >/dev/null
        pgaf_start_keeper "$PGAF/node$n"
        pgaf_wait_healthy "$n" 120 || die "node$n did not join the formation (logs: $PGAF/node$n.log)"
    done
    if [ "$PGAF_NODES" -ge 3 ]; then
        # Three nodes make it 1 already; `pg_autoctl set formation number-sync-standbys 1` refuses "1" in 2.0 (a bug),
        # so the monitor's own function is the way to make sure.
        pgaf_monitor_sql "SELECT pgautofailover.set_formation_number_sync_standbys('$PGAF_FORMATION', 1)" >/dev/null 2>&1 || true
        [ "$(pgaf_monitor_sql "SELECT number_sync_standbys FROM pgautofailover.formation WHERE formationid = '$PGAF_FORMATION'")" = 1 ] \
            || die "the formation does not keep one synchronous standby"
    fi
    local setting
    for setting in health_check_period=1000 health_check_timeout=1000 health_check_max_retries=1 health_check_retry_delay=500 \
        node_considered_unhealthy_timeout=5000 primary_demote_timeout=5000; do
        pgaf_monitor_sql "ALTER SYSTEM SET pgautofailover.${setting%%=*} = ${setting##*=}" || die "could not tune the monitor"
    done
    pgaf_monitor_sql "SELECT pg_reload_conf()" >/dev/null
    pgaf_wait_healthy "$PGAF_NODES" 60 || die "the formation is not healthy after tuning"
}

# pgaf_wait_healthy N SECONDS: until N nodes are in their assigned state, one primary (single, alone) and the rest secondary.
pgaf_wait_healthy() {
    local want="$1" seconds="$2" i state
    for i in $(seq 1 $((seconds * 5))); do
        state=$(pgaf_monitor_sql "SELECT count(*) FILTER (WHERE reportedstate = goalstate AND reportedstate IN ('primary', 'single')) || ' ' ||
                                         count(*) FILTER (WHERE reportedstate = goalstate AND reportedstate = 'secondary')
                                  FROM pgautofailover.node" 2>/dev/null || true)
        [ "$state" = "1 $((want - 1))" ] && return 0
        sleep 0.2
    done
    echo "formation state: $(pgaf_monitor_sql "SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ') FROM pgautofailover.node" 2>/dev/null)" >&2
    return 1
}

# The name of the node the monitor has as primary (node1, node2, …).
pgaf_primary() { pgaf_monitor_sql "SELECT nodename FROM pgautofailover.node WHERE goalstate IN ('primary', 'wait_primary') LIMIT 1"; }
pgaf_a_secondary() { pgaf_monitor_sql "SELECT nodename FROM pgautofailover.node WHERE goalstate = 'secondary' ORDER BY nodeid LIMIT 1"; }

# pgaf_kill NODE: kill -9 the node's keeper and postmaster, every process of its tree at once (a host that dies).
pgaf_kill() {
    local dir="$PGAF/$1" top pids p
    top=$(pgrep -f "^pg_autoctl run --pgdata $dir\$" || true)
    pids="$top"
    for p in $top; do pids="$pids $(pgaf_descendants "$p")"; done
    [ -f "$dir/postmaster.pid" ] && pids="$pids $(head -n 1 "$dir/postmaster.pid")"
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
}

pgaf_descendants() {
    local c
    for c in $(pgrep -P "$1" || true); do echo "$c"; pgaf_descendants "$c"; done
}

# pgaf_event EVENT: switchover | crash-primary | crash-secondary; returns once the formation is healthy again
# (one primary, the other nodes secondaries), having brought a killed node back with `pg_autoctl run`.
pgaf_event() {
    local event="$1" node old
    case "$event" in
        switchover)
            pgaf_as pg_autoctl perform switchover --pgdata "$PGAF/monitor" --wait 60 >>"$PGAF/events.log" 2>&1 || true
            ;;
        crash-primary)
            old=$(pgaf_primary)
            pgaf_kill "$old"
            for _ in $(seq 1 300); do
                node=$(pgaf_monitor_sql "SELECT nodename FROM pgautofailover.node WHERE reportedstate IN ('primary', 'wait_primary')
                                         AND reportedstate = goalstate AND nodename <> '$old' LIMIT 1" 2>/dev/null || true)
                [ -n "$node" ] && break
                sleep 0.2
            done
            pgaf_start_keeper "$PGAF/$old"
            ;;
        crash-secondary)
            node=$(pgaf_a_secondary)
            pgaf_kill "$node"
            sleep 5
            pgaf_start_keeper "$PGAF/$node"
            ;;
        *) die "unknown failover event '$event'" ;;
    esac
    pgaf_wait_healthy "$PGAF_NODES" 120 || die "the formation did not recover after $event (logs under $PGAF)"
}

# pgaf_stop: every keeper and server of the formation.
pgaf_stop() {
    local n
    for n in $(seq 1 "$PGAF_NODES"); do pgaf_kill "node$n"; done
    pgaf_kill monitor
}
