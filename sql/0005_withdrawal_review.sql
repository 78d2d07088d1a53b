-- Withdrawals as reviewers and operators watch them (DESIGN.md §8), and how a merchant pays the
-- coin's withdrawal fee: deducted from the amount sent (the default, as Udun's guide has it) or
-- added on top of it in the reservation.

ALTER TABLE gateway.merchants
    ADD COLUMN withdrawal_fee_mode text NOT NULL DEFAULT 'deduct' CHECK (withdrawal_fee_mode IN ('deduct', 'add'));

CREATE VIEW monitor.withdrawals AS
SELECT w.chain, c.symbol, w.state,
       count(*)                 AS withdrawals,
       sum(w.amount)            AS amount,
       now() - min(w.updated_at) AS oldest_in_state_age
FROM gateway.withdrawals w JOIN gateway.coins c ON c.id = w.coin_id
WHERE w.state NOT IN ('confirmed', 'rejected', 'failed') OR w.updated_at > now() - interval '1 day'
GROUP BY w.chain, c.symbol, w.state;

COMMENT ON VIEW monitor.withdrawals IS 'withdrawals per chain, coin and state (open ones, and those finished in the last day), with the age of the oldest';

CREATE VIEW monitor.reviews AS
SELECT m.id AS merchant_id, m.name AS merchant,
       count(*)                  AS waiting,
       sum(w.amount)             AS amount,
       now() - min(w.updated_at) AS oldest_waiting_age
FROM gateway.withdrawals w JOIN gateway.merchants m ON m.id = w.merchant_id
WHERE w.state = 'pending_review'
GROUP BY m.id, m.name;

COMMENT ON VIEW monitor.reviews IS 'withdrawals waiting for people, per merchant, with the age of the oldest (gatewayctl review list)';
