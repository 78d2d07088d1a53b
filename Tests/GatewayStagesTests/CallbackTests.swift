import BigInt
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

let log = TestDatabase.logger

func count(_ db: Database, _ sql: PostgresQuery) async throws -> Int64 {
    var n: Int64 = -1
    for try await v in try await db.query(sql).decode(Int64.self) { n = v }
    return n
}

/// A merchant, its receiver, and a callback worker running until `until` holds.
struct CallbackHarness {
    let db: Database
    let merchant: Int64
    let receiver: MerchantReceiver
    var config: GatewayConfig

    static func make(_ db: Database, name: String = "Receiver Co") async throws -> CallbackHarness {
        let (m, secrets) = try await db.transaction { c in try await Merchants.create(name: name, actor: "test", on: c, logger: log) }
        let receiver = try await MerchantReceiver(apiKey: secrets.apiKey, webhookSecret: secrets.webhookSecret)
        var config = GatewayConfig()
        config.api.callbackURLs = CallbackURLPolicy(allowLoopback: true)
        config.callbacks = CallbackSettings(requestTimeout: .seconds(1), perEndpointConcurrency: 2, deadAfter: .seconds(86_400))
        config.stages[.callback] = WorkerConfig(concurrency: 8, batchSize: 8, pollInterval: .milliseconds(50), lease: .seconds(30), maxAttempts: 1000,
                                                backoff: BackoffPolicy(base: .milliseconds(100), factor: 2, cap: .milliseconds(800)),
                                                shutdownGrace: .seconds(3))
        return CallbackHarness(db: db, merchant: m.id, receiver: receiver, config: config)
    }

    func deposit(tradeID: Int64, status: Int = 3, amount: BigUInt = 5_000_000, url: String? = nil) async throws -> Int64? {
        let fields = CallbackFields(address: "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp", amount: amount, blockHeight: 60_241_722, businessID: nil,
                                    coinType: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", decimals: 6, fee: 0, mainCoinType: "195", memo: "",
                                    status: status, tradeID: tradeID, tradeType: 1, txID: "9f6d00aa")
        return try await db.transaction { c in
            try await CallbackPayloads.create(merchantID: merchant, url: url ?? receiver.baseURL + "/cb", fields: fields, on: c, logger: log)
        }
    }

    func runWorker(timeout: Duration = .seconds(30), until: @escaping @Sendable () async throws -> Bool) async throws {
        let parts = try CallbackStage.parts(.init(config: config, database: db, logger: log))
        let worker = QueueWorker(database: db, settings: .init(stage: "callback", config: config.worker(.callback), handlers: parts.handlers), logger: log)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                for s in parts.services { group.addTask { try await s.run() } }
                let ok = try await eventually(timeout: timeout, until)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                #expect(ok, "condition not reached in time")
            }
        }
    }
}

@Suite(.serialized) struct CallbackTests {
    @Test func aCallbackArrivesWithBothSignaturesAndItsExactFields() async throws {
        try await TestDatabase.withDatabase { db in
            let h = try await CallbackHarness.make(db)
            let id = try #require(try await h.deposit(tradeID: 1_221_904_373_466_329_088))
            #expect(try await h.deposit(tradeID: 1_221_904_373_466_329_088) == nil, "one callback per trade and status")
            try await h.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered'") == 1 }
            let got = h.receiver.received
            #expect(got.count == 1)
            let r = try #require(got.first)
            #expect(r.udunSignatureValid && r.webhookSignatureValid)
            #expect(r.form["timestamp"]?.count == 13 && r.form["nonce"]?.count == 6, "millisecond timestamp, 6-character nonce")
            #expect(r.form["body"] == #"{"address":"TLng7RobC5jcNtw1XPxoyMiiifEksYEosp","amount":"5000000","blockHigh":"60241722","coinType":"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t","decimals":"6","fee":"0","mainCoinType":"195","memo":"","status":3,"tradeId":"1221904373466329088","tradeType":1,"txId":"9f6d00aa"}"#)
            var payload = ""
            for try await p in try await db.query("SELECT payload FROM gateway.callbacks WHERE id = \(id)").decode(String.self) { payload = p }
            #expect(r.rawBody == payload, "the stored bytes are what is sent")
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs") == 0)
            await h.receiver.stop()
        }
    }

