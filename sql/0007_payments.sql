-- Automatic payment of approved withdrawals (DESIGN.md §4 "Exactly-once payment"): nonces per hot
-- address allocated from a row here, never read from the node at signing time; every signed
-- transaction stored (raw bytes and hash) in the transaction that marks its withdrawal `signed`,
-- before it is broadcast; replacements only on the same nonce (EVM) or after the first provably
-- expired (TRON).

-- What a withdrawal holds in its merchant's `reserved` account (amount, plus the fee when the
-- merchant's fee mode is `add`): set when approved, kept while it waits for the hot wallet, released
-- on rejection or on-chain failure, debited on confirmation.
ALTER TABLE gateway.withdrawals
    ADD COLUMN reserved    numeric(78,0) NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    ADD COLUMN sent_amount numeric(78,0),   -- what the destination receives (amount, less the fee when deducted)
    ADD COLUMN network_fee numeric(78,0);   -- native coin burned by the transaction that landed

-- The next nonce of each EVM hot address. Created from the node's mined count the first time the
-- address pays (nothing of ours is in flight then); from then on only this row says.
CREATE TABLE gateway.hot_nonces (
    chain      text   NOT NULL,
    address    text   NOT NULL,
    next_nonce bigint NOT NULL CHECK (next_nonce >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, address)
);

-- Every transaction the gateway signed. A withdrawal has one, or several sharing one nonce (EVM
-- fee replacements: at most one can execute), or a new one only after the previous expired unseen
-- (TRON).
CREATE TABLE gateway.outgoing_txs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain         text    NOT NULL,
    purpose       text    NOT NULL CHECK (purpose IN ('withdrawal', 'sweep', 'topup')),
    ref_id        bigint  NOT NULL,
    coin_id       integer NOT NULL REFERENCES gateway.coins (id),
    from_address  text    NOT NULL,
    to_address    text    NOT NULL,
    amount        numeric(78,0) NOT NULL CHECK (amount > 0),
    nonce         bigint,            -- EVM
    expiration    bigint,            -- TRON, ms since the epoch
    max_fee       numeric(78,0) NOT NULL DEFAULT 0,   -- EVM maxFeePerGas (wei); TRON fee_limit (sun)
    tip           numeric(78,0) NOT NULL DEFAULT 0,   -- EVM maxPriorityFeePerGas (wei)
    gas_limit     bigint  NOT NULL DEFAULT 0,
    tx_hash       text    NOT NULL UNIQUE,
    raw           bytea   NOT NULL,
    state         text    NOT NULL DEFAULT 'signed' CHECK (state IN ('signed', 'broadcast', 'mined', 'confirmed', 'failed', 'replaced', 'expired')),
    replaces      bigint REFERENCES gateway.outgoing_txs (id),
    broadcasts    integer NOT NULL DEFAULT 0,
    broadcast_at  timestamptz,
    block_height  bigint,
    network_fee   numeric(78,0),
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (nonce IS NOT NULL OR expiration IS NOT NULL)
);
CREATE INDEX outgoing_txs_ref ON gateway.outgoing_txs (purpose, ref_id);
CREATE INDEX outgoing_txs_open ON gateway.outgoing_txs (chain, from_address) WHERE state IN ('signed', 'broadcast');
-- One nonce of one address carries one payment (its replacements share it; another payment never
-- does). Allocation under the hot_nonces row lock keeps this true; the trigger makes a bug loud.
CREATE INDEX outgoing_txs_nonce ON gateway.outgoing_txs (chain, from_address, nonce) WHERE nonce IS NOT NULL;

CREATE FUNCTION gateway.outgoing_nonce_has_one_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.nonce IS NOT NULL AND EXISTS (
        SELECT 1 FROM gateway.outgoing_txs o
        WHERE o.chain = NEW.chain AND o.from_address = NEW.from_address AND o.nonce = NEW.nonce
          AND (o.purpose, o.ref_id) <> (NEW.purpose, NEW.ref_id)) THEN
        RAISE EXCEPTION 'nonce % of % on % already pays another transfer', NEW.nonce, NEW.from_address, NEW.chain
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER outgoing_nonce_has_one_owner BEFORE INSERT ON gateway.outgoing_txs
    FOR EACH ROW EXECUTE FUNCTION gateway.outgoing_nonce_has_one_owner();

-- Payments as operators watch them.
CREATE VIEW monitor.payments AS
SELECT o.chain, o.from_address AS hot_address, o.state,
       count(*)                  AS transactions,
       sum(o.amount)             AS amount,
       now() - min(o.created_at) AS oldest_age,
       max(o.broadcasts)         AS most_broadcasts
FROM gateway.outgoing_txs o
WHERE o.state IN ('signed', 'broadcast', 'mined') OR o.updated_at > now() - interval '1 day'
GROUP BY o.chain, o.from_address, o.state;

COMMENT ON VIEW monitor.payments IS 'signed transactions per chain, hot address and state (open ones, and those settled in the last day)';
