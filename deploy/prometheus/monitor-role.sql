-- A read-only PostgreSQL role for prometheus-postgres-exporter: what queries.yaml reads, and nothing else of the
-- gateway (no merchant keys, no console secrets). Run it as a superuser in the gateway's database, after
-- `gatewayctl migrate`, then set a password (ALTER ROLE gateway_monitor PASSWORD '…') or allow it in pg_hba.conf:
--
--   psql -d gateway -v ON_ERROR_STOP=1 -f deploy/prometheus/monitor-role.sql
--
-- Re-running it is harmless. scripts/check-monitoring.sh runs the exporter as this role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gateway_monitor') THEN
        CREATE ROLE gateway_monitor LOGIN;
    END IF;
END $$;

-- The exporter's own PostgreSQL metrics (connections, database sizes, bgwriter).
GRANT pg_monitor TO gateway_monitor;

GRANT USAGE ON SCHEMA monitor, gateway TO gateway_monitor;
-- The monitor views read the tables as their owner: SELECT on a view is all they need.
GRANT SELECT ON monitor.queue, monitor.dead_jobs, monitor.chains, monitor.reorg_alerts, monitor.hot_wallets TO gateway_monitor;
-- The open rows that queries.yaml reads straight from the tables, through their partial indexes.
GRANT SELECT ON gateway.callbacks, gateway.withdrawals, gateway.withdrawal_reviews, gateway.outgoing_txs, gateway.sweeps,
                gateway.chain_scanners TO gateway_monitor;
-- Merchants by number only: never their API keys or webhook secrets.
GRANT SELECT (id) ON gateway.merchants TO gateway_monitor;
