-- The operator console (issue 9): people who sign in to review withdrawals and watch the pipeline.
--
-- A console user's name is a reviewer's name: four eyes compare names (withdrawal_reviews.first_approver),
-- so alice deciding through the console (actor console:alice), gatewayctl (cli:alice) or her admin token
-- (admin:alice) is one person and cannot give both approvals. Two people never share a name.

CREATE TABLE gateway.console_users (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    -- viewer: reads; reviewer: decides reviews up to review_level; admin: also retries dead jobs and
    -- callbacks (and decides up to review_level, 0: none); auditor: reads, and the audit.
    role           text        NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin', 'auditor')),
    review_level   integer     NOT NULL DEFAULT 0 CHECK (review_level >= 0),
    password_hash  text        NOT NULL,          -- bcrypt
    -- The TOTP shared secret (the authenticator app has it too, so it cannot be hashed). Shown once by
    -- gatewayctl user add / reset-totp; never logged.
    totp_secret    text        NOT NULL,
    -- The last TOTP time step accepted: a code is good once (sign-in and step-ups).
    totp_last_step bigint      NOT NULL DEFAULT 0,
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role IN ('reviewer', 'admin') OR review_level = 0),
    CHECK (role <> 'reviewer' OR review_level >= 1)
);

-- Signed-in browsers. The cookie holds a random token; only its SHA-256 is stored. A session dies
-- after the configured idle time without a request (console.idle_timeout), on sign-out, and when
-- its user is disabled or their TOTP reset.
CREATE TABLE gateway.console_sessions (
    token_hash text        PRIMARY KEY,
    user_id    integer     NOT NULL REFERENCES gateway.console_users (id),
    ip         text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_user ON gateway.console_sessions (user_id);

-- Every sign-in attempt, good or bad: the audit of sign-ins and the rate limit's memory (failures
-- per name and per address within console.sign_in_window).
CREATE TABLE gateway.console_sign_ins (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name   text        NOT NULL,
    ip     text        NOT NULL DEFAULT '',
    ok     boolean     NOT NULL,
    reason text        NOT NULL DEFAULT '',
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sign_ins_name ON gateway.console_sign_ins (name, at) WHERE NOT ok;
CREATE INDEX console_sign_ins_ip ON gateway.console_sign_ins (ip, at) WHERE NOT ok;

-- The console's own actions (retries, bulk runs, sign-outs, user changes) go to gateway.audit_log
-- with actor console:NAME, as decisions do; the audit page and its CSV read it newest first (by id).

-- The queue page: pending reviews by deadline, other states by recency.
CREATE INDEX withdrawals_state_updated ON gateway.withdrawals (state, updated_at);
CREATE INDEX withdrawal_reviews_deadline ON gateway.withdrawal_reviews (deadline);
