-- A paid withdrawal's row is updated three times on the payment path (signed, broadcast,
-- confirmed). With `state` in an index, each update wrote a new entry into every index of the
-- table (six); without it, and with room left on each page, they are heap-only (HOT) updates that
-- touch no index. Nothing read withdrawals through (state, created_at): reviews are found through
-- gateway.withdrawal_reviews, the monitor view reads every open and recent withdrawal anyway, and
-- listings go by merchant or id.
DROP INDEX gateway.withdrawals_state;
ALTER TABLE gateway.withdrawals SET (fillfactor = 70);

-- Ledger entries were indexed by their transfer's random UUID: every leg inserted into a random
-- page of that index, and the only reader (Ledger's balance check) reads every entry anyway.
DROP INDEX gateway.ledger_entries_transfer;

-- The same for a payment's transaction: `signed` → `broadcast` is its busiest update. The index
-- of open transactions per address is now on "not in a block" (`block_height IS NULL`, true of
-- every signed or broadcast one) instead of on `state`, so that update is heap-only; queries for
-- open transactions name both conditions so they can use it.
CREATE INDEX outgoing_txs_unmined ON gateway.outgoing_txs (chain, from_address) WHERE block_height IS NULL;
DROP INDEX gateway.outgoing_txs_open;
ALTER TABLE gateway.outgoing_txs SET (fillfactor = 70);

CREATE OR REPLACE VIEW monitor.hot_wallets AS
SELECT w.id AS wallet_id, w.merchant_id, w.chain, w.hot_address, w.account_index, k.id AS coin_id, k.symbol, k.decimals, k.is_token,
       coalesce((SELECT sum(f.moved) FROM gateway.address_flows f
                 WHERE f.chain = w.chain AND f.address = w.hot_address AND f.coin_id = k.id), 0)              AS expected,
       coalesce((SELECT sum(r.amount) FROM gateway.hot_receipts r
                 WHERE r.chain = w.chain AND r.address = w.hot_address AND r.coin_id = k.id AND r.status = 'seen'), 0) AS receipts_waiting,
       coalesce((SELECT sum(o.amount) FROM (
                    SELECT DISTINCT ON (o.purpose, o.ref_id) o.amount, o.coin_id FROM gateway.outgoing_txs o
                    WHERE o.chain = w.chain AND o.from_address = w.hot_address AND o.state IN ('signed', 'broadcast') AND o.block_height IS NULL
                    ORDER BY o.purpose, o.ref_id, o.id DESC) o
                 WHERE o.coin_id = k.id), 0)                                                                    AS in_flight,
       (SELECT count(DISTINCT (o.purpose, o.ref_id)) FROM gateway.outgoing_txs o
        WHERE o.chain = w.chain AND o.from_address = w.hot_address AND o.coin_id = k.id AND o.state IN ('signed', 'broadcast') AND o.block_height IS NULL) AS in_flight_txs
FROM gateway.wallets w JOIN gateway.coins k ON k.chain = w.chain;