    @Test func failuresRetryWithGrowingSpacingAndTheSameBytes() async throws {
        try await TestDatabase.withDatabase { db in
            let h = try await CallbackHarness.make(db)
            h.receiver.setBehaviour(.init(queued: [500, 503, 500], defaultStatus: 200))
            _ = try await h.deposit(tradeID: 7)
            try await h.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered'") == 1 }
            let got = h.receiver.received
            #expect(got.count == 4 && got.map(\.answered) == [500, 503, 500, 200])
            #expect(Set(got.map(\.rawBody)).count == 1, "every attempt sends the stored bytes")
            #expect(Set(got.compactMap(\.webhookID)).count == 1, "webhook-id is the receiver's idempotency key")
            #expect(got.allSatisfy { $0.udunSignatureValid && $0.webhookSignatureValid })
            // Attempt n waits at most min(cap, base·2^(n-1)) (+ scheduling slack).
            let backoff = h.config.worker(.callback).backoff
            for n in 1..<got.count {
                let gap = got[n].at - got[n - 1].at
                #expect(gap <= backoff.ceiling(attempt: n) + .milliseconds(700), "gap \(n): \(gap)")
            }
            #expect(try await count(db, "SELECT attempts::int8 FROM gateway.callbacks") == 4)
            await h.receiver.stop()
        }
    }

