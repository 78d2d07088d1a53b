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

/// Account xpubs of vectors/hd_wallet.json (abandon … about).
enum HDVectors {
    static let tronXpub = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd"
    static let ethXpub = "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"
}

/// A merchant with TRON and Ethereum wallets, deposit addresses whose callUrl is a real receiver,
/// the devchain's USDT and native coins, and scanners pointed at a devchain.
struct DepositHarness {
    let callbacks: CallbackHarness
    let node: DevChain
    let url: String
    let tron: [String]
    let eth: [String]
    let coins: [String: Coin]
    var db: Database { callbacks.db }
    var merchant: Int64 { callbacks.merchant }

    static func make(_ db: Database, node: DevChain, url: String, usdtMinimum: BigUInt = 1_000_000) async throws -> DepositHarness {
        let cb = try await CallbackHarness.make(db)
        node.tron.mine(10)  // history below the first deposit, so a reorg has a fork point to find
        node.evm.mine(10)
        let tronUSDT = ChainKit.ChainKind.tron.format(node.tron.usdt)
        let ethUSDT = ChainKit.ChainKind.evm.format(node.evm.usdt).lowercased()
        return try await db.transaction { c in
            var coins: [String: Coin] = [:]
            for coin in [
                Coin(chain: "tron", mainCoinType: "195", coinType: "195", symbol: "TRX", name: "TRX", coinName: "TRON", decimals: 6, isToken: false),
                Coin(chain: "tron", mainCoinType: "195", coinType: tronUSDT, symbol: "USDT", name: "USDT", coinName: "TRON", mainSymbol: "TRX",
                     decimals: 6, isToken: true, minDeposit: usdtMinimum),
                Coin(chain: "ethereum", mainCoinType: "60", coinType: "60", symbol: "ETH", name: "ETH", coinName: "Ethereum", decimals: 18, isToken: false),
                Coin(chain: "ethereum", mainCoinType: "60", coinType: ethUSDT, symbol: "USDT", name: "USDT", coinName: "Ethereum", mainSymbol: "ETH",
                     decimals: 6, isToken: true, minDeposit: usdtMinimum),
            ] {
                let added = try await Coins.add(coin, directory: .standard, actor: "test", on: c, logger: log)
                coins["\(added.chain).\(added.symbol)"] = added
            }
            _ = try await Wallets.attach(merchantID: cb.merchant, chain: "tron", xpub: HDVectors.tronXpub, accountIndex: 0, coldAddress: nil,
                                         directory: .standard, actor: "test", on: c, logger: log)
            _ = try await Wallets.attach(merchantID: cb.merchant, chain: "ethereum", xpub: HDVectors.ethXpub, accountIndex: 0, coldAddress: nil,
                                         directory: .standard, actor: "test", on: c, logger: log)
            let callURL = cb.receiver.baseURL + "/deposits"
            let tron = try await Addresses.create(merchantID: cb.merchant, chain: "tron", callURL: callURL, alias: "", walletRef: "", count: 3,
                                                  maxAddresses: nil, directory: .standard, on: c, logger: log)
            let eth = try await Addresses.create(merchantID: cb.merchant, chain: "ethereum", callURL: callURL, alias: "", walletRef: "", count: 2,
                                                 maxAddresses: nil, directory: .standard, on: c, logger: log)
            return DepositHarness(callbacks: cb, node: node, url: url, tron: tron, eth: eth, coins: coins)
        }
    }

    func chainConfig(_ name: String, confirmations: Int = 3) -> ChainConfig {
        ChainConfig(name: name, kind: name == "tron" ? .tron : .evm, nodeURL: url, chainID: name == "tron" ? nil : 1337, confirmations: confirmations,
                    blockTime: .milliseconds(100), requestTimeout: .seconds(2), retryAttempts: 2, scanFrom: 1, scanBatch: 7,
                    pollInterval: .milliseconds(20))
    }

