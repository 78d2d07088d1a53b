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

/// The review stage and the decisions on its withdrawals: balances reserved from real deposits,
/// overdraw refused, callbacks 0, 1 and 2 delivered in order to a real receiver.
@Suite(.serialized) struct ReviewTests {
    func runReviewWorker(_ db: Database, rules: ReviewRulesConfig = ReviewRulesConfig(), enteredReview: Bool = true,
                         until: @escaping @Sendable () async throws -> Bool) async throws {
        var config = GatewayConfig()
        config.review = rules
        config.notifications.enteredReview = enteredReview
        config.stages[.review] = WorkerConfig(concurrency: 4, batchSize: 4, pollInterval: .milliseconds(50), lease: .seconds(10), maxAttempts: 5,
                                              backoff: BackoffPolicy(base: .milliseconds(50), factor: 2, cap: .milliseconds(200)), shutdownGrace: .seconds(2))
        let handlers = try ReviewStage.handlers(.init(config: config, database: db, logger: log))
        let worker = QueueWorker(database: db, settings: .init(stage: "review", config: config.worker(.review), handlers: handlers), logger: log)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                let ok = try await eventually(timeout: .seconds(20), until)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                #expect(ok, "condition not reached in time")
            }
        }
    }

    @Test func withdrawalsWaitForPeopleAndApprovalReservesTheDepositedBalance() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                // 10 USDT deposited and credited (no confirmations needed here).
                _ = try h.sendTronUSDT(h.tron[0], 10_000_000)
                try await h.catchUp(h.scanner(confirmations: 0))
                #expect(try await h.available("tron.USDT") == 10_000_000)

                let usdt = try #require(h.coins["tron.USDT"])
                let callURL = h.callbacks.receiver.baseURL + "/withdrawals"
                var ids: [Int64] = []
                for (business, amount) in [("w-1", "3"), ("w-2", "2.5"), ("w-3", "50")] {
                    ids.append(try await db.transaction { c in
                        try await Withdrawals.submit(WithdrawalRequest(merchantID: h.merchant, mainCoinType: "195", coinType: usdt.coinType,
                                                                       address: "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp", amount: amount, callURL: callURL,
                                                                       businessID: business),
                                                     directory: .standard, callbackPolicy: CallbackURLPolicy(allowLoopback: true), on: c, logger: log)
                    })
                }
                try await runReviewWorker(db) { try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'pending_review'") == 3 }
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND status = 0") == 3, "callback 0 on entering review")
                #expect(try await count(db, """
                    SELECT count(*) FROM gateway.operator_notifications n JOIN gateway.jobs j ON j.id = n.job_id AND j.kind = 'notify'
                    WHERE n.ref = ANY(\(ids.map { "withdrawal:\($0)" })) AND n.text LIKE '% waits for review at level 1 %'
                    """) == 3, "operators hear of each withdrawal entering review")

                // 50 USDT would overdraw: refused, nothing changes.
                await #expect(throws: ServiceError.self) {
                    try await db.transaction { c in
                        _ = try await Withdrawals.decide(ids[2], approve: true, reason: nil, expectedVersion: nil, actor: "test:alice", on: c, logger: log)
                    }
                }
                #expect(try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'pending_review'") == 3)
                #expect(try await h.available("tron.USDT") == 10_000_000)

                _ = try await db.transaction { c in
                    try await Withdrawals.decide(ids[0], approve: true, reason: nil, expectedVersion: 2, actor: "test:alice", on: c, logger: log)
                }
                _ = try await db.transaction { c in
                    try await Withdrawals.decide(ids[1], approve: false, reason: "destination not allowed", expectedVersion: nil, actor: "test:bob",
                                                 on: c, logger: log)
                }
                #expect(try await h.available("tron.USDT") == 7_000_000, "3 USDT reserved by the approval")
                #expect(try await count(db, "SELECT balance::int8 FROM gateway.ledger_accounts WHERE kind = 'reserved'") == 3_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE stage = 'autopay' AND kind = 'pay'") == 1)
                #expect(try await h.ledgerProblems() == [])

                try await h.callbacks.runWorker {
                    try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered'") == 6
                }
                let got = h.callbacks.receiver.received.filter { $0.path == "/withdrawals" }
                #expect(got.allSatisfy { $0.udunSignatureValid && $0.webhookSignatureValid })
                func statuses(_ business: String) -> [GatewayCore.JSONValue?] {
                    got.filter { $0.body?["businessId"] == .string(business) }.map { $0.body?["status"] }
                }
                #expect(statuses("w-1") == [.number("0"), .number("1")])
                #expect(statuses("w-2") == [.number("0"), .number("2")])
                #expect(statuses("w-3") == [.number("0")])
                let rejected = try #require(got.first { $0.body?["businessId"] == .string("w-2") && $0.body?["status"] == .number("2") })
                #expect(rejected.body?["blockHigh"] == .string("-1") && rejected.body?["txId"] == .string("") && rejected.body?["amount"] == .string("2500000"))
            }
        }
    }

    @Test func reviewersDecideThroughGatewayctl() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                _ = try h.sendTronUSDT(h.tron[0], 4_000_000)
                try await h.catchUp(h.scanner(confirmations: 0))
                let usdt = try #require(h.coins["tron.USDT"])
                var ids: [Int64] = []
                for (business, amount) in [("c-1", "3"), ("c-2", "3")] {
                    ids.append(try await db.transaction { c in
                        try await Withdrawals.submit(WithdrawalRequest(merchantID: h.merchant, mainCoinType: "195", coinType: usdt.coinType,
                                                                       address: "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp", amount: amount,
                                                                       callURL: h.callbacks.receiver.baseURL + "/w", businessID: business),
                                                     directory: .standard, callbackPolicy: CallbackURLPolicy(allowLoopback: true), on: c, logger: log)
                    })
                }
                try await runReviewWorker(db) { try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'pending_review'") == 2 }
                let config = try TestProcesses.configFile(StageProcessTests.yaml(devchain: url))
                defer { try? FileManager.default.removeItem(atPath: config) }
                func ctl(_ args: [String]) async throws -> (Int32?, String) {
                    let p = try TestProcesses.start("gatewayctl", args + ["--config", config], environment: TestProcesses.environment(for: db.config))
                    let status = await p.wait(timeout: .seconds(30))
                    return (status, p.output)
                }
                // This merchant pays the coin's 0.5 USDT fee on top of what it sends: 3.5 is reserved for 3.
                try await db.execute("UPDATE gateway.coins SET withdrawal_fee = 500000 WHERE id = \(usdt.id)")
                try await db.execute("UPDATE gateway.withdrawals SET fee = 500000")
                let (feeSet, feeOut) = try await ctl(["merchant", "fee-mode", "\(h.merchant)", "add"])
                #expect(feeSet == 0, "\(feeOut)")
                let (listed, list) = try await ctl(["review", "list"])
                #expect(listed == 0 && list.contains("c-1") && list.contains("c-2"), "\(list)")
                #expect(list.contains("1 operations") && list.contains("left") && list.contains("0/1"), "level, deadline and approvals: \(list)")
                // Reviewers are admin tokens with a level; an unknown name decides nothing.
                let (unknown, unknownOut) = try await ctl(["review", "approve", "\(ids[0])", "--as", "alice"])
                #expect(unknown != 0 && unknownOut.contains("no enabled reviewer named alice"), "\(unknownOut)")
                let (added, addedOut) = try await ctl(["admin", "token", "add", "alice", "--level", "2"])
                #expect(added == 0 && addedOut.contains("reviews up to level 2"), "\(addedOut)")
                let (_, bobOut) = try await ctl(["admin", "token", "add", "bob", "--level", "0"])
                #expect(bobOut.contains("reviews up to level 0"), "\(bobOut)")
                let (tooLow, tooLowOut) = try await ctl(["review", "reject", "\(ids[1])", "--as", "bob", "--reason", "unknown destination"])
                #expect(tooLow != 0 && tooLowOut.contains("bob may decide up to level 0"), "\(tooLowOut)")
                let (raised, _) = try await ctl(["admin", "token", "level", "bob", "1"])
                #expect(raised == 0)
                let (help, helpOut) = try await ctl(["review", "approve", "--help"])
                #expect(help == 0 && helpOut.contains("admin token"), "--as is documented: \(helpOut)")
                let (stale, staleOut) = try await ctl(["review", "approve", "\(ids[0])", "--as", "alice", "--version", "1"])
                #expect(stale != 0 && staleOut.contains("changed since you loaded it"), "\(staleOut)")
                let (approved, approveOut) = try await ctl(["review", "approve", "\(ids[0])", "--as", "alice", "--version", "2"])
                #expect(approved == 0 && approveOut.contains("approved by alice"), "\(approveOut)")
                let (short, shortOut) = try await ctl(["review", "approve", "\(ids[1])", "--as", "alice"])
                #expect(short != 0 && shortOut.contains("overdraw"), "0.5 USDT left for 3.5: \(shortOut)")
                let (noReason, _) = try await ctl(["review", "reject", "\(ids[1])", "--as", "bob", "--reason", " "])
                #expect(noReason != 0)
                let (rejected, rejectOut) = try await ctl(["review", "reject", "\(ids[1])", "--as", "bob", "--reason", "unknown destination"])
                #expect(rejected == 0 && rejectOut.contains("rejected by bob"), "\(rejectOut)")
                #expect(try await h.available("tron.USDT") == 500_000, "4 deposited, 3 + 0.5 fee reserved")
                #expect(try await count(db, "SELECT balance::int8 FROM gateway.ledger_accounts WHERE kind = 'reserved'") == 3_500_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.audit_log WHERE actor IN ('cli:alice', 'cli:bob')") == 2)
                let (_, status) = try await ctl(["status"])
                #expect(status.contains("reviews\nnone waiting"), "\(status)")
                let (_, balances) = try await ctl(["ledger", "balances", "--merchant", "\(h.merchant)"])
                #expect(balances.contains("available  500000") && balances.contains("reserved   3500000"), "\(balances)")
                let (consistent, _) = try await ctl(["ledger", "check"])
                #expect(consistent == 0)
                try await db.execute("UPDATE gateway.ledger_accounts SET balance = balance + 1 WHERE kind = 'reserved'")
                let (broken, brokenOut) = try await ctl(["ledger", "check"])
                #expect(broken == 1 && brokenOut.contains("entries sum to"), "a balance that disagrees with its entries is reported")
                let (_, shown) = try await ctl(["review", "show", "\(ids[0])"])
                #expect(shown.contains("approved") && shown.contains("status 1"), "\(shown)")
                #expect(shown.contains("level 1 (operations)") && shown.contains("decisions\n")
                        && shown.contains("merchant_setting") && shown.contains(" people ") && shown.contains("cli:alice"), "the decision history: \(shown)")
            }
        }
    }

    @Test func theRulesApproveRejectOrHandToPeopleAndRecordWhy() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                _ = try h.sendTronUSDT(h.tron[0], 6_000_000)
                try await h.catchUp(h.scanner(confirmations: 0))
                _ = try await db.transaction { c in try await Merchants.setAutoPayment(h.merchant, true, actor: "test", on: c, logger: log) }
                let usdt = try #require(h.coins["tron.USDT"])
                let denied = "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp"
                let fine = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"
                func submit(_ business: String, _ amount: String, to: String) async throws -> Int64 {
                    try await db.transaction { c in
                        try await Withdrawals.submit(WithdrawalRequest(merchantID: h.merchant, mainCoinType: "195", coinType: usdt.coinType, address: to,
                                                                       amount: amount, callURL: h.callbacks.receiver.baseURL + "/w", businessID: business),
                                                     directory: .standard, callbackPolicy: CallbackURLPolicy(allowLoopback: true), on: c, logger: log)
                    }
                }
                let small = try await submit("r-small", "4", to: fine)        // ≤ 5: approved by rule
                let large = try await submit("r-large", "5.5", to: fine)      // > 5: people
                let deny = try await submit("r-deny", "1", to: denied)        // deny list: rejected
                let rules = ReviewRulesConfig(autoApproveUpTo: ["USDT": "5"], deny: [denied])
                try await runReviewWorker(db, rules: rules) {
                    try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'received'") == 0
                }
                func decision(_ id: Int64) async throws -> String {
                    var out = ""
                    for try await (d, r) in try await db.query("SELECT decision, rule FROM gateway.withdrawal_decisions WHERE withdrawal_id = \(id) ORDER BY id")
                        .decode((String, String).self) { out += "\(d):\(r) " }
                    return out.trimmingCharacters(in: .whitespaces)
                }
                #expect(try await decision(small) == "approve:auto_approve_up_to")
                #expect(try await decision(large) == "review:auto_approve_up_to")
                #expect(try await decision(deny) == "reject:deny")
                #expect(try await h.available("tron.USDT") == 2_000_000, "4 of 6 reserved by the rule's approval")
                // The balance is now short for another rule-sized withdrawal: people decide, with that reason.
                let short = try await submit("r-short", "3", to: fine)
                try await runReviewWorker(db, rules: rules) {
                    try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'received'") == 0
                }
                #expect(try await decision(short) == "review:balance")
                #expect(try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE id = \(short) AND state_reason LIKE '%overdraw%'") == 1)
                // Without automatic payment the merchant's withdrawals always go to people.
                _ = try await db.transaction { c in try await Merchants.setAutoPayment(h.merchant, false, actor: "test", on: c, logger: log) }
                let manual = try await submit("r-manual", "1", to: fine)
                try await runReviewWorker(db, rules: rules, enteredReview: false) {
                    try await count(db, "SELECT count(*) FROM gateway.withdrawals WHERE state = 'received'") == 0
                }
                #expect(try await decision(manual) == "review:merchant_setting")
                // Operators heard of what went to people, not of what the rules decided, nor (notifications.entered_review off) of the last.
                func notified(_ id: Int64) async throws -> Int64 {
                    try await count(db, "SELECT count(*) FROM gateway.operator_notifications WHERE ref = \("withdrawal:\(id)") AND text LIKE '%waits for review%'")
                }
                var heard: [Int64] = []
                for id in [small, large, deny, short, manual] { heard.append(try await notified(id)) }
                #expect(heard == [0, 1, 0, 1, 0], "small, large, deny, short, manual")
                // People's decision is recorded too.
                _ = try await db.transaction { c in
                    try await Withdrawals.decide(large, approve: false, reason: "too large today", expectedVersion: nil, actor: "test:carol", on: c, logger: log)
                }
                #expect(try await decision(large) == "review:auto_approve_up_to reject:people")
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE trade_type = 2 AND trade_id = \(small) AND status = 0") == 0,
                        "an approval by rule sends 1 without 0")
                #expect(try await h.ledgerProblems() == [])
            }
        }
    }
}
