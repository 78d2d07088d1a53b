-- Merchants, coins, wallets, deposit addresses, withdrawals, the ledger they are paid from, the
-- callbacks sent to them, and the administration around it (udun-protocol.md, DESIGN.md §3-4).

-- Merchant numbers look like Udun's (six digits and up).
CREATE TABLE gateway.merchants (
    id                  bigint GENERATED ALWAYS AS IDENTITY (START WITH 300001) PRIMARY KEY,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The Open API key. The md5 signature needs the key itself, so it is stored as is; it is read
    -- only to verify and sign, and never selected into logs or API output.
    api_key             text        NOT NULL CHECK (length(api_key) >= 32),
    -- Standard Webhooks secret (whsec_ + base64), for the extra callback signature.
    webhook_secret      text        NOT NULL,
    status              text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    auto_payment        boolean     NOT NULL DEFAULT false,
    -- Limits: deposit addresses, requests per minute on the Open API (NULL: the configured default).
    max_addresses       integer     CHECK (max_addresses > 0),
    rate_limit_per_min  integer     CHECK (rate_limit_per_min > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Coins the gateway handles. main_coin_type is the SLIP-44 code of the chain; coin_type is the
-- token's contract address (EVM: lowercase) or equals main_coin_type for the native coin.
CREATE TABLE gateway.coins (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain           text        NOT NULL,
    main_coin_type  text        NOT NULL,
    coin_type       text        NOT NULL,
    symbol          text        NOT NULL,
    name            text        NOT NULL,
    coin_name       text        NOT NULL,
    main_symbol     text        NOT NULL DEFAULT '',
    logo            text        NOT NULL DEFAULT '',
    decimals        integer     NOT NULL CHECK (decimals BETWEEN 0 AND 36),
    is_token        boolean     NOT NULL,
    min_deposit     numeric(78,0) NOT NULL DEFAULT 0 CHECK (min_deposit >= 0),
    withdrawal_fee  numeric(78,0) NOT NULL DEFAULT 0 CHECK (withdrawal_fee >= 0),
    enabled         boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (main_coin_type, coin_type),
    CHECK (is_token OR coin_type = main_coin_type)
);

-- One HD account per merchant and chain: deposit address i = account/0/i, hot address = account/1/0.
CREATE TABLE gateway.wallets (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   bigint  NOT NULL REFERENCES gateway.merchants (id),
    chain         text    NOT NULL,
    account_xpub  text    NOT NULL,
    account_index integer CHECK (account_index >= 0),   -- when derived from the gateway seed
    next_index    integer NOT NULL DEFAULT 0 CHECK (next_index >= 0),
    hot_address   text    NOT NULL,
    cold_address  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, chain)
);

CREATE TABLE gateway.addresses (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   bigint  NOT NULL REFERENCES gateway.merchants (id),
    wallet_id     bigint  NOT NULL REFERENCES gateway.wallets (id),
    chain         text    NOT NULL,
    address       text    NOT NULL,
    derivation_index integer NOT NULL,
    call_url      text    NOT NULL,
    alias         text    NOT NULL DEFAULT '',
    wallet_ref    text    NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain, address),
    UNIQUE (wallet_id, derivation_index)
);
CREATE INDEX addresses_merchant ON gateway.addresses (merchant_id, id);

-- Withdrawals (/mch/withdraw and /mch/withdraw/proxypay). id is the callbacks' tradeId.
CREATE TABLE gateway.withdrawals (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   bigint  NOT NULL REFERENCES gateway.merchants (id),
    business_id   text    NOT NULL,
    coin_id       integer NOT NULL REFERENCES gateway.coins (id),
    chain         text    NOT NULL,
    address       text    NOT NULL,
    amount        numeric(78,0) NOT NULL CHECK (amount > 0),
    fee           numeric(78,0) NOT NULL DEFAULT 0,
    call_url      text    NOT NULL,
    memo          text    NOT NULL DEFAULT '',
    remark        text    NOT NULL DEFAULT '',
    wallet_ref    text    NOT NULL DEFAULT '',
    proxypay      boolean NOT NULL,
    state         text    NOT NULL DEFAULT 'received' CHECK (state IN (
                      'received', 'pending_review', 'approved', 'rejected', 'signed', 'broadcast', 'confirmed', 'failed')),
    state_reason  text,
    tx_hash       text,
    block_height  bigint,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, business_id)
);
CREATE INDEX withdrawals_state ON gateway.withdrawals (state, created_at);
CREATE INDEX withdrawals_merchant ON gateway.withdrawals (merchant_id, id);

-- Double-entry ledger. Every balance change writes entries summing to zero per transfer, in the
-- same transaction as the state change that causes it; balances are kept beside it for reads.
CREATE TABLE gateway.ledger_accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id bigint REFERENCES gateway.merchants (id),   -- NULL for the gateway's own accounts
    coin_id     integer NOT NULL REFERENCES gateway.coins (id),
    kind        text    NOT NULL,   -- available, reserved, chain (the outside world), fees, …
    balance     numeric(78,0) NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (merchant_id, coin_id, kind)
);

CREATE TABLE gateway.ledger_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id uuid    NOT NULL,
    account_id  bigint  NOT NULL REFERENCES gateway.ledger_accounts (id),
    amount      numeric(78,0) NOT NULL CHECK (amount <> 0),   -- positive credits the account
    reason      text    NOT NULL,
    ref         text    NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_transfer ON gateway.ledger_entries (transfer_id);
CREATE INDEX ledger_entries_account ON gateway.ledger_entries (account_id, id);

-- Callbacks to merchants: the exact bytes are stored when the callback is created and re-sent
-- unchanged (DESIGN.md §6). Delivery is a job of the callback stage.
CREATE TABLE gateway.callbacks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   bigint  NOT NULL REFERENCES gateway.merchants (id),
    trade_type    smallint NOT NULL CHECK (trade_type IN (1, 2)),
    trade_id      bigint  NOT NULL,
    status        smallint NOT NULL CHECK (status BETWEEN 0 AND 4),
    url           text    NOT NULL,
    payload       text    NOT NULL,   -- the form-encoded body, byte for byte
    webhook_id    text    NOT NULL,
    state         text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    UNIQUE (trade_type, trade_id, status)
);
CREATE INDEX callbacks_merchant ON gateway.callbacks (merchant_id, id);
CREATE INDEX callbacks_pending ON gateway.callbacks (merchant_id, created_at) WHERE state <> 'delivered';

-- Signatures of recent Open API requests: a repeat within the timestamp window is a replay.
CREATE TABLE gateway.request_signatures (
    merchant_id bigint      NOT NULL,
    sign        text        NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, sign)
);
CREATE INDEX request_signatures_seen ON gateway.request_signatures (seen_at);

-- Administration: bearer tokens (stored as SHA-256) and the audit of every admin action.
CREATE TABLE gateway.admin_tokens (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    token_hash  text        NOT NULL UNIQUE,
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway.audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}',
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_target ON gateway.audit_log (target, id);