    func scanner(_ name: String = "tron", confirmations: Int = 3, identity: String = "scanner-a", lease: Duration = .seconds(2)) -> ChainScanner {
        let chain = chainConfig(name, confirmations: confirmations)
        return ChainScanner(chain: chain, node: ChainStage.nodeClient(for: chain, logger: log), database: db, lease: lease,
                            backoff: BackoffPolicy(base: .milliseconds(50), factor: 2, cap: .milliseconds(400)), identity: identity, logger: log)
    }

    /// Steps until the scanner reports being caught up (at most `limit` steps).
    @discardableResult
    func catchUp(_ s: ChainScanner, limit: Int = 200) async throws -> [ChainScanner.Step] {
        var steps: [ChainScanner.Step] = []
        for _ in 0..<limit {
            let step = try await s.step()
            steps.append(step)
            switch step {
            case .caughtUp, .standby: return steps
            case .scanned(_, _, _, _, _, let behind) where behind == 0: return steps
            default: continue
            }
        }
        Issue.record("scanner did not catch up in \(limit) steps")
        return steps
    }

    func sendTronUSDT(_ address: String, _ amount: BigUInt) throws -> String {
        try node.tron.transferUSDT([(to: try ChainKit.ChainKind.tron.parseAddress(address), amount: amount)])[0]
    }

    func statuses() async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for try await (s, n) in try await db.query("SELECT status, count(*) FROM gateway.deposits GROUP BY status").decode((String, Int64).self) { out[s] = n }
        return out
    }

    func available(_ coin: String) async throws -> BigInt {
        let id = coins[coin]!.id
        return try await db.withConnection { c in try await Ledger.available(merchantID: merchant, on: c, logger: log)[id] ?? 0 }
    }

    func ledgerProblems() async throws -> [String] {
        try await db.withConnection { c in try await Ledger.inconsistencies(on: c, logger: log) }
    }
}

func withDevChain<R: Sendable>(_ seed: String = "deposits", _ body: @Sendable (DevChain, String) async throws -> R) async throws -> R {
    try await DevChain.withRunning(DevChainOptions(seed: seed), logger: Logger(label: "devchain", factory: { _ in SwiftLogNoOpLogHandler() }), body)
}

@Suite(.serialized) struct DepositTests {
    @Test func aTronDepositIsSeenThenCreditedAtDepthWithOneSignedCallback() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner(confirmations: 3)
                let tx = try h.sendTronUSDT(h.tron[0], 5_000_000)
                _ = try node.tron.fund(try ChainKit.ChainKind.tron.parseAddress(h.tron[1]), amount: 2_000_000)
                try await h.catchUp(s)
                #expect(try await h.statuses() == ["seen": 2], "recorded when seen, not yet credited")
                #expect(try await h.available("tron.USDT") == 0)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 0)

