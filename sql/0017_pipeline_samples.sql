-- History for the console's pipeline charts (issue 17): the last hour per stage (jobs completed per
-- minute, age of the oldest ready job) and per chain (scanner lag in blocks).
--
-- Throughput already has its history (gateway.job_stats). The other two are states, not counts: they
-- exist only at the moment someone looks. So the processes that run anyway write one value per minute:
-- each queue worker the age of its stage's oldest ready job (once a minute, off the claim path), the
-- chain scanner holding a chain's lease its lag. Several copies of a worker write the same minute:
-- the row keeps the greatest value (`ON CONFLICT … DO UPDATE SET value = greatest(…)`), so they agree
-- whatever their order, and one more copy changes nothing but the value's chance to be seen.
-- A minute with no row had nobody to write it (no worker of the stage, no scanner holding the lease):
-- the chart leaves a gap there rather than guess.
CREATE TABLE gateway.pipeline_samples (
    kind    text             NOT NULL CHECK (kind IN ('oldest_ready', 'chain_lag')),
    key     text             NOT NULL,   -- the stage (oldest_ready) or the chain (chain_lag)
    minute  timestamptz      NOT NULL,
    value   double precision NOT NULL,   -- seconds (oldest_ready), blocks (chain_lag): the most seen in the minute
    PRIMARY KEY (kind, key, minute)
);

COMMENT ON TABLE gateway.pipeline_samples IS 'per minute: oldest ready job age per stage (seconds) and scanner lag per chain (blocks), the greatest value any process saw; kept 2 hours (queue workers prune it with gateway.job_stats)';

-- The pipeline page reads the last hour of gateway.job_stats every 5 seconds (monitor.queue and the
-- throughput chart), and workers prune it by minute; with a week kept (queue.stats_retention) and one
-- row per worker, stage and minute, both were a scan of the whole table.
CREATE INDEX job_stats_minute ON gateway.job_stats (minute);
