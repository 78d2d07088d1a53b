-- 0013 (the console) indexed withdrawals by (state, updated_at). Every update on the payment path
-- (signed, broadcast, confirmed) changes both columns, so none of them could be heap-only any more
-- (0011 had made them HOT): each wrote a new entry into all six indexes of the table, and the
-- payout benchmark lost a fifth of its rate. The console's pending queue goes through
-- withdrawal_reviews (deadline index); its paying/stuck/done tabs read the withdrawals without it,
-- like the monitor views do.
DROP INDEX gateway.withdrawals_state_updated;
