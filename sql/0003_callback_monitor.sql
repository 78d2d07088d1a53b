-- Callback delivery as the operator watches it (DESIGN.md §8): backlog, oldest pending and dead
-- callbacks per merchant.
CREATE VIEW monitor.callbacks AS
SELECT m.id AS merchant_id,
       m.name AS merchant,
       count(c.id) FILTER (WHERE c.state = 'pending')                 AS pending,
       now() - min(c.created_at) FILTER (WHERE c.state = 'pending')   AS oldest_pending_age,
       count(c.id) FILTER (WHERE c.state = 'dead')                    AS dead,
       max(c.delivered_at)                                            AS last_delivered_at
FROM gateway.merchants m
LEFT JOIN gateway.callbacks c ON c.merchant_id = m.id AND (c.state <> 'delivered' OR c.delivered_at > now() - interval '1 day')
GROUP BY m.id, m.name;

COMMENT ON VIEW monitor.callbacks IS 'per merchant: callbacks waiting, age of the oldest, dead ones (re-send with gatewayctl callbacks resend)';

CREATE VIEW monitor.dead_callbacks AS
SELECT c.id, c.merchant_id, c.trade_type, c.trade_id, c.status, c.url, c.attempts, c.last_error, c.created_at
FROM gateway.callbacks c WHERE c.state = 'dead';
