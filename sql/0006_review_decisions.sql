-- Every decision on a withdrawal, with what made it: a review rule (auto_approve_up_to, deny,
-- merchant_setting, balance, …) or people (rule 'people', actor the reviewer).
CREATE TABLE gateway.withdrawal_decisions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    withdrawal_id bigint  NOT NULL REFERENCES gateway.withdrawals (id),
    decision      text    NOT NULL CHECK (decision IN ('approve', 'review', 'reject')),
    rule          text    NOT NULL,
    actor         text    NOT NULL,
    detail        text    NOT NULL DEFAULT '',
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX withdrawal_decisions_withdrawal ON gateway.withdrawal_decisions (withdrawal_id, id);
