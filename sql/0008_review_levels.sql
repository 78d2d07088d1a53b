-- Manual review in levels, each with an SLA (DESIGN.md §4 "SLA passed ─► escalated"), reviewers
-- who may decide up to a level, and four-eyes approvals. (0007 is the payments migration.)

-- One row per withdrawal that entered manual review: the level it waits at and until when. A review
-- is open while its withdrawal is pending_review; escalation jobs (review stage, kind 'escalate',
-- run_at = deadline) move it up a level.
CREATE TABLE gateway.withdrawal_reviews (
    withdrawal_id     bigint      PRIMARY KEY REFERENCES gateway.withdrawals (id),
    level             integer     NOT NULL CHECK (level >= 1),
    level_name        text        NOT NULL,
    -- The SLA of the current level (as configured when the review reached it) and its deadline.
    sla               interval    NOT NULL,
    deadline          timestamptz NOT NULL,
    entered_at        timestamptz NOT NULL DEFAULT now(),
    level_since       timestamptz NOT NULL DEFAULT now(),
    -- 2 when the amount is above review.four_eyes_above: two distinct reviewers must approve.
    approvals_needed  smallint    NOT NULL DEFAULT 1 CHECK (approvals_needed IN (1, 2)),
    -- The reviewer (name, without the cli:/admin: channel) whose first approval is recorded.
    first_approver    text,
    first_approved_at timestamptz,
    -- Reminders sent at the top level after its SLA passed.
    reminders         integer     NOT NULL DEFAULT 0
);
CREATE INDEX withdrawal_reviews_level ON gateway.withdrawal_reviews (level, deadline);

-- Decisions gain the first of two approvals and escalations (rule 'escalation' or 'sla_reminder').
ALTER TABLE gateway.withdrawal_decisions DROP CONSTRAINT withdrawal_decisions_decision_check;
ALTER TABLE gateway.withdrawal_decisions
    ADD CONSTRAINT withdrawal_decisions_decision_check CHECK (decision IN ('approve', 'review', 'reject', 'first_approval', 'escalate'));

-- The highest review level a token's reviewer may decide (0: none). Existing tokens keep deciding level 1.
ALTER TABLE gateway.admin_tokens ADD COLUMN review_level integer NOT NULL DEFAULT 1 CHECK (review_level >= 0);

-- The rules' look-backs (daily limits, velocity, first payout to a destination) go by destination
-- and time. lower(): EVM addresses compare without case (the exact match is checked beside it).
CREATE INDEX withdrawals_destination ON gateway.withdrawals (lower(address), created_at);

-- Reviews waiting per level, with their age against the level's SLA (DESIGN.md §8). Withdrawals
-- that entered review before this migration have no level row: they count as level 1 without an SLA.
DROP VIEW monitor.reviews;
CREATE VIEW monitor.reviews AS
SELECT coalesce(r.level, 1)                                    AS level,
       coalesce(r.level_name, 'level 1')                       AS level_name,
       max(r.sla)                                              AS sla,
       count(*)                                                AS waiting,
       count(DISTINCT w.merchant_id)                           AS merchants,
       count(*) FILTER (WHERE r.deadline < now())              AS overdue,
       count(*) FILTER (WHERE r.approvals_needed = 2)          AS four_eyes,
       count(*) FILTER (WHERE r.first_approver IS NOT NULL)    AS awaiting_second_approval,
       now() - min(coalesce(r.level_since, w.updated_at))      AS oldest_at_level_age,
       now() - min(coalesce(r.entered_at, w.updated_at))       AS oldest_waiting_age,
       max(now() - r.deadline) FILTER (WHERE r.deadline < now()) AS most_overdue_by
FROM gateway.withdrawals w LEFT JOIN gateway.withdrawal_reviews r ON r.withdrawal_id = w.id
WHERE w.state = 'pending_review'
GROUP BY 1, 2;

COMMENT ON VIEW monitor.reviews IS 'withdrawals waiting for people per review level: how many, how many past the level''s SLA, the oldest (gatewayctl status, review list)';

-- A rejection gives back what a withdrawal still holds (it may come back to review after approval);
-- that is found by the withdrawal's ledger ref.
CREATE INDEX ledger_entries_ref ON gateway.ledger_entries (ref);
-- Daily limits per merchant sum its withdrawals of a coin by time.
CREATE INDEX withdrawals_merchant_coin_time ON gateway.withdrawals (merchant_id, coin_id, created_at);
