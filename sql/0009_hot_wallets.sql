-- Hot wallets in the ledger and the monitor (DESIGN.md §3, §8): funds that reach a hot address from
-- outside are recorded and, at the chain's confirmation depth, booked (coin's `chain` account −a, the
-- gateway's `treasury` +a); what our records say each of our addresses holds, for reconciling with
-- the node (gatewayctl ledger reconcile) and for the hot wallet monitor.

-- A transfer to a wallet's hot address, found by the chain scanner: (chain, tx, log index) once, like a
-- deposit (log_index -1 for a native transfer). seen → confirmed (booked) | orphaned (its block left the
-- chain before the depth). Not a merchant deposit: no merchant credit, no callback.
-- `internal`: it came from one of our own addresses (a deposit or hot address of the chain). Such a
-- move changes nothing of what the gateway holds, so it is never booked here: the sending side books
-- it (issue 8's sweeps write their own outgoing transaction and ledger rows).
CREATE TABLE gateway.hot_receipts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain         text    NOT NULL,
    tx_hash       text    NOT NULL,
    log_index     integer NOT NULL,
    wallet_id     bigint  NOT NULL REFERENCES gateway.wallets (id),
    merchant_id   bigint  NOT NULL REFERENCES gateway.merchants (id),
    address       text    NOT NULL,   -- the hot address (canonical form, as in gateway.wallets)
    coin_id       integer NOT NULL REFERENCES gateway.coins (id),
    from_address  text    NOT NULL,
    internal      boolean NOT NULL DEFAULT false,
    amount        numeric(78,0) NOT NULL CHECK (amount > 0),
    block_height  bigint  NOT NULL,
    block_hash    text    NOT NULL,
    status        text    NOT NULL DEFAULT 'seen' CHECK (status IN ('seen', 'confirmed', 'orphaned')),
    status_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain, tx_hash, log_index)
);
CREATE INDEX hot_receipts_waiting ON gateway.hot_receipts (chain, block_height) WHERE status = 'seen';
CREATE INDEX hot_receipts_address ON gateway.hot_receipts (chain, address);

-- A deep reorg may also replace blocks with booked hot wallet receipts: listed beside the deposits.
ALTER TABLE gateway.reorg_alerts ADD COLUMN affected_hot_receipts bigint[] NOT NULL DEFAULT '{}';

-- For the per-address sums below.
CREATE INDEX outgoing_txs_from ON gateway.outgoing_txs (chain, from_address, coin_id);

-- Every movement of a coin at one of our addresses that our own records know to be in a block, signed
-- (+ in, − out): deposits (ignored ones too: below the minimum, but on chain), hot wallet receipts,
-- what our transactions sent once in a block and not failed, and the network fees of settled ones
-- (in the chain's native coin). Σ moved per (chain, address, coin) is what the address should hold.
CREATE VIEW gateway.address_flows AS
SELECT d.chain, a.address, d.coin_id, d.amount AS moved, 'deposit'::text AS source
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
WHERE o.state IN ('confirmed', 'failed') AND o.network_fee > 0;

COMMENT ON VIEW gateway.address_flows IS 'signed coin movements at our addresses that our records place in a block: deposits, hot receipts, sent amounts, network fees';

-- Per hot wallet and coin of its chain: what our records say it holds (receipts − payments − fees),
-- and what its open transactions (signed or broadcast, the newest of each payment) still take from it.
-- Low-water marks are configuration (chains.<name>.hot_wallet_low_water): gatewayctl status compares.
CREATE VIEW monitor.hot_wallets AS
SELECT w.id AS wallet_id, w.merchant_id, w.chain, w.hot_address, w.account_index, k.id AS coin_id, k.symbol, k.decimals, k.is_token,
       coalesce((SELECT sum(f.moved) FROM gateway.address_flows f
                 WHERE f.chain = w.chain AND f.address = w.hot_address AND f.coin_id = k.id), 0)              AS expected,
       coalesce((SELECT sum(r.amount) FROM gateway.hot_receipts r
                 WHERE r.chain = w.chain AND r.address = w.hot_address AND r.coin_id = k.id AND r.status = 'seen'), 0) AS receipts_waiting,
       coalesce((SELECT sum(o.amount) FROM (
                    SELECT DISTINCT ON (o.purpose, o.ref_id) o.amount, o.coin_id FROM gateway.outgoing_txs o
                    WHERE o.chain = w.chain AND o.from_address = w.hot_address AND o.state IN ('signed', 'broadcast')
                    ORDER BY o.purpose, o.ref_id, o.id DESC) o
                 WHERE o.coin_id = k.id), 0)                                                                    AS in_flight,
       (SELECT count(DISTINCT (o.purpose, o.ref_id)) FROM gateway.outgoing_txs o
        WHERE o.chain = w.chain AND o.from_address = w.hot_address AND o.coin_id = k.id AND o.state IN ('signed', 'broadcast')) AS in_flight_txs
FROM gateway.wallets w JOIN gateway.coins k ON k.chain = w.chain;

COMMENT ON VIEW monitor.hot_wallets IS 'per hot wallet and coin: expected holding from our records (receipts − payments − fees, base units), receipts waiting for depth, amounts in flight';
