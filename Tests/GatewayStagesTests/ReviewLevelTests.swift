import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import GatewayTesting
import Logging
import PostgresNIO
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The review rules beyond the amount limit (daily limits, velocity, first payout, allow list, four
/// eyes, proxypay), review levels with SLAs and their escalation jobs, reviewers with levels.
@Suite(.serialized) struct ReviewLevelTests {
    static let a = "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp"
    static let b = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"

    struct Fixture {
        let h: DepositHarness
        var db: Database { h.db }
        var merchant: Int64 { h.merchant }

        static func make(_ db: Database, node: DevChain, url: String, credit: BigInt = 1_000_000_000) async throws -> Fixture {
            let h = try await DepositHarness.make(db, node: node, url: url)
            let usdt = try #require(h.coins["tron.USDT"]).id
            try await db.transaction { c in
                try await Ledger.post([LedgerTransfer(reason: "deposit", ref: "test", legs: [
                    LedgerLeg(merchantID: nil, coinID: usdt, kind: LedgerAccountKind.chain, amount: -credit),
                    LedgerLeg(merchantID: h.merchant, coinID: usdt, kind: LedgerAccountKind.available, amount: credit),
                ])], on: c, logger: log)
            }
            return Fixture(h: h)
        }

        func submit(_ business: String, _ amount: String, to: String, proxypay: Bool = false) async throws -> Int64 {
            let usdt = try #require(h.coins["tron.USDT"])
            return try await db.transaction { c in
                try await Withdrawals.submit(WithdrawalRequest(merchantID: h.merchant, mainCoinType: "195", coinType: usdt.coinType, address: to,
                                                               amount: amount, callURL: h.callbacks.receiver.baseURL + "/w", businessID: business,
                                                               proxypay: proxypay),
                                             directory: .standard, callbackPolicy: CallbackURLPolicy(allowLoopback: true), on: c, logger: log)
            }
        }

        func decisions(_ id: Int64) async throws -> String {
            var out: [String] = []
            for try await (d, r) in try await db.query("SELECT decision, rule FROM gateway.withdrawal_decisions WHERE withdrawal_id = \(id) ORDER BY id")
                .decode((String, String).self) { out.append("\(d):\(r)") }
            return out.joined(separator: " ")
        }

        func state(_ id: Int64) async throws -> String {
            var s = ""
            for try await v in try await db.query("SELECT state FROM gateway.withdrawals WHERE id = \(id)").decode(String.self) { s = v }
            return s
        }

        func autoPayment(_ on: Bool) async throws {
            _ = try await db.transaction { c in try await Merchants.setAutoPayment(h.merchant, on, actor: "test", on: c, logger: log) }
        }

        func reviewer(_ name: String, level: Int) async throws -> Reviewer {
            _ = try await db.transaction { c in try await AdminTokens.create(name: name, reviewLevel: level, actor: "test", on: c, logger: log) }
            return Reviewer(name: name, level: level)
        }

        func decide(_ id: Int64, approve: Bool, as r: Reviewer, reason: String? = nil, version: Int? = nil) async throws -> ReviewOutcome {
            try await db.transaction { c in
                try await Reviews.decide(id, approve: approve, reason: reason, expectedVersion: version, reviewer: r, channel: "test", on: c, logger: log)
            }
        }

        /// Runs the review worker (and, with `callbacks`, the callback worker delivering notifications) until `until` holds.
        func run(_ rules: ReviewRulesConfig, webhook: Bool = false, timeout: Duration = .seconds(20),
                 until: @escaping @Sendable () async throws -> Bool) async throws {
            var config = h.callbacks.config
            config.review = rules
            if webhook { config.notifications.webhookURL = h.callbacks.receiver.baseURL + "/ops" }
            config.stages[.review] = WorkerConfig(concurrency: 4, batchSize: 4, pollInterval: .milliseconds(50), lease: .seconds(10), maxAttempts: 5,
                                                  backoff: BackoffPolicy(base: .milliseconds(50), factor: 2, cap: .milliseconds(200)),
                                                  shutdownGrace: .seconds(2))
            let env = StageRunner.Environment(config: config, database: db, logger: log)
            let review = QueueWorker(database: db, settings: .init(stage: "review", config: config.worker(.review), handlers: try ReviewStage.handlers(env)),
                                     logger: log)
            // The callback stage owns an HTTP client that its services shut down: made only when they run.
            let parts = webhook ? try CallbackStage.parts(env) : nil
            try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await review.run() }
                    if let parts {
                        let callback = QueueWorker(database: db, settings: .init(stage: "callback", config: config.worker(.callback),
                                                                                 handlers: parts.handlers), logger: log)
                        group.addTask { try await callback.run() }
                        for s in parts.services { group.addTask { try await s.run() } }
                    }
                    let ok = try await eventually(timeout: timeout, until)
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                    #expect(ok, "condition not reached in time")
                }
            }
        }

        func allReviewed() async throws -> Bool {
            try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'received'") == 0
        }
    }

    @Test func limitsVelocityFirstPayoutAllowListAndFourEyesSendToPeopleAndProxypayIsPaidOnlyWithAutomaticPayment() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let f = try await Fixture.make(db, node: node, url: url)
                let c = f.h.tron[1]
                try await f.autoPayment(true)
                let alice = try await f.reviewer("alice", level: 1)
                func rules(_ set: ReviewRuleSet = ReviewRuleSet(), allow: [String] = []) -> ReviewRulesConfig {
                    ReviewRulesConfig(autoApproveUpTo: ["USDT": "100"], allow: allow, rules: set)
                }

                // First payout to a destination: people; once approved, the destination is known.
                let first = try await f.submit("first", "1", to: Self.a)
                try await f.run(rules(ReviewRuleSet(newDestinationToPeople: true))) { try await f.allReviewed() }
                #expect(try await f.decisions(first) == "review:new_destination")
                _ = try await f.decide(first, approve: true, as: alice)
                let known = try await f.submit("known", "5", to: Self.a)
                let proxy = try await f.submit("proxy", "1", to: Self.a, proxypay: true)
                try await f.run(rules(ReviewRuleSet(newDestinationToPeople: true))) { try await f.allReviewed() }
                #expect(try await f.decisions(known) == "approve:auto_approve_up_to")
                #expect(try await f.decisions(proxy) == "approve:auto_approve_up_to", "proxypay with automatic payment on: paid without people")
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(proxy) AND status = 0") == 0)
                #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE stage = 'autopay' AND ref = \("withdrawal:\(proxy)")") == 1)

                // Daily limit per merchant: 1 + 5 + 1 approved today, 4.5 more is over 10.
                let overMerchant = try await f.submit("over-merchant", "4.5", to: Self.b)
                try await f.run(rules(ReviewRuleSet(dailyLimitPerMerchant: ["USDT": "10"]))) { try await f.allReviewed() }
                #expect(try await f.decisions(overMerchant) == "review:daily_limit_per_merchant")
                #expect(try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE id = \(overMerchant) AND state_reason LIKE '%11.5 USDT%'") == 1)

                // Daily limit per destination: 7 to A today, 1.5 more is over 8; 1.5 to B is fine.
                let overAddress = try await f.submit("over-address", "1.5", to: Self.a)
                let underAddress = try await f.submit("under-address", "1.5", to: Self.b)
                try await f.run(rules(ReviewRuleSet(dailyLimitPerAddress: ["USDT": "8"]))) { try await f.allReviewed() }
                #expect(try await f.decisions(overAddress) == "review:daily_limit_per_address")
                #expect(try await f.decisions(underAddress) == "approve:auto_approve_up_to")

                // Velocity: A has had 5 withdrawals this hour (none rejected), a sixth is more than 3; C's first is fine.
                let fast = try await f.submit("fast", "1", to: Self.a)
                let slow = try await f.submit("slow", "1", to: c)
                try await f.run(rules(ReviewRuleSet(maxPerAddressPerHour: 3))) { try await f.allReviewed() }
                #expect(try await f.decisions(fast) == "review:velocity")
                #expect(try await f.decisions(slow) == "approve:auto_approve_up_to")

                // Allow list: only B is paid without people.
                let notAllowed = try await f.submit("not-allowed", "1", to: c)
                let allowed = try await f.submit("allowed", "1", to: Self.b)
                try await f.run(rules(allow: [Self.b])) { try await f.allReviewed() }
                #expect(try await f.decisions(notAllowed) == "review:allow_list")
                #expect(try await f.decisions(allowed) == "approve:auto_approve_up_to")

                // Four eyes: above 50, people decide, two of them — even under the automatic limit.
                let big = try await f.submit("big", "60", to: Self.b)
                try await f.run(rules(ReviewRuleSet(fourEyesAbove: ["USDT": "50"]))) { try await f.allReviewed() }
                #expect(try await f.decisions(big) == "review:four_eyes")
                #expect(try await count(db, "SELECT approvals_needed::int8 FROM gateway.withdrawal_reviews WHERE withdrawal_id = \(big)") == 2)

                // Automatic payment off: /mch/withdraw and /mch/withdraw/proxypay alike go to people.
                try await f.autoPayment(false)
                let manual = try await f.submit("manual", "1", to: Self.b)
                let manualProxy = try await f.submit("manual-proxy", "1", to: Self.b, proxypay: true)
                try await f.run(rules()) { try await f.allReviewed() }
                #expect(try await f.decisions(manual) == "review:merchant_setting")
                #expect(try await f.decisions(manualProxy) == "review:merchant_setting")
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(manualProxy) AND status = 0") == 1)
                #expect(try await count(db, "SELECT count(*) FROM gateway.withdrawal_reviews WHERE level = 1") == 8, "every review starts at level 1")
                #expect(try await f.h.ledgerProblems() == [])
            }
        }
    }

    @Test func fourEyesNeedTwoDifferentReviewersWithinTheirLevels() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let f = try await Fixture.make(db, node: node, url: url, credit: 100_000_000)
                try await f.autoPayment(true)
                let alice = try await f.reviewer("alice", level: 1)
                let bob = try await f.reviewer("bob", level: 2)
                let carol = try await f.reviewer("carol", level: 0)
                let big = try await f.submit("big", "80", to: Self.a)
                let small = try await f.submit("small", "2", to: Self.a)
                let rules = ReviewRulesConfig(autoApproveUpTo: ["USDT": "1"], rules: ReviewRuleSet(fourEyesAbove: ["USDT": "50"]))
                try await f.run(rules) { try await f.allReviewed() }
                #expect(try await f.decisions(big) == "review:four_eyes")
                #expect(try await f.decisions(small) == "review:auto_approve_up_to")

                await #expect(throws: ReviewNotAllowed.self, "level 0 decides nothing") { _ = try await f.decide(big, approve: true, as: carol) }
                let first = try await f.decide(big, approve: true, as: alice, reason: "checked the customer")
                guard case .firstApproval(let w) = first else { Issue.record("\(first)"); return }
                #expect(w.state == "pending_review" && w.version == 3)
                #expect(try await f.state(big) == "pending_review")
                // The first approver cannot be the second: a clear error, nothing changed.
                let before = try await count(db, "SELECT count(*) FROM gateway.withdrawal_decisions") + (try await count(db, "SELECT count(*) FROM gateway.audit_log"))
                do {
                    _ = try await f.decide(big, approve: true, as: alice)
                    Issue.record("the same reviewer approved twice")
                } catch let e as ServiceError {
                    #expect(e.description.contains("alice already gave the first approval") && e.description.contains("different reviewer"), "\(e)")
                }
                #expect(try await count(db, "SELECT count(*) FROM gateway.withdrawal_decisions") + (try await count(db, "SELECT count(*) FROM gateway.audit_log")) == before)
                #expect(try await count(db, "SELECT version::int8 FROM gateway.withdrawals WHERE id = \(big)") == 3)
                // A stale version is refused for the second approval too.
                await #expect(throws: ServiceError.self) { _ = try await f.decide(big, approve: true, as: bob, version: 2) }
                let second = try await f.decide(big, approve: true, as: bob, version: 3)
                guard case .decided(let approved) = second else { Issue.record("\(second)"); return }
                #expect(approved.state == "approved")
                #expect(try await f.decisions(big) == "review:four_eyes first_approval:four_eyes approve:four_eyes")
                #expect(try await count(db, "SELECT count(*) FROM gateway.audit_log WHERE target = \("withdrawal:\(big)") AND actor IN ('test:alice', 'test:bob')") == 2)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(big) AND status = 1") == 1)
                #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE stage = 'autopay' AND ref = \("withdrawal:\(big)")") == 1)

                // One approval is enough below the threshold; a rejection needs only one reviewer.
                _ = try await db.transaction { c in try await c.query("UPDATE gateway.withdrawal_reviews SET level = 2 WHERE withdrawal_id = \(small)", logger: log) }
                await #expect(throws: ReviewNotAllowed.self, "a level-2 review is above alice") { _ = try await f.decide(small, approve: false, as: alice, reason: "no") }
                guard case .decided(let rejected) = try await f.decide(small, approve: false, as: bob, reason: "unknown destination") else {
                    Issue.record("not decided"); return
                }
                #expect(rejected.state == "rejected")
                #expect(try await f.h.ledgerProblems() == [])
            }
        }
    }

    @Test func aRejectionReleasesWhatTheWithdrawalStillHolds() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let f = try await Fixture.make(db, node: node, url: url, credit: 10_000_000)
                let bob = try await f.reviewer("bob", level: 1)
                let id = try await f.submit("back", "4", to: Self.a)
                try await f.run(ReviewRulesConfig()) { try await f.allReviewed() }
                _ = try await f.decide(id, approve: true, as: bob)
                #expect(try await f.h.available("tron.USDT") == 6_000_000)
                // Autopay could not pay: back to review, still holding its reservation (as the payment path does it).
                _ = try await db.transaction { c in
                    try await c.query("UPDATE gateway.withdrawals SET state = 'pending_review', version = version + 1 WHERE id = \(id)", logger: log)
                }
                _ = try await f.decide(id, approve: false, as: bob, reason: "hot wallet short for days")
                #expect(try await f.h.available("tron.USDT") == 10_000_000, "the reservation is given back")
                #expect(try await count(db, "SELECT balance::int8 FROM gateway.ledger_accounts WHERE kind = 'reserved'") == 0)
                #expect(try await f.h.ledgerProblems() == [])
            }
        }
    }

    @Test func anUndecidedReviewEscalatesOncePerLevelThenRemindsAndADecidedOneNever() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let f = try await Fixture.make(db, node: node, url: url)
                let bob = try await f.reviewer("bob", level: 1)
                let waiting = try await f.submit("waiting", "12.5", to: Self.a)
                let decided = try await f.submit("decided", "3", to: Self.a)
                let rules = ReviewRulesConfig(levels: [ReviewLevel(name: "operations", sla: .seconds(1)), ReviewLevel(name: "finance", sla: .seconds(2))])
                #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE kind = 'escalate'") == 0)
                try await f.run(rules, webhook: true, timeout: .seconds(30)) {
                    // Decided before its deadline: its escalation job finds nothing to do.
                    if try await f.state(decided) == "pending_review" { _ = try await f.decide(decided, approve: false, as: bob, reason: "no thanks") }
                    return try await count(db, "SELECT count(*) FROM gateway.withdrawal_decisions WHERE withdrawal_id = \(waiting) AND rule = 'sla_reminder'") >= 1
                        && f.h.callbacks.receiver.received.filter { $0.path == "/ops" }.count >= 4  // 2 entered review, escalation, reminder
                }
                let history = try await f.decisions(waiting)
                #expect(history.hasPrefix("review:merchant_setting escalate:escalation escalate:sla_reminder"), "\(history)")
                #expect(try await count(db, "SELECT count(*) FROM gateway.withdrawal_decisions WHERE withdrawal_id = \(waiting) AND rule = 'escalation'") == 1,
                        "one escalation per level: 1 → 2, then reminders")
                #expect(try await f.decisions(decided) == "review:merchant_setting reject:people", "a decided review does not escalate")
                #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE kind = 'escalate' AND ref = \("withdrawal:\(decided)")") == 0)
                #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE kind = 'escalate' AND ref = \("withdrawal:\(waiting)")") == 1,
                        "the next reminder is scheduled at the new deadline")
                #expect(try await count(db, """
                    SELECT count(*) FROM gateway.withdrawal_reviews WHERE withdrawal_id = \(waiting) AND level = 2 AND level_name = 'finance' AND reminders >= 1
                    """) == 1)
                #expect(try await count(db, "SELECT count(*) FROM gateway.audit_log WHERE action = 'withdrawal.escalate' AND target = \("withdrawal:\(waiting)")") == 1)
                let texts = f.h.callbacks.receiver.received.filter { $0.path == "/ops" }.compactMap { r -> String? in
                    if case .string(let t)? = (try? GatewayCore.JSONValue.parse(Array(r.rawBody.utf8)))?["text"] { return t } else { return nil }
                }
                let escalation = try #require(texts.first { $0.contains("escalated") }, "\(texts)")
                for part in ["Withdrawal \(waiting)", "merchant \(f.merchant)", "12.5 USDT", "level 1 (operations)", "escalated to level 2 (finance)"] {
                    #expect(escalation.contains(part), "\(part) in \(escalation)")
                }
                #expect(texts.contains { $0.contains("still undecided at review level 2 (finance), the top level") }, "\(texts)")
                #expect(texts.filter { $0.contains("Withdrawal \(decided) ") }.allSatisfy { $0.contains("waits for review") },
                        "nothing about the decided one but its entering review")
                let entered = try #require(texts.first { $0.hasPrefix("Withdrawal \(waiting) ") && $0.contains("waits for review") }, "\(texts)")
                for part in ["merchant \(f.merchant): 12.5 USDT on tron to \(Self.a)", "level 1 (operations), SLA 1s", "(rule merchant_setting)",
                             "gatewayctl review show \(waiting)"] {
                    #expect(entered.contains(part), "\(part) in \(entered)")
                }

                // A level-1 reviewer may no longer decide it; the monitor shows it overdue or waiting at level 2.
                await #expect(throws: ReviewNotAllowed.self) { _ = try await f.decide(waiting, approve: false, as: bob, reason: "late") }
                #expect(try await count(db, "SELECT waiting FROM monitor.reviews WHERE level = 2 AND level_name = 'finance'") == 1)
                #expect(try await count(db, "SELECT count(*) FROM monitor.reviews WHERE level = 1") == 0)
                #expect(try await count(db, "SELECT count(*) FROM monitor.reviews WHERE level = 2 AND sla = interval '2 seconds' AND oldest_waiting_age > interval '3 seconds'") == 1)
            }
        }
    }
}
