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
import Synchronization
import Testing

/// The BIP39 test mnemonic whose account 0 the deposit harness attaches (HDVectors).
let abandonMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

/// The deposit harness plus what paying needs: a funded merchant balance, funded hot wallets, and
/// autopay + chain + callback workers running against the devchain.
struct PaymentHarness {
    let h: DepositHarness
    let seedFile: String
    var db: Database { h.db }
    var node: DevChain { h.node }

    static func make(_ db: Database, node: DevChain, url: String, balance: BigInt = 1_000_000_000, fundHot: Bool = true,
                     fee: BigUInt = 0) async throws -> PaymentHarness {
        let h = try await DepositHarness.make(db, node: node, url: url)
        let seedFile = FileManager.default.temporaryDirectory.appendingPathComponent("payments-\(UUID().uuidString).seed").path
        try abandonMnemonic.write(toFile: seedFile, atomically: true, encoding: .utf8)
        try await db.transaction { c in
            for coin in ["tron.USDT", "ethereum.USDT"] {
                let id = h.coins[coin]!.id
                if balance != 0 {  // 0: the test funds the merchant with real deposits, so the ledger reconciles with the chain
                    try await Ledger.post([LedgerTransfer(reason: "test.deposit", ref: "test", legs: [
                        LedgerLeg(merchantID: h.merchant, coinID: id, kind: LedgerAccountKind.available, amount: balance),
                        LedgerLeg(merchantID: nil, coinID: id, kind: LedgerAccountKind.chain, amount: -balance),
                    ])], on: c, logger: log)
                }
                try await c.query("UPDATE gateway.coins SET withdrawal_fee = \(fee.description)::numeric WHERE id = \(id)", logger: log)
            }
            try await c.query("UPDATE gateway.merchants SET auto_payment = true WHERE id = \(h.merchant)", logger: log)
        }
        let p = PaymentHarness(h: h, seedFile: seedFile)
        if fundHot { try p.fundHotWallets() }
        return p
    }

    func hot(_ chain: String) async throws -> String {
        for try await a in try await db.query("SELECT hot_address FROM gateway.wallets WHERE chain = \(chain)").decode(String.self) { return a }
        throw ServiceError.notFound("hot wallet")
    }

    func fundHotWallets(usdt: BigUInt = 10_000_000_000) throws {
        let wallets = try (["tron", "ethereum"]).map { chain -> String in
            // The hot address of account 0 of the abandon seed (1/0).
            let account = try WatchOnlyAccount(serialized: chain == "tron" ? HDVectors.tronXpub : HDVectors.ethXpub, scheme: chain == "tron" ? .tron : .evm)
            return try account.hotAddress()
        }
        let tronHot = try ChainKit.ChainKind.tron.parseAddress(wallets[0])
        let ethHot = try ChainKit.ChainKind.evm.parseAddress(wallets[1])
        _ = try node.tron.fund(tronHot, amount: 10_000_000_000)
        _ = try node.tron.transferUSDT([(to: tronHot, amount: usdt)])
        _ = try node.evm.fund(ethHot, amount: BigUInt(10).power(20))
        _ = try node.evm.transferUSDT([(to: ethHot, amount: usdt)])
    }

    func config(confirmations: Int = 2, payments: (inout PaymentConfig) -> Void = { _ in }, hotWalletRetry: Duration? = nil) -> GatewayConfig {
        var config = h.callbacks.config
        config.chains = ["tron", "ethereum"].map { name in
            var c = h.chainConfig(name, confirmations: confirmations)
            c.payments.pollInterval = .milliseconds(50)
            c.payments.rebroadcastEvery = .milliseconds(500)
            payments(&c.payments)
            return c
        }
        config.wallet = WalletConfig(seedFile: seedFile)
        config.autopay = AutopaySettings(hotWalletRetry: hotWalletRetry, maxBatch: 50)
        config.notifications.webhookURL = h.callbacks.receiver.baseURL + "/ops"
        let worker = WorkerConfig(concurrency: 16, batchSize: 16, pollInterval: .milliseconds(50), lease: .seconds(10), maxAttempts: 1000,
                                  backoff: BackoffPolicy(base: .milliseconds(50), factor: 2, cap: .milliseconds(400)), shutdownGrace: .seconds(3))
        config.stages[.autopay] = worker
        config.stages[.chain] = worker
        return config
    }

