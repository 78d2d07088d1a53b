-- Aggregation sweeps (DESIGN.md §4 "Sweep"): a deposit address's confirmed funds move to its merchant's
-- hot address (or, above the hot wallet's cap, to the watch-only cold address), with a gas top-up from the
-- hot address first when a token sits on an address without the native coin to move it.
--   planned ─(token, gas short)─► gas_topup_sent ─► gas_confirmed ─► sweep_sent ─► swept
--      └──────────(gas enough)────────────────────────────────────┘           └─► failed (reason)
-- The transactions are gateway.outgoing_txs rows (purpose 'topup' / 'sweep', ref_id = the sweep's id),
-- signed, stored before broadcast and followed by chain-worker exactly like withdrawals.
CREATE TABLE gateway.sweeps (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain          text    NOT NULL,
    merchant_id    bigint  NOT NULL REFERENCES gateway.merchants (id),
    wallet_id      bigint  NOT NULL REFERENCES gateway.wallets (id),
    address_id     bigint  NOT NULL REFERENCES gateway.addresses (id),
    address        text    NOT NULL,   -- the deposit address (canonical form)
    coin_id        integer NOT NULL REFERENCES gateway.coins (id),
    amount         numeric(78,0) NOT NULL CHECK (amount > 0),   -- what the sweep moves (native: less the fee reserve)
    destination    text    NOT NULL,
    destination_role text  NOT NULL CHECK (destination_role IN ('hot', 'cold')),
    gas_estimate   numeric(78,0) NOT NULL DEFAULT 0,   -- native base units the sweep may burn (EVM gas × max fee; TRON fee_limit)
    topup_amount   numeric(78,0) NOT NULL DEFAULT 0,   -- native sent from the hot address first (0: none needed)
    state          text    NOT NULL DEFAULT 'planned'
                   CHECK (state IN ('planned', 'gas_topup_sent', 'gas_confirmed', 'sweep_sent', 'swept', 'failed')),
    state_reason   text,
    tx_hash        text,
    network_fee    numeric(78,0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
-- An address with a sweep in flight is not planned again, whoever plans.
CREATE UNIQUE INDEX sweeps_one_open ON gateway.sweeps (chain, address) WHERE state NOT IN ('swept', 'failed');
CREATE INDEX sweeps_state ON gateway.sweeps (state, created_at);

-- Our records now also know what our own transactions brought to our addresses: a gas top-up lands on a
-- deposit address, a sweep to a cold address on that cold address (a sweep to a hot address is a hot
-- receipt, found by the scanner). Once in a block and not failed, like `sent`.
CREATE OR REPLACE VIEW gateway.address_flows AS
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
WHERE o.state IN ('confirmed', 'failed') AND o.network_fee > 0
UNION ALL
SELECT o.chain, o.to_address, o.coin_id, o.amount, 'internal_in'
FROM gateway.outgoing_txs o
WHERE o.state IN ('mined', 'confirmed')
  AND (o.purpose = 'topup'
       OR (o.purpose = 'sweep' AND EXISTS (SELECT 1 FROM gateway.sweeps s WHERE s.id = o.ref_id AND s.destination_role = 'cold')));

COMMENT ON VIEW gateway.address_flows IS 'signed coin movements at our addresses that our records place in a block: deposits, hot receipts, sent amounts, network fees, top-ups received, sweeps into cold addresses';

CREATE INDEX outgoing_txs_to ON gateway.outgoing_txs (chain, to_address) WHERE purpose IN ('topup', 'sweep');

-- Funds waiting on deposit addresses per coin: what our records say they hold, and how much of it a sweep
-- already has in hand.
CREATE VIEW monitor.sweep_waiting AS
SELECT a.chain, k.symbol, k.id AS coin_id,
       count(*) FILTER (WHERE f.total > 0) AS addresses,
       coalesce(sum(f.total) FILTER (WHERE f.total > 0), 0) AS amount,
       coalesce(sum(f.total) FILTER (WHERE f.total > 0 AND EXISTS (
           SELECT 1 FROM gateway.sweeps s WHERE s.address_id = a.id AND s.coin_id = k.id AND s.state NOT IN ('swept', 'failed'))), 0) AS being_swept
FROM gateway.addresses a
JOIN LATERAL (SELECT f.coin_id, sum(f.moved) AS total FROM gateway.address_flows f
              WHERE f.chain = a.chain AND f.address = a.address GROUP BY f.coin_id) f ON true
JOIN gateway.coins k ON k.id = f.coin_id
GROUP BY a.chain, k.symbol, k.id;

COMMENT ON VIEW monitor.sweep_waiting IS 'per chain and coin: deposit addresses holding funds by our records, their sum (base units), and how much of it a sweep is moving';

CREATE VIEW monitor.sweeps AS
SELECT s.chain, k.symbol, s.state, s.destination_role,
       count(*)                  AS sweeps,
       sum(s.amount)             AS amount,
       now() - min(s.created_at) AS oldest_age
FROM gateway.sweeps s JOIN gateway.coins k ON k.id = s.coin_id
WHERE s.state NOT IN ('swept', 'failed') OR s.updated_at > now() - interval '1 day'
GROUP BY s.chain, k.symbol, s.state, s.destination_role;

COMMENT ON VIEW monitor.sweeps IS 'sweeps per chain, coin, state and destination (open ones, and those finished in the last day), with the age of the oldest';

CREATE VIEW monitor.sweep_gas AS
SELECT o.chain, date_trunc('day', o.updated_at) AS day, o.purpose,
       count(*) AS transactions, sum(o.network_fee) AS network_fees,
       sum(o.amount) FILTER (WHERE o.purpose = 'topup') AS topped_up
FROM gateway.outgoing_txs o
WHERE o.purpose IN ('topup', 'sweep') AND o.state IN ('confirmed', 'failed')
GROUP BY o.chain, date_trunc('day', o.updated_at), o.purpose;

COMMENT ON VIEW monitor.sweep_gas IS 'per chain, day and purpose (topup, sweep): settled transactions, network fees burned and native topped up (base units of the native coin)';