                node.tron.mine(2)
                try await h.catchUp(s)
                #expect(try await h.statuses()["confirmed"] == 1, "the USDT deposit has 3 blocks on top of it, the TRX one 2")
                node.tron.mine(1)
                try await h.catchUp(s)
                #expect(try await h.statuses() == ["confirmed": 2])
                #expect(try await h.available("tron.USDT") == 5_000_000)
                #expect(try await h.available("tron.TRX") == 2_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.deposits WHERE log_index = -1") == 1, "the native transfer has no log index")
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 4, "two legs per credit")
                #expect(try await h.ledgerProblems() == [])

                // Scanning the same blocks again (gatewayctl chain rescan under the running scanner) changes nothing.
                let config = try TestProcesses.configFile(StageProcessTests.yaml(devchain: url))
                defer { try? FileManager.default.removeItem(atPath: config) }
                let rescan = try TestProcesses.start("gatewayctl", ["chain", "rescan", "--chain", "tron", "--from", "1", "--config", config],
                                                     environment: TestProcesses.environment(for: db.config))
                #expect(await rescan.wait(timeout: .seconds(30)) == 0, "\(rescan.output)")
                #expect(try await count(db, "SELECT scanned_height FROM gateway.chain_scanners") == 0)
                node.tron.mine(1)  // the running scanner notices at its next block (or lease renewal)
                let again = try await h.catchUp(s)
                #expect(again.contains { if case .scanned(1, _, 0, 0, 0, _) = $0 { return true } else { return false } }, "\(again)")
                #expect(try await h.statuses() == ["confirmed": 2])
                #expect(try await h.available("tron.USDT") == 5_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 2)

                try await h.callbacks.runWorker { try await count(db, "SELECT count(*) FROM gateway.callbacks WHERE state = 'delivered'") == 2 }
                let got = h.callbacks.receiver.received.filter { $0.body?["tradeType"] == .number("1") && $0.body?["coinType"] != .string("195") }
                let r = try #require(got.first)
                #expect(r.udunSignatureValid && r.webhookSignatureValid)
                #expect(r.path == "/deposits")
                var height: Int64 = 0, id: Int64 = 0
                for try await (i, b) in try await db.query("SELECT id, block_height FROM gateway.deposits WHERE tx_hash = \(tx)").decode((Int64, Int64).self) {
                    (id, height) = (i, b)
                }
                let tronUSDT = ChainKit.ChainKind.tron.format(node.tron.usdt)
                #expect(r.form["body"] == #"{"address":"\#(h.tron[0])","amount":"5000000","blockHigh":"\#(height)","coinType":"\#(tronUSDT)","decimals":"6","fee":"0","mainCoinType":"195","memo":"","status":3,"tradeId":"\#(id)","tradeType":1,"txId":"\#(tx)"}"#)
            }
        }
    }

    @Test func anEthereumTokenAndEtherDepositAreCredited() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner("ethereum", confirmations: 2)
                let to = try ChainKit.ChainKind.evm.parseAddress(h.eth[1])
                _ = try node.evm.transferUSDT([(to: to, amount: 7_250_000), (to: to, amount: 1_000_000)])
                _ = try node.evm.fund(try ChainKit.ChainKind.evm.parseAddress(h.eth[0]), amount: 3_000_000_000_000_000)
                node.evm.mine(2)
                try await h.catchUp(s)
                #expect(try await h.statuses() == ["confirmed": 3])
                #expect(try await h.available("ethereum.USDT") == 8_250_000)
                #expect(try await h.available("ethereum.ETH") == BigInt(3_000_000_000_000_000))
                #expect(try await count(db, "SELECT count(DISTINCT log_index) FROM gateway.deposits WHERE coin_id = \(h.coins["ethereum.USDT"]!.id)") == 2,
                        "two transfers in one block are two deposits")
                #expect(try await h.ledgerProblems() == [])
            }
        }
    }

    @Test func aDepositBelowTheMinimumIsRecordedButNotCredited() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url, usdtMinimum: 1_000_000)
                let s = h.scanner(confirmations: 1)
                _ = try h.sendTronUSDT(h.tron[0], 999_999)
                _ = try h.sendTronUSDT(h.tron[0], 1_000_000)
                node.tron.mine(1)
                try await h.catchUp(s)
                #expect(try await h.statuses() == ["ignored": 1, "confirmed": 1])
                #expect(try await h.available("tron.USDT") == 1_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 1, "no callback for the ignored deposit")
                #expect(try await count(db, "SELECT count(*) FROM gateway.deposits WHERE status = 'ignored' AND amount = 999999") == 1)
            }
        }
    }

    @Test func aReorgBeforeConfirmationOrphansTheDepositWithoutCreditOrCallback() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner(confirmations: 3)
                _ = try h.sendTronUSDT(h.tron[0], 5_000_000)
                node.tron.mine(1)
                try await h.catchUp(s)
                #expect(try await h.statuses() == ["seen": 1])
                _ = try node.tron.reorg(depth: 2, dropTransactions: true)
                node.tron.mine(5)
                let steps = try await h.catchUp(s)
                #expect(steps.contains { if case .rewound(_, 2, 1, false) = $0 { return true } else { return false } }, "\(steps)")
                #expect(try await h.statuses() == ["orphaned": 1])
                #expect(try await h.available("tron.USDT") == 0)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 0)
                #expect(try await count(db, "SELECT count(*) FROM gateway.reorg_alerts") == 0, "a shallow reorg is handled, not alerted")
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 0)
            }
        }
    }

    @Test func aReorgThatReincludesTheTransactionMovesTheDepositAndCreditsItOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner(confirmations: 3)
                _ = try h.sendTronUSDT(h.tron[0], 5_000_000)
                try await h.catchUp(s)
                var before = ""
                for try await b in try await db.query("SELECT block_hash FROM gateway.deposits").decode(String.self) { before = b }
                _ = try node.tron.reorg(depth: 1, dropTransactions: false)
                node.tron.mine(4)
                try await h.catchUp(s)
                var after = ""
                for try await b in try await db.query("SELECT block_hash FROM gateway.deposits").decode(String.self) { after = b }
                #expect(before != after, "the deposit now points at the replacing block")
                #expect(try await h.statuses() == ["confirmed": 1])
                #expect(try await h.available("tron.USDT") == 5_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 1)
            }
        }
    }

    @Test func aReorgDeeperThanTheDepthRaisesAnAlertAndChangesNoCredit() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner(confirmations: 2)
                _ = try h.sendTronUSDT(h.tron[0], 5_000_000)
                node.tron.mine(3)
                try await h.catchUp(s)
                #expect(try await h.statuses() == ["confirmed": 1])
                _ = try node.tron.reorg(depth: 5, dropTransactions: true)
                node.tron.mine(1)
                let steps = try await h.catchUp(s)
                #expect(steps.contains { if case .rewound(_, 5, 0, true) = $0 { return true } else { return false } }, "\(steps)")
                #expect(try await h.statuses() == ["confirmed": 1], "a credited deposit is never un-credited by the scanner")
                #expect(try await h.available("tron.USDT") == 5_000_000, "nothing debited")
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 1, "nothing called back again")
                #expect(try await count(db, "SELECT count(*) FROM monitor.reorg_alerts WHERE depth = 5 AND cardinality(affected_deposits) = 1") == 1)
                #expect(try await count(db, "SELECT open_reorg_alerts FROM monitor.chains WHERE chain = 'tron'") == 1)
                #expect(try await h.ledgerProblems() == [])
                // Operators hear of it: the notification job posts {"text": …} to the configured webhook.
                var harness = h.callbacks
                harness.config.notifications.webhookURL = h.callbacks.receiver.baseURL + "/ops"
                try await harness.runWorker { h.callbacks.receiver.received.contains { $0.path == "/ops" } }
                let note = try #require(h.callbacks.receiver.received.first { $0.path == "/ops" })
                let text: String? = { if case .string(let t)? = (try? GatewayCore.JSONValue.parse(Array(note.rawBody.utf8)))?["text"] { return t } else { return nil } }()
                #expect(text?.contains("DEEP REORG on tron") == true && text?.contains("gatewayctl chain alerts") == true, "\(note.rawBody)")
            }
        }
    }

    @Test func twoScannersCreditEachDepositOnceAndAStandbyTakesOverAfterTheLease() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let a = h.scanner(confirmations: 2, identity: "scanner-a", lease: .seconds(1))
                let b = h.scanner(confirmations: 2, identity: "scanner-b", lease: .seconds(1))
                _ = try h.sendTronUSDT(h.tron[0], 1_000_000)
                try await h.catchUp(a)
                #expect(try await b.step() == .standby(leader: "scanner-a"), "one active scanner per chain")
                // a "dies" here (never steps again, never releases): b takes over once the lease has run out.
                for i in 1...4 { _ = try h.sendTronUSDT(h.tron[i % 3], BigUInt(1_000_000 * (i + 1))) }
                let tookOver = try await eventually(timeout: .seconds(10), every: .milliseconds(100)) {
                    if case .standby = try await b.step() { return false }
                    return true
                }
                #expect(tookOver)
                node.tron.mine(2)
                try await h.catchUp(b)
                #expect(try await a.step() == .standby(leader: "scanner-b"), "the old leader finds it lost the lease and writes nothing")
                #expect(try await h.statuses() == ["confirmed": 5])
                #expect(try await h.available("tron.USDT") == 15_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 5)
                #expect(try await count(db, "SELECT count(*) FROM gateway.ledger_entries") == 10)

                // Both running as services at once, with deposits arriving: still once each.
                try await testGracefulShutdown { trigger in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await a.run() }
                        group.addTask { try await b.run() }
                        for i in 0..<10 {
                            _ = try h.sendTronUSDT(h.tron[i % 3], 1_000_000)
                            try await Task.sleep(for: .milliseconds(30))
                        }
                        node.tron.mine(3)
                        let done = try await eventually(timeout: .seconds(20)) { try await h.statuses() == ["confirmed": 15] }
                        #expect(done)
                        trigger.triggerGracefulShutdown()
                        try await group.waitForAll()
                    }
                }
                #expect(try await h.available("tron.USDT") == 25_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.callbacks") == 15)
                #expect(try await count(db, "SELECT count(*) FROM gateway.chain_scanners WHERE lease_until <= now()") == 1,
                        "a scanner that stops lets its lease go")
                #expect(try await h.ledgerProblems() == [])
            }
        }
    }

    @Test func nodeFailuresAreRetriedWithoutLosingThePlace() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                let s = h.scanner(confirmations: 1)
                _ = try h.sendTronUSDT(h.tron[0], 2_000_000)
                try await h.catchUp(s)
                node.faults.inject(.http500, count: 6, scope: .tron, hang: .zero)
                _ = try h.sendTronUSDT(h.tron[1], 3_000_000)
                node.tron.mine(1)
                await #expect(throws: ChainNodeError.self) { _ = try await s.step() }
                try await testGracefulShutdown { trigger in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await s.run() }
                        let done = try await eventually(timeout: .seconds(20)) { try await h.statuses() == ["confirmed": 2] }
                        #expect(done)
                        trigger.triggerGracefulShutdown()
                        try await group.waitForAll()
                    }
                }
                #expect(node.faults.pending == 0, "every injected failure was met and retried")
                #expect(try await h.available("tron.USDT") == 5_000_000)
                #expect(try await count(db, "SELECT count(*) FROM gateway.chain_scanners WHERE last_error LIKE '%500%'") == 1,
                        "the last node error is shown in monitor.chains")
            }
        }
    }

    @Test func theScannerRecordsItsLagPerMinuteForTheConsolesChart() async throws {
        try await TestDatabase.withDatabase { db in
            try await withDevChain { node, url in
                let h = try await DepositHarness.make(db, node: node, url: url)
                node.tron.mine(20)
                let s = h.scanner(confirmations: 3)
                // scan_from 1, 7 blocks a step: the first step leaves the most behind.
                guard case .scanned(_, let to, _, _, _, let behind) = try await s.step() else {
                    Issue.record("the first step should scan")
                    return
                }
                #expect(behind == Int64(node.tron.height) - to && behind > 7)
                try await h.catchUp(s)
                var samples: [(String, Double)] = []
                for try await row in try await db.query("SELECT key, value FROM gateway.pipeline_samples WHERE kind = 'chain_lag'")
                    .decode((String, Double).self) { samples.append(row) }
                #expect(!samples.isEmpty && samples.allSatisfy { $0.0 == "tron" }, "only the chain scanned: \(samples)")
                #expect(samples.map(\.1).max() == Double(behind), "the minute keeps the most it was behind: \(samples)")
                #expect(try await count(db, "SELECT count(*) FROM gateway.pipeline_samples WHERE minute > now()") == 0)
            }
        }
    }
}