    /// Submits and approves a withdrawal (as people would), returning its id.
    func approve(chain: String, to address: String, amount: String, business: String) async throws -> Int64 {
        let coin = h.coins["\(chain).USDT"]!
        return try await db.transaction { c in
            let id = try await Withdrawals.submit(
                WithdrawalRequest(merchantID: h.merchant, mainCoinType: coin.mainCoinType, coinType: coin.coinType, address: address, amount: amount,
                                  callURL: h.callbacks.receiver.baseURL + "/withdrawals", businessID: business),
                directory: .standard, callbackPolicy: CallbackURLPolicy(allowLoopback: true), on: c, logger: log)
            _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: nil, actor: "alice", on: c, logger: log)
            return id
        }
    }

    /// Runs autopay, chain (confirmations) and callback workers, and mines a block on both chains every
    /// `mineEvery` (nil: the test mines), until `until` holds.
    func run(_ config: GatewayConfig, mineEvery: Duration? = .milliseconds(100), timeout: Duration = .seconds(40),
             until: @escaping @Sendable () async throws -> Bool) async throws {
        let env = StageRunner.Environment(config: config, database: db, logger: log)
        let autopay = QueueWorker(database: db, settings: .init(stage: "autopay", config: config.worker(.autopay),
                                                                handlers: try AutopayStage.handlers(env)), logger: log)
        let chain = QueueWorker(database: db, settings: .init(stage: "chain", config: config.worker(.chain), handlers: try ChainStage.handlers(env)),
                                logger: log)
        let parts = try CallbackStage.parts(env)
        let callback = QueueWorker(database: db, settings: .init(stage: "callback", config: config.worker(.callback), handlers: parts.handlers),
                                   logger: log)
        let node = self.node
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await autopay.run() }
                group.addTask { try await chain.run() }
                group.addTask { try await callback.run() }
                for s in parts.services { group.addTask { try await s.run() } }
                let stop = Mutex(false)
                if let mineEvery {
                    group.addTask {
                        while !stop.withLock({ $0 }) {
                            try? await Task.sleep(for: mineEvery)
                            node.evm.mine()
                            node.tron.mine()
                        }
                    }
                }
                let ok = try await eventually(timeout: timeout, until)
                stop.withLock { $0 = true }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                #expect(ok, "condition not reached in time")
            }
        }
    }

    func state(_ id: Int64) async throws -> String {
        try await db.withConnection { c in try await Withdrawals.find(id, on: c, logger: log)?.state ?? "?" }
    }

    func txs(_ id: Int64) async throws -> [OutgoingTx] {
        try await db.withConnection { c in try await Payments.transactions(withdrawalID: id, on: c, logger: log) }
    }

    func callbacks(_ id: Int64) -> [String] {
        h.callbacks.receiver.received.filter { $0.path == "/withdrawals" && text($0.body?["tradeId"]) == String(id) }
            .compactMap { text($0.body?["status"]) }
    }

    /// A callback body's fields as text.
    func callbackBody(_ id: Int64, status: String) -> [String: String]? {
        guard let body = h.callbacks.receiver.received.first(where: {
            $0.path == "/withdrawals" && text($0.body?["tradeId"]) == String(id) && text($0.body?["status"]) == status
        })?.body, case .object(let members) = body else { return nil }
        var out: [String: String] = [:]
        for m in members { out[m.key] = text(m.value) }
        return out
    }

    func balance(_ coin: String, _ kind: String, merchant: Bool = true) async throws -> BigInt {
        let id = h.coins[coin]!.id
        for try await b in try await db.query("""
            SELECT balance::text FROM gateway.ledger_accounts WHERE coin_id = \(id) AND kind = \(kind)
              AND merchant_id IS NOT DISTINCT FROM \(merchant ? h.merchant : nil)
            """).decode(String.self) { return BigInt(b) ?? 0 }
        return 0
    }
}

func text(_ v: GatewayCore.JSONValue?) -> String? {
    switch v {
    case .string(let s)?: return s
    case .number(let n)?: return n
    default: return nil
    }
}

