-- The durable job queue every stage claims its work from (DESIGN.md §2).
-- A job is claimable when state is 'ready' or 'running' and run_at has passed:
-- for a ready job run_at is when it is due, for a running job it is when its lease expires,
-- so an expired lease needs no sweeper: the job is simply claimable again.

CREATE SCHEMA IF NOT EXISTS gateway;

CREATE TABLE gateway.jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stage         text        NOT NULL,
    kind          text        NOT NULL,
    ref           text,
    payload       jsonb       NOT NULL DEFAULT '{}',
    priority      smallint    NOT NULL DEFAULT 0,
    state         text        NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'running', 'dead')),
    run_at        timestamptz NOT NULL DEFAULT now(),
    attempt       integer     NOT NULL DEFAULT 0,
    max_attempts  integer     CHECK (max_attempts > 0),  -- NULL: the stage's configured max_attempts
    unique_key    text,
    lease_token   uuid,
    lease_owner   text,
    claimed_at    timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    died_at       timestamptz
);

COMMENT ON COLUMN gateway.jobs.run_at IS 'ready: when the job is due; running: when its lease expires';
COMMENT ON COLUMN gateway.jobs.unique_key IS 'at most one unfinished (ready, running or dead) job per stage and key';

-- The claim index: only live jobs, in claim order.
CREATE INDEX jobs_claim ON gateway.jobs (stage, priority, run_at) WHERE state <> 'dead';
CREATE UNIQUE INDEX jobs_unique_key ON gateway.jobs (stage, unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_dead ON gateway.jobs (stage, died_at) WHERE state = 'dead';

-- Finished jobs leave the hot table; what remains of them is a count per stage, worker and minute
-- (one row per worker keeps concurrent completions from queueing on one row lock).
CREATE TABLE gateway.job_stats (
    stage     text        NOT NULL,
    minute    timestamptz NOT NULL,
    worker    text        NOT NULL,
    completed bigint      NOT NULL DEFAULT 0,
    retried   bigint      NOT NULL DEFAULT 0,
    dead      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (stage, minute, worker)
);

-- Per-stage monitor views (DESIGN.md §8).
CREATE SCHEMA IF NOT EXISTS monitor;

CREATE VIEW monitor.queue AS
WITH live AS (
    SELECT stage,
           count(*) FILTER (WHERE state = 'ready' AND run_at <= now())   AS ready,
           count(*) FILTER (WHERE state = 'ready' AND run_at > now())    AS scheduled,
           count(*) FILTER (WHERE state = 'running' AND run_at > now())  AS running,
           count(*) FILTER (WHERE state = 'running' AND run_at <= now()) AS expired_leases,
           count(*) FILTER (WHERE state = 'dead')                        AS dead,
           min(run_at) FILTER (WHERE state = 'ready' AND run_at <= now()) AS oldest_ready_at
    FROM gateway.jobs
    GROUP BY stage
), done AS (
    SELECT stage,
           sum(completed) FILTER (WHERE minute >= date_trunc('minute', now()) - interval '1 minute') AS completed_last_minute,
           sum(completed) AS completed_last_hour,
           sum(retried) AS retried_last_hour,
           sum(dead) AS died_last_hour
    FROM gateway.job_stats
    WHERE minute >= date_trunc('minute', now()) - interval '1 hour'
    GROUP BY stage
)
SELECT coalesce(live.stage, done.stage)           AS stage,
       coalesce(live.ready, 0)                     AS ready,
       coalesce(live.scheduled, 0)                 AS scheduled,
       coalesce(live.running, 0)                   AS running,
       coalesce(live.expired_leases, 0)            AS expired_leases,
       coalesce(live.dead, 0)                      AS dead,
       now() - live.oldest_ready_at                AS oldest_ready_age,
       coalesce(done.completed_last_minute, 0)     AS completed_last_minute,
       coalesce(done.completed_last_hour, 0)       AS completed_last_hour,
       coalesce(done.retried_last_hour, 0)         AS retried_last_hour,
       coalesce(done.died_last_hour, 0)            AS died_last_hour
FROM live FULL JOIN done ON live.stage = done.stage;

COMMENT ON VIEW monitor.queue IS 'per stage: ready, scheduled, running, expired leases, dead, age of the oldest ready job, throughput';

CREATE VIEW monitor.dead_jobs AS
SELECT id, stage, kind, ref, attempt, max_attempts, died_at, last_error
FROM gateway.jobs WHERE state = 'dead';
