-- Dedicated gas wallets (issue 8, DESIGN.md §4 "Sweep"): each merchant wallet also has a gas address,
-- `m/purpose'/coin'/account'/2/0` (branch 2 of its account; deposit addresses are branch 0, the hot
-- address branch 1). On a chain configured with `sweep.gas_wallet: true` the sweeps' gas top-ups come
-- from it instead of the hot address: operators fund it with the native coin like a hot address (the
-- scanner records and books those receipts as hot wallet receipts: treasury), it has its own nonce row
-- (gateway.hot_nonces), and `gatewayctl ledger reconcile` covers it.
-- Derived from the account xpub: `Wallets.attach` fills it; for wallets attached before this migration
-- `gatewayctl migrate` fills it right after applying the SQL (the derivation needs Swift).
ALTER TABLE gateway.wallets ADD COLUMN gas_address text;
CREATE UNIQUE INDEX wallets_gas_address ON gateway.wallets (chain, gas_address) WHERE gas_address IS NOT NULL;
