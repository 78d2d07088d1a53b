import Foundation
import GatewayConsole
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayTesting
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

/// The text of the page's part that starts at `id="<id>"` and ends at the first `end` after it, or "".
func part(_ html: String, id: String, end: String) -> String {
    guard let start = html.range(of: "id=\"\(id)\"") else { return "" }
    let rest = html[start.lowerBound...]
    guard let stop = rest.range(of: end) else { return String(rest) }
    return String(rest[..<stop.lowerBound])
}

/// What a reader sees: the markup without its tags.
func visibleText(_ html: String) -> String {
    html.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
}

/// `HH:mm` in UTC, as the charts label minutes.
func utcClock(_ d: Date) -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "HH:mm"
    return f.string(from: d)
}

@Suite struct ConsolePipelineTests {
    /// The monitor views the page shows, each as a section with the view's name in its id.
    static let sections = ["queue", "chains", "reviews", "withdrawals", "payments", "callbacks", "hot_wallets", "sweeps", "reorg_alerts", "dead_jobs",
                           "dead_callbacks"]

    /// A pipeline with something in every section, and the last hour's history.
    struct Scene {
        var withdrawal: Int64
        var deadJob: Int64
        var deadCallback: Int64
        var minutes: (throughput: Date, oldest: Date, lag: Date)
    }

    static func scene(_ f: ConsoleFixture) async throws -> Scene {
        let withdrawal = try await f.pending("5")
        return try await f.db.transaction { c in
            func one(_ q: PostgresQuery) async throws -> Int64 {
                var v: Int64 = 0
                for try await x in try await c.query(q, logger: log).decode(Int64.self) { v = x }
                return v
            }
            // A hot wallet holding 1,234.5 USDT (6 decimals) by our records: a booked receipt.
            try await c.query("""
                INSERT INTO gateway.hot_receipts (chain, tx_hash, log_index, wallet_id, merchant_id, address, coin_id, from_address, amount, block_height, block_hash, status)
                SELECT 'tron', 'receipt-1', 0, w.id, w.merchant_id, w.hot_address, \(f.usdtTron.id), 'TSomeoneElse', 1234500000, 5, 'block-5', 'confirmed'
                FROM gateway.wallets w WHERE w.merchant_id = \(f.alpha) AND w.chain = 'tron'
                """, logger: log)
            // Stages: a callback job ready for 2 min 5 s, a dead one that died 1 h 5 min ago, an expired lease.
            try await c.query("INSERT INTO gateway.jobs (stage, kind, run_at) VALUES ('callback', 'deliver', now() - interval '125 seconds')", logger: log)
            let deadJob = try await one("""
                INSERT INTO gateway.jobs (stage, kind, ref, state, attempt, died_at, last_error)
                VALUES ('callback', 'deliver', \("withdrawal:\(withdrawal)"), 'dead', 3, now() - interval '65 minutes', 'merchant said 500') RETURNING id
                """)
            try await c.query("""
                INSERT INTO gateway.jobs (stage, kind, state, run_at, lease_token, lease_owner)
                VALUES ('sweep', 'plan', 'running', now() - interval '10 seconds', gen_random_uuid(), 'gone:1:2')
                """, logger: log)
            // A chain whose scanner's lease ran out and whose node failed after its last scan.
            try await c.query("""
                INSERT INTO gateway.chain_scanners (chain, scanned_height, node_tip, leader, lease_until, last_scan_at, last_error, last_error_at)
                VALUES ('tron', 100, 140, 'host-a:11:22', now() - interval '1 minute', now() - interval '65 minutes', 'node: timed out', now() - interval '2 minutes')
                """, logger: log)
            try await c.query("""
                INSERT INTO gateway.reorg_alerts (chain, fork_height, depth, confirmations, old_hash, new_hash, affected_deposits, detail)
                VALUES ('tron', 90, 25, 19, 'old-hash', 'new-hash', '{7}', '25 blocks replaced above #90')
                """, logger: log)
            // The withdrawal's "entered review" callback, given up on.
            let deadCallback = try await one("""
                UPDATE gateway.callbacks SET state = 'dead', attempts = 9, last_error = 'HTTP 503'
                WHERE trade_type = 2 AND trade_id = \(withdrawal) AND status = 0 RETURNING id
                """)
            try await c.query("DELETE FROM gateway.jobs WHERE unique_key = \("callback:\(deadCallback)")", logger: log)
            // History: 42 + 8 completions by two workers 10 minutes ago (and 999 before the hour); the oldest
            // ready job at 90 s 5 minutes ago; tron 7 blocks behind 3 minutes ago (and 555 before the hour).
            var minutes = (Date(), Date(), Date())
            for try await (a, b, d) in try await c.query("""
                SELECT date_trunc('minute', now()) - interval '10 minutes', date_trunc('minute', now()) - interval '5 minutes',
                       date_trunc('minute', now()) - interval '3 minutes'
                """, logger: log).decode((Date, Date, Date).self) { minutes = (a, b, d) }
            try await c.query("""
                INSERT INTO gateway.job_stats (stage, minute, worker, completed) VALUES
                  ('callback', \(minutes.0), 'w1', 42), ('callback', \(minutes.0), 'w2', 8),
                  ('callback', date_trunc('minute', now()) - interval '70 minutes', 'w1', 999)
                """, logger: log)
            try await c.query("""
                INSERT INTO gateway.pipeline_samples (kind, key, minute, value) VALUES
                  ('oldest_ready', 'callback', \(minutes.1), 90), ('chain_lag', 'tron', \(minutes.2), 7),
                  ('chain_lag', 'tron', date_trunc('minute', now()) - interval '90 minutes', 555)
                """, logger: log)
            return Scene(withdrawal: withdrawal, deadJob: deadJob, deadCallback: deadCallback, minutes: minutes)
        }
    }