func withPayChain<R: Sendable>(_ seed: String, automine: Bool = true, _ body: @Sendable (DevChain, String) async throws -> R) async throws -> R {
    try await DevChain.withRunning(DevChainOptions(seed: seed, automine: automine),
                                   logger: Logger(label: "devchain", factory: { _ in SwiftLogNoOpLogHandler() }), body)
}

@Suite(.serialized) struct PaymentTests {
    let tronDest = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
    let ethDest = "0x52908400098527886E0F7030069857D2E4169EE7"

    @Test func approvedWithdrawalsArePaidOnceConfirmedWithCallbacksAndTheLedgerSettled() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-basic") { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url, fee: 500_000)
                // Fee deducted (default) on TRON; added on top for the Ethereum one (merchant setting switched between).
                let tronID = try await p.approve(chain: "tron", to: tronDest, amount: "12.5", business: "t-1")
                try await db.transaction { c in try await Merchants.setWithdrawalFeeMode(p.h.merchant, "add", actor: "test", on: c, logger: log) }
                let ethID = try await p.approve(chain: "ethereum", to: ethDest, amount: "7", business: "e-1")
                #expect(try await p.balance("tron.USDT", "reserved") == 12_500_000)
                #expect(try await p.balance("ethereum.USDT", "reserved") == 7_500_000)

