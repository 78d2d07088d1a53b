-- The sweep planner looked at every deposit address on every run, summing each one's whole history
-- (deposits, top-ups, sweeps, fees): with 300,000 swept addresses a run took 10-13 s, every 30 s, and
-- returned 307,000 rows, one per address still holding the native dust of its top-up. It now looks
-- only at the addresses whose balance may have changed since it last did (gateway.sweep_watch), and
-- at every address only on a full pass (each sweep-worker's first run, then chains.<name>.sweep.
-- full_scan_every).

-- Deposit rows name the chain through their address (the same value), so that the flows of one
-- address (chain and address given, as in a LATERAL subquery) are found through
-- addresses_chain_address_key instead of by reading every address.
CREATE OR REPLACE VIEW gateway.address_flows AS
SELECT a.chain, a.address, d.coin_id, d.amount AS moved, 'deposit'::text AS source
FROM gateway.deposits d JOIN gateway.addresses a ON a.id = d.address_id
WHERE d.status IN ('seen', 'confirmed', 'ignored')
UNION ALL
SELECT r.chain, r.address, r.coin_id, r.amount, 'hot_receipt'
FROM gateway.hot_receipts r
WHERE r.status IN ('seen', 'confirmed')
UNION ALL
SELECT o.chain, o.from_address, o.coin_id, -o.amount, 'sent'
FROM gateway.outgoing_txs o
WHERE o.state IN ('mined', 'confirmed')
UNION ALL
SELECT o.chain, o.from_address, n.id, -o.network_fee, 'network_fee'
FROM gateway.outgoing_txs o
JOIN LATERAL (SELECT k.id FROM gateway.coins k WHERE k.chain = o.chain AND NOT k.is_token ORDER BY k.id LIMIT 1) n ON true
WHERE o.state IN ('confirmed', 'failed') AND o.network_fee > 0
UNION ALL
SELECT o.chain, o.to_address, o.coin_id, o.amount, 'internal_in'
FROM gateway.outgoing_txs o
WHERE o.state IN ('mined', 'confirmed')
  AND (o.purpose = 'topup'
       OR (o.purpose = 'sweep' AND EXISTS (SELECT 1 FROM gateway.sweeps s WHERE s.id = o.ref_id AND s.destination_role = 'cold')));

CREATE SEQUENCE gateway.sweep_watch_mark;

CREATE TABLE gateway.sweep_watch (
    address_id bigint PRIMARY KEY REFERENCES gateway.addresses (id),
    chain      text   NOT NULL,
    -- A new value (never reused) whenever the address is marked again: the planner removes a row only
    -- with the mark it read, so an arrival while it was planning keeps the address watched.
    mark       bigint NOT NULL DEFAULT nextval('gateway.sweep_watch_mark')
);
CREATE INDEX sweep_watch_chain ON gateway.sweep_watch (chain, address_id);

COMMENT ON TABLE gateway.sweep_watch IS 'deposit addresses the sweep planner must look at again: a deposit to them was confirmed, or a sweep of theirs ended; the planner removes a row once the address has a sweep or holds less than every threshold';

-- Marked in the transaction that confirms the deposit (or ends the sweep), whichever code does it.
-- Statement-level (one insert per statement, not per row), in address order (the order in which the
-- planner locks the rows it removes). A later update of a row already confirmed (or ended) marks its
-- address again; that costs the planner one more look, never a missed deposit.
CREATE FUNCTION gateway.sweep_watch_deposits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gateway.sweep_watch (address_id, chain)
    SELECT DISTINCT n.address_id, n.chain FROM new_deposits n WHERE n.status IN ('confirmed', 'ignored') ORDER BY 1
    ON CONFLICT (address_id) DO UPDATE SET mark = nextval('gateway.sweep_watch_mark');
    RETURN NULL;
END $$;

CREATE FUNCTION gateway.sweep_watch_sweeps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gateway.sweep_watch (address_id, chain)
    SELECT DISTINCT n.address_id, n.chain FROM new_sweeps n WHERE n.state IN ('swept', 'failed') ORDER BY 1
    ON CONFLICT (address_id) DO UPDATE SET mark = nextval('gateway.sweep_watch_mark');
    RETURN NULL;
END $$;

CREATE TRIGGER deposits_watch_inserted AFTER INSERT ON gateway.deposits
    REFERENCING NEW TABLE AS new_deposits FOR EACH STATEMENT EXECUTE FUNCTION gateway.sweep_watch_deposits();
CREATE TRIGGER deposits_watch_updated AFTER UPDATE ON gateway.deposits
    REFERENCING NEW TABLE AS new_deposits FOR EACH STATEMENT EXECUTE FUNCTION gateway.sweep_watch_deposits();
CREATE TRIGGER sweeps_watch_ended AFTER UPDATE ON gateway.sweeps
    REFERENCING NEW TABLE AS new_sweeps FOR EACH STATEMENT EXECUTE FUNCTION gateway.sweep_watch_sweeps();

-- What is already waiting is found by each sweep-worker's first planner run (a full pass).