    @Test func callbacksOfOneTradeArriveInOrderEachOnce() async throws {
        try await TestDatabase.withDatabase { db in
            let h = try await CallbackHarness.make(db)
            // The receiver is down for a while.
            h.receiver.setBehaviour(.init(queued: [503, 503, 503, 503], defaultStatus: 200))
            for (trade, statuses) in [(100, [0, 1, 3]), (101, [1, 4])] {
                for s in statuses {
                    let fields = CallbackFields(address: "TLng7RobC5jcNtw1XPxoyMiiifEksYEosp", amount: 1, blockHeight: s >= 3 ? 5 : nil, businessID: "b\(trade)",
                                                coinType: "195", decimals: 6, fee: 0, mainCoinType: "195", memo: "", status: s, tradeID: Int64(trade),
                                                tradeType: 2, txID: "")
                    _ = try await db.transaction { c in try await CallbackPayloads.create(merchantID: h.merchant, url: h.receiver.baseURL + "/cb", fields: fields, on: c, logger: log) }
                }
            }
            // A callback made while an earlier one of its trade is pending is parked (not claimed to be put back).
            #expect(try await count(db, """
                SELECT count(*) FROM gateway.jobs j JOIN gateway.callbacks c ON j.unique_key = 'callback:' || c.id
                WHERE j.stage = 'callback' AND j.run_at > now() + interval '2 seconds'
                """) == 3)
            #expect(try await count(db, """
                SELECT count(*) FROM gateway.jobs j JOIN gateway.callbacks c ON j.unique_key = 'callback:' || c.id
                WHERE j.stage = 'callback' AND j.run_at <= now() AND c.status IN (0, 1) AND c.trade_id IN (100, 101)
                """) == 2)
            try await h.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered'") == 5 }
            let delivered = h.receiver.received.filter { $0.answered == 200 }
            func statuses(_ trade: String) -> [String] {
                delivered.filter { $0.body?["tradeId"] == .string(trade) }.compactMap { if case .number(let s)? = $0.body?["status"] { return s } else { return nil } }
            }
            #expect(statuses("100") == ["0", "1", "3"])
            #expect(statuses("101") == ["1", "4"])
            #expect(delivered.first { $0.body?["tradeId"] == .string("100") && $0.body?["status"] == .number("2") } == nil)
            #expect(delivered.allSatisfy { $0.body?["blockHigh"] != nil }, "rejected/unsent withdrawals carry blockHigh -1")
            await h.receiver.stop()
        }
    }

    @Test func aHangingMerchantDoesNotDelayAnother() async throws {
        try await TestDatabase.withDatabase { db in
            let slow = try await CallbackHarness.make(db, name: "Slow")
            let fast = try await CallbackHarness.make(db, name: "Fast")
            slow.receiver.setBehaviour(.init(hangPaths: ["/cb"]))
            for t in 0..<6 { _ = try await slow.deposit(tradeID: 1000 + Int64(t)) }
            for t in 0..<6 { _ = try await fast.deposit(tradeID: 2000 + Int64(t)) }
            let t0 = ContinuousClock.now
            try await fast.runWorker(timeout: .seconds(10)) {
                try await count(db, "SELECT count(*) FROM gateway.callbacks c WHERE merchant_id = \(fast.merchant) AND state = 'delivered'") == 6
            }
            #expect(ContinuousClock.now - t0 < .seconds(10))
            #expect(fast.receiver.received.count == 6)
            #expect(slow.receiver.received.count <= 6, "the slow endpoint had at most its cap in flight per round")
            #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE merchant_id = \(slow.merchant) AND state = 'pending'") == 6)
            await slow.receiver.stop()
            await fast.receiver.stop()
        }
    }

    @Test func eachDeliveryAttemptIsCountedByOutcomeAndTimed() async throws {
        Observability.bootstrapMetrics()  // before the stage makes its metrics, as callback-worker does
        func attempts(_ outcome: String) -> Double { MetricsSample.value("gateway_callback_deliveries_total", ["outcome": outcome]) ?? 0 }
        func timed(_ outcome: String) -> Double { MetricsSample.value("gateway_callback_delivery_duration_seconds_count", ["outcome": outcome]) ?? 0 }
        let before = ["delivered", "retry", "dead"].map { (attempts($0), timed($0)) }
        try await TestDatabase.withDatabase { db in
            let h = try await CallbackHarness.make(db)
            // One answered 500 then 200 (retry, delivered), one refused with a 404 (dead).
            h.receiver.setBehaviour(.init(queued: [500], defaultStatus: 200, statusByPath: ["/refuse": 404]))
            _ = try await h.deposit(tradeID: 1)
            _ = try await h.deposit(tradeID: 2, url: h.receiver.baseURL + "/refuse")
            try await h.runWorker {
                try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state IN ('delivered', 'dead')") == 2
            }
            await h.receiver.stop()
        }
        let after = ["delivered", "retry", "dead"].map { (attempts($0), timed($0)) }
        #expect(after[0].0 - before[0].0 == 1 && after[0].1 - before[0].1 == 1, "delivered: \(before[0]) → \(after[0])")
        #expect(after[1].0 - before[1].0 == 1 && after[1].1 - before[1].1 == 1, "retry: \(before[1]) → \(after[1])")
        #expect(after[2].0 - before[2].0 == 1 && after[2].1 - before[2].1 == 1, "dead: \(before[2]) → \(after[2])")
    }

    @Test func refusalsAndExpiryMakeDeadCallbacksThatCanBeResent() async throws {
        try await TestDatabase.withDatabase { db in
            var h = try await CallbackHarness.make(db)
            h.receiver.setBehaviour(.init(defaultStatus: 500, statusByPath: ["/refuse": 404]))
            let refused = try #require(try await h.deposit(tradeID: 1, url: h.receiver.baseURL + "/refuse"))
            let expired = try #require(try await h.deposit(tradeID: 2))
            try await db.transaction { c in
                try await c.query("UPDATE gateway.callbacks SET created_at = now() - interval '2 days' WHERE id = \(expired)", logger: log)
            }
            try await h.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'dead'") == 2 }
            var errors: [Int64: String] = [:]
            for try await (id, e) in try await db.query("SELECT id, coalesce(last_error, '') FROM gateway.callbacks").decode((Int64, String).self) { errors[id] = e }
            #expect(errors.values.contains { $0.contains("HTTP 404") && $0.contains("refused") })
            #expect(errors.values.contains { $0.contains("undelivered after 1d") })
            #expect(try await count(db, "SELECT count(*) FROM gateway.jobs WHERE state = 'dead' AND stage = 'callback'") == 2)
            // Resend: the same bytes go again and arrive.
            h.receiver.setBehaviour(.init(defaultStatus: 200))
            try await db.transaction { c in
                try await Callbacks.resend(refused, actor: "test", on: c, logger: log)
                try await Callbacks.resend(expired, actor: "test", on: c, logger: log)
            }
            try await h.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered'") == 2 }
            // A loopback callUrl is refused at delivery when the policy forbids it.
            h.config.api.callbackURLs = CallbackURLPolicy(allowLoopback: false)
            _ = try await h.deposit(tradeID: 3)
            try await h.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'dead'") == 1 }
            let toRefused = h.receiver.received.filter { r in r.body.map { $0["tradeId"] == .string("3") } ?? false }
            #expect(toRefused.isEmpty, "nothing was sent to a refused address")
            await h.receiver.stop()
        }
    }
}