                try await p.run(p.config()) {
                    let a = try await p.state(tronID), b = try await p.state(ethID)
                    return a == "confirmed" && b == "confirmed" && p.callbacks(tronID).contains("3") && p.callbacks(ethID).contains("3")
                }
                // The destinations hold exactly what was sent: amount less the fee, or the amount.
                #expect(node.tron.usdtBalance(of: try ChainKit.ChainKind.tron.parseAddress(tronDest)) == 12_000_000)
                #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(ethDest)) == 7_000_000)
                // One transaction each, confirmed, with its network fee.
                for id in [tronID, ethID] {
                    let txs = try await p.txs(id)
                    #expect(txs.count == 1)
                    #expect(txs.first?.state == "confirmed")
                }
                #expect(try await p.txs(ethID).first?.nonce != nil)
                // Callbacks 1 then 3, once each; 3 carries txId, blockHigh and the fee charged.
                #expect(p.callbacks(tronID) == ["1", "3"])
                #expect(p.callbacks(ethID) == ["1", "3"])
                let body = try #require(p.callbackBody(tronID, status: "3"))
                #expect(body["txId"] == (try await p.txs(tronID)).first?.txHash)
                #expect(body["fee"] == "500000", "the fee charged, in base units like the amount")
                #expect((Int(body["blockHigh"] ?? "-1") ?? -1) > 0)
                // Ledger: reservations debited, fees to the gateway, network fees booked, all consistent.
                #expect(try await p.balance("tron.USDT", "reserved") == 0)
                #expect(try await p.balance("ethereum.USDT", "reserved") == 0)
                #expect(try await p.balance("tron.USDT", "available") == 1_000_000_000 - 12_500_000)
                #expect(try await p.balance("ethereum.USDT", "available") == 1_000_000_000 - 7_500_000)
                #expect(try await p.balance("tron.USDT", "fee_income", merchant: false) == 500_000)
                #expect(try await p.balance("ethereum.USDT", "fee_income", merchant: false) == 500_000)
                #expect(try await p.balance("ethereum.ETH", "network_fees", merchant: false) < 0)
                #expect(try await p.balance("tron.TRX", "network_fees", merchant: false) < 0)
                #expect(try await p.h.ledgerProblems().isEmpty)
            }
        }
    }

    @Test func aShortHotWalletSendsTheWithdrawalBackToReviewSigningNothingUntilReleased() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-short") { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url, fundHot: false)
                let id = try await p.approve(chain: "tron", to: tronDest, amount: "5", business: "short-1")
                try await p.run(p.config()) {
                    let w = try await db.withConnection { c in try await Withdrawals.find(id, on: c, logger: log) }
                    return w?.state == "pending_review" && p.h.callbacks.receiver.received.contains { $0.path == "/ops" }
                }
                let w = try #require(try await db.withConnection { c in try await Withdrawals.find(id, on: c, logger: log) })
                #expect(w.stateReason == Payments.hotWalletReason)
                #expect(try await p.txs(id).isEmpty, "nothing is signed")
                #expect(try await p.balance("tron.USDT", "reserved") == 5_000_000, "the reservation is kept")
                let note = try #require(p.h.callbacks.receiver.received.first { $0.path == "/ops" })
                #expect(note.rawBody.contains("hot wallet"))

                // Funds arrive; an operator releases it; it is paid once, with no second callback 1.
                try p.fundHotWallets()
                try await db.transaction { c in
                    _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: nil, actor: "bob", on: c, logger: log)
                }
                #expect(try await p.balance("tron.USDT", "reserved") == 5_000_000)
                try await p.run(p.config()) { try await p.state(id) == "confirmed" && p.callbacks(id).contains("3") }
                #expect(p.callbacks(id) == ["1", "3"])
                #expect(node.tron.usdtBalance(of: try ChainKit.ChainKind.tron.parseAddress(tronDest)) == 5_000_000)
                #expect(try await p.balance("tron.USDT", "available") == 1_000_000_000 - 5_000_000)
                #expect(try await p.h.ledgerProblems().isEmpty)
            }
        }
    }

    @Test func aStuckEVMTransactionIsReplacedOnTheSameNonceAndOnlyOneLands() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-stuck", automine: false) { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url)
                node.evm.mine()
                node.tron.mine()
                let id = try await p.approve(chain: "ethereum", to: ethDest, amount: "3", business: "stuck-1")
                let config = p.config(confirmations: 1) { $0.replaceAfter = .milliseconds(400) }
                // Nothing is mined: after replace_after the payment is re-signed on its nonce with higher fees.
                try await p.run(config, mineEvery: nil, timeout: .seconds(20)) { try await p.txs(id).count >= 2 }
                let txs = try await p.txs(id)
                #expect(Set(txs.map(\.nonce)).count == 1, "replacements share the nonce")
                #expect(txs[1].maxFee * 10 >= txs[0].maxFee * 11 && txs[1].tip * 10 >= txs[0].tip * 11, "fees raised by at least 10 %")
                // Now blocks come: exactly one of them lands and pays.
                try await p.run(config, timeout: .seconds(20)) { try await p.state(id) == "confirmed" }
                let after = try await p.txs(id)
                #expect(after.filter { $0.state == "confirmed" }.count == 1)
                #expect(after.filter { $0.state != "confirmed" }.allSatisfy { $0.state == "replaced" })
                #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(ethDest)) == 3_000_000)
                #expect(try await p.h.ledgerProblems().isEmpty)
            }
        }
    }

    @Test func aPaymentStuckAtTheFeeCapIsToldToOperatorsOnceAndStillLandsOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-cap", automine: false) { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url)
                node.evm.mine()
                node.tron.mine()
                let id = try await p.approve(chain: "ethereum", to: ethDest, amount: "3", business: "cap-1")
                // devchain suggests 3 gwei; the cap signs it at 2, so a replacement cannot raise its fees by 10 %.
                let config = p.config(confirmations: 1) {
                    $0.replaceAfter = .milliseconds(300)
                    $0.maxFeePerGas = 2_000_000_000
                }
                @Sendable func stuck() async throws -> Int64 {
                    try await count(db, "SELECT count(*) FROM gateway.operator_notifications WHERE ref = \("withdrawal:\(id)") AND text LIKE 'Payment stuck: %'")
                }
                try await p.run(config, mineEvery: nil, timeout: .seconds(20)) {
                    try await stuck() == 1
                        && p.h.callbacks.receiver.received.contains { $0.path == "/ops" && $0.rawBody.contains("Payment stuck: withdrawal \(id)") }
                }
                // Several replace_after periods later: still one notification, still one transaction.
                let start = ContinuousClock.now
                try await p.run(config, mineEvery: nil, timeout: .seconds(20)) { ContinuousClock.now - start > .milliseconds(1500) }
                #expect(try await stuck() == 1, "told once, not at every look")
                #expect(try await p.txs(id).count == 1, "nothing replaced it")
                let text = try #require(p.h.callbacks.receiver.received.first { $0.path == "/ops" && $0.rawBody.contains("Payment stuck") }?.rawBody)
                #expect(text.contains("max_fee_per_gas (2000000000 wei)") && text.contains("on ethereum (nonce 0)"), "\(text)")
                // Blocks come: it lands, once.
                try await p.run(config, timeout: .seconds(20)) { try await p.state(id) == "confirmed" }
                #expect(try await p.txs(id).map(\.state) == ["confirmed"])
            }
        }
    }

    @Test func aTronTransactionThatExpiredUnseenIsResignedAndNotBefore() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-expire", automine: false) { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url)
                node.tron.mine()
                let id = try await p.approve(chain: "tron", to: tronDest, amount: "4", business: "exp-1")
                let config = p.config(confirmations: 1) {
                    $0.expiration = .seconds(60)  // 20 TRON blocks
                    $0.rebroadcastEvery = .seconds(3600)
                }
                try await p.run(config, mineEvery: nil, timeout: .seconds(20)) { try await p.txs(id).first?.state == "broadcast" }
                #expect(node.tron.drop(id: nil) == 1, "the node evicts it from its pool")
                // Not expired yet by solidified time (no blocks came): it is not re-signed, whatever the wait.
                let start = ContinuousClock.now
                try await p.run(config, mineEvery: nil, timeout: .seconds(10)) { ContinuousClock.now - start > .milliseconds(1500) }
                #expect(try await p.txs(id).count == 1, "never re-signed while the first could still land")
                // Blocks pass its expiration at the solidified head: a new transaction pays, once.
                try await p.run(config, mineEvery: .milliseconds(20), timeout: .seconds(30)) {
                    try await p.state(id) == "confirmed" && p.callbacks(id).contains("3")
                }
                let txs = try await p.txs(id)
                #expect(txs.count == 2)
                #expect(txs[0].state == "expired")
                #expect(txs[1].state == "confirmed")
                #expect(node.tron.usdtBalance(of: try ChainKit.ChainKind.tron.parseAddress(tronDest)) == 4_000_000)
                #expect(p.callbacks(id) == ["1", "3"])
            }
        }
    }

    @Test func anExecutionFailureFailsTheWithdrawalReleasesItsReservationAndSendsCallback4() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-fail") { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url, fee: 100_000)
                node.evm.injectPoolFaults(failNext: 1)
                let id = try await p.approve(chain: "ethereum", to: ethDest, amount: "2", business: "fail-1")
                try await p.run(p.config()) { try await p.state(id) == "failed" && p.callbacks(id).contains("4") }
                #expect(p.callbacks(id) == ["1", "4"])
                let body = try #require(p.callbackBody(id, status: "4"))
                #expect(body["fee"] == "0", "nothing was charged")
                #expect(try await p.balance("ethereum.USDT", "reserved") == 0)
                #expect(try await p.balance("ethereum.USDT", "available") == 1_000_000_000)
                #expect(try await p.balance("ethereum.ETH", "network_fees", merchant: false) < 0, "the burned gas is booked")
                #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(ethDest)) == 0)
                #expect(try await p.h.ledgerProblems().isEmpty)
            }
        }
    }

    @Test func aReorgThatDropsAnOutgoingTransactionBeforeItsDepthResendsTheSameBytes() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("pay-reorg", automine: false) { node, url in
                let p = try await PaymentHarness.make(db, node: node, url: url)
                node.evm.mine(3)  // the hot wallet's funding stays below the reorg
                let id = try await p.approve(chain: "ethereum", to: ethDest, amount: "6", business: "reorg-1")
                let config = p.config(confirmations: 4)
                try await p.run(config, mineEvery: nil, timeout: .seconds(20)) { try await p.txs(id).first?.state == "broadcast" }
                node.evm.mine()
                try await p.run(config, mineEvery: nil, timeout: .seconds(20)) { try await p.txs(id).first?.state == "mined" }
                _ = try node.evm.reorg(depth: 2, dropTransactions: true)
                #expect(try await p.state(id) == "broadcast")
                try await p.run(config, timeout: .seconds(30)) { try await p.state(id) == "confirmed" && p.callbacks(id).contains("3") }
                let txs = try await p.txs(id)
                #expect(txs.count == 1, "the same transaction, sent again")
                #expect(txs[0].broadcasts >= 2)
                #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(ethDest)) == 6_000_000)
                #expect(p.callbacks(id) == ["1", "3"])
            }
        }
    }
}
