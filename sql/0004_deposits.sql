-- Deposits (DESIGN.md §4-5): the chain scanner's position and leadership per chain, the hashes of
-- the blocks it scanned (reorg detection), the deposits it found, and the reorgs it could not
-- handle silently.

-- One row per chain: where its scanner stands and who holds the scanner's lease. Only the holder
-- writes; a stand-by chain-worker takes over once lease_until has passed.
CREATE TABLE gateway.chain_scanners (
    chain           text PRIMARY KEY,
    scanned_height  bigint,          -- every block up to here is recorded; NULL before the first scan
    node_tip        bigint,          -- the node's tip at the last look
    leader          text,
    lease_until     timestamptz,
    last_scan_at    timestamptz,
    last_error      text,
    last_error_at   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Hashes of recently scanned blocks: the next block's parent must match, or the chain reorganised.
CREATE TABLE gateway.chain_blocks (
    chain        text   NOT NULL,
    height       bigint NOT NULL,
    hash         text   NOT NULL,
    parent_hash  text   NOT NULL,
    PRIMARY KEY (chain, height)
);

-- A deposit is (chain, tx, log index); log_index is -1 for a native transfer. Rescanning never
-- records one twice. seen → confirmed (credited, callback 3) | orphaned | ignored (below minimum).
CREATE TABLE gateway.deposits (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain         text    NOT NULL,
    tx_hash       text    NOT NULL,
    log_index     integer NOT NULL,
    merchant_id   bigint  NOT NULL REFERENCES gateway.merchants (id),
    address_id    bigint  NOT NULL REFERENCES gateway.addresses (id),
    coin_id       integer NOT NULL REFERENCES gateway.coins (id),
    from_address  text    NOT NULL,
    amount        numeric(78,0) NOT NULL CHECK (amount > 0),
    block_height  bigint  NOT NULL,
    block_hash    text    NOT NULL,
    status        text    NOT NULL DEFAULT 'seen' CHECK (status IN ('seen', 'confirmed', 'orphaned', 'ignored')),
    status_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain, tx_hash, log_index)
);
CREATE INDEX deposits_waiting ON gateway.deposits (chain, block_height) WHERE status = 'seen';
CREATE INDEX deposits_merchant ON gateway.deposits (merchant_id, id);
CREATE INDEX deposits_address ON gateway.deposits (address_id, id);

-- Reorganisations deeper than the confirmation depth: credited deposits may be gone from the
-- chain. Never handled silently; an operator looks, then acknowledges.
CREATE TABLE gateway.reorg_alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain            text    NOT NULL,
    fork_height      bigint  NOT NULL,   -- the last block both chains share
    depth            integer NOT NULL,   -- blocks replaced
    confirmations    integer NOT NULL,   -- the chain's configured depth at the time
    old_hash         text    NOT NULL,   -- our block at fork_height + 1
    new_hash         text    NOT NULL,   -- the node's block there now
    affected_deposits bigint[] NOT NULL DEFAULT '{}',   -- confirmed deposits in the replaced blocks
    detail           text    NOT NULL,
    detected_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text
);

CREATE VIEW monitor.chains AS
SELECT s.chain,
       s.node_tip,
       s.scanned_height,
       s.node_tip - s.scanned_height                     AS lag_blocks,
       now() - s.last_scan_at                            AS last_scan_age,
       s.leader,
       s.lease_until > now()                             AS leader_alive,
       s.last_error,
       now() - s.last_error_at                           AS last_error_age,
       (SELECT count(*) FROM gateway.deposits d WHERE d.chain = s.chain AND d.status = 'seen')          AS deposits_waiting,
       (SELECT count(*) FROM gateway.reorg_alerts a WHERE a.chain = s.chain AND a.acknowledged_at IS NULL) AS open_reorg_alerts
FROM gateway.chain_scanners s;

COMMENT ON VIEW monitor.chains IS 'per chain: node tip, scanned height, lag, last scan age, scanner leader, deposits waiting for confirmations, open deep-reorg alerts';

CREATE VIEW monitor.deposits AS
SELECT d.chain, c.symbol, d.status,
       count(*)                        AS deposits,
       sum(d.amount)                   AS amount,
       max(d.created_at)               AS last_seen_at,
       now() - min(d.created_at) FILTER (WHERE d.status = 'seen') AS oldest_waiting_age
FROM gateway.deposits d JOIN gateway.coins c ON c.id = d.coin_id
GROUP BY d.chain, c.symbol, d.status;

COMMENT ON VIEW monitor.deposits IS 'deposits per chain, coin and status (seen, confirmed, orphaned, ignored)';

CREATE VIEW monitor.reorg_alerts AS
SELECT id, chain, fork_height, depth, confirmations, old_hash, new_hash, affected_deposits, detail, detected_at
FROM gateway.reorg_alerts WHERE acknowledged_at IS NULL;

COMMENT ON VIEW monitor.reorg_alerts IS 'reorganisations deeper than the confirmation depth, not yet acknowledged (gatewayctl chain ack-reorg)';