    @Test func thePipelineReadsInWordsAgesAndCoinUnitsAndMarksWhatNeedsALook() async throws {
        try await withConsole(configure: { $0.console.usdRates = ["USDT": "1"] }) { f, client in
            try await f.user("vera", .viewer)
            let scene = try await Self.scene(f)
            var b = Browser(client)
            try await b.signIn(f, "vera")
            let page = try await b.get("/pipeline")
            #expect(page.status == 200 && page.body.contains("data-refresh=\"/pipeline/fragment\""))
            for s in Self.sections { #expect(page.body.contains("id=\"monitor-\(s)\""), "\(s)") }

            // Coin units with the coin's decimals, USD beside them; never base units.
            let hot = part(page.body, id: "monitor-hot_wallets", end: "</section>")
            #expect(hot.contains("1234.5 USDT") && hot.contains("≈ 1,234.50 USD"), "\(hot)")
            #expect(!page.body.contains("1234500000"))

            // Ages as people say them; no PostgreSQL interval text, no column names.
            let stage = row(page.body, id: "stage-callback")
            #expect(stage.contains("class=\"warn\"") && stage.contains("<td class=\"num bad\">2 min</td>"), "ready for 125 s: \(stage)")
            #expect(stage.contains("1 dead"))
            #expect(row(page.body, id: "stage-sweep").contains("1 expired lease"))
            #expect(row(page.body, id: "stage-review").contains("none ready"), "an idle stage is listed as idle")
            let chain = row(page.body, id: "chain-tron")
            #expect(chain.contains("1 h 5 min ago") && chain.contains("node: timed out") && chain.contains("(2 min ago)") && chain.contains("lease expired"),
                    "\(chain)")
            #expect(chain.contains("failing since 2 min ago") && chain.contains(">40<"), "lag in blocks: \(chain)")
            let dead = row(page.body, id: "dead-job-\(scene.deadJob)")
            #expect(dead.contains("1 h 5 min ago") && dead.contains("merchant said 500") && dead.contains("href=\"/withdrawals/\(scene.withdrawal)\""), "\(dead)")
            let deadCallback = row(page.body, id: "dead-callback-\(scene.deadCallback)")
            #expect(deadCallback.contains("withdrawal \(scene.withdrawal)") && deadCallback.contains("0 (entered review)") && deadCallback.contains("HTTP 503"))
            #expect(row(page.body, id: "review-level-1").contains("href=\"/queue?tab=pending&amp;level=1\""))
            #expect(page.body.range(of: #"\d\d:\d\d:\d\d\.\d"#, options: .regularExpression) == nil, "no interval text")
            let text = visibleText(page.body)
            for column in ["oldest_ready_age", "expired_leases", "completed_last_minute", "lag_blocks", "last_scan_age", "leader_alive", "oldest_waiting_age",
                           "hot_address", "in_flight", "receipts_waiting", "destination_role", "pending_review", "max_attempts", "trade_type"] {
                #expect(!text.contains(column), "\(column) shown")
            }
            let headers = page.body.components(separatedBy: "<th").dropFirst().map { $0.prefix { $0 != "/" } }
            #expect(!headers.isEmpty && headers.allSatisfy { !$0.contains("_") }, "headers in words: \(headers.filter { $0.contains("_") })")

            // What needs a look is listed first, each linking to its section.
            let summary = part(page.body, id: "pipeline-summary", end: "</section>")
            #expect(summary.contains("Needs a look") && summary.contains("callback: 1 dead") && summary.contains("tron: no scanner holds the lease")
                    && summary.contains("deep reorg on tron at block 90") && summary.contains("<a href=\"#monitor-dead_jobs\">callback: 1 dead</a>")
                    && summary.contains("<a href=\"#monitor-dead_callbacks\">Alpha Exchange (#\(f.alpha)): 1 dead callback</a>"), "\(summary)")

            // The charts: the points inserted, in their minutes; nothing from before the hour.
            let throughput = part(page.body, id: "chart-throughput-callback", end: "</figure>")
            #expect(throughput.contains("<svg") && throughput.contains("role=\"img\"") && throughput.contains("jobs completed per minute, last hour"))
            #expect(throughput.contains("data-minute=\"\(utcClock(scene.minutes.throughput))\" data-value=\"50\""), "two workers' 42 + 8: \(throughput)")
            #expect(throughput.components(separatedBy: "<circle").count == 2, "one minute with completions")
            #expect(!page.body.contains("data-value=\"999\"") && !page.body.contains("data-value=\"555\""), "older than an hour: not drawn")
            let oldest = part(page.body, id: "chart-oldest-callback", end: "</figure>")
            #expect(oldest.contains("data-minute=\"\(utcClock(scene.minutes.oldest))\" data-value=\"90\"") && oldest.contains("UTC: 90 s</title>"), "\(oldest)")
            #expect(oldest.contains("59 of 60 minutes without a sample"))
            let lag = part(page.body, id: "chart-lag-tron", end: "</figure>")
            #expect(lag.contains("data-minute=\"\(utcClock(scene.minutes.lag))\" data-value=\"7\""), "\(lag)")
            #expect(part(page.body, id: "chart-oldest-review", end: "</figure>").contains("no samples in the last hour"))
            #expect(!page.body.contains("style="), "the CSP allows no inline style")

            // A viewer gets no buttons; the fragment is the same content without the layout.
            #expect(!page.body.contains("/retry\"") && !page.body.contains("/resend\""))
            let fragment = try await b.get("/pipeline/fragment")
            #expect(fragment.status == 200 && !fragment.body.contains("<html") && fragment.body.contains("id=\"monitor-queue\"")
                    && fragment.body.contains("id=\"chart-lag-tron\""))
        }
    }

    @Test func adminsStillRetryDeadJobsAndResendDeadCallbacksFromThePipeline() async throws {
        try await withConsole { f, client in
            try await f.user("root", .admin)
            let scene = try await Self.scene(f)
            var ad = Browser(client)
            try await ad.signIn(f, "root")
            let page = try await ad.get("/pipeline").body
            #expect(row(page, id: "dead-job-\(scene.deadJob)").contains("action=\"/jobs/\(scene.deadJob)/retry\""))
            #expect(row(page, id: "dead-callback-\(scene.deadCallback)").contains("action=\"/callbacks/\(scene.deadCallback)/resend\""))

            #expect(try await ad.post("/jobs/\(scene.deadJob)/retry", [("back", "/pipeline")]).location == "/pipeline?done=retried")
            #expect(try await f.count("SELECT count(*) FROM gateway.jobs WHERE id = \(scene.deadJob) AND state = 'ready'") == 1)
            #expect(try await f.count("SELECT count(*) FROM gateway.audit_log WHERE action = 'job.retry' AND actor = 'console:root' AND target = \("job:\(scene.deadJob)")") == 1)

            #expect(try await ad.post("/callbacks/\(scene.deadCallback)/resend", [("back", "/pipeline")]).location == "/pipeline?done=resent")
            #expect(try await f.count("SELECT count(*) FROM gateway.callbacks WHERE id = \(scene.deadCallback) AND state = 'pending'") == 1)
            #expect(try await f.count("""
                SELECT count(*) FROM gateway.audit_log WHERE action = 'callback.resend' AND actor = 'console:root' AND target = \("callback:\(scene.deadCallback)")
                """) == 1)
            let after = try await ad.get("/pipeline?done=resent").body
            #expect(after.contains("Callback queued again.") && !after.contains("id=\"dead-callback-\(scene.deadCallback)\"")
                    && !after.contains("id=\"dead-job-\(scene.deadJob)\""))
        }
    }
}
