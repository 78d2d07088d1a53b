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

/// The payment harness with sweeping configured: USDT deposits on the harness's deposit addresses,
/// sweep-workers and a chain-worker (confirmations of top-ups and sweeps) against the devchain.
struct SweepHarness {
    let p: PaymentHarness
    var db: Database { p.db }
    var node: DevChain { p.node }
    var h: DepositHarness { p.h }

    static func make(_ db: Database, node: DevChain, url: String) async throws -> SweepHarness {
        SweepHarness(p: try await PaymentHarness.make(db, node: node, url: url, balance: 0))
    }

    func config(confirmations: Int = 2, usdt: SweepCoinConfig = SweepCoinConfig(symbol: "USDT", threshold: 1_000_000)) -> GatewayConfig {
        var config = p.config(confirmations: confirmations)
        for i in config.chains.indices {
            config.chains[i].sweep = SweepConfig(interval: .milliseconds(200), coins: [usdt])
        }
        config.stages[.sweep] = config.worker(.chain)
        return config
    }

    /// Sends USDT from outside to deposit addresses, mines past the depth and lets the scanners credit them.
    func deposit(tron: [(String, BigUInt)] = [], eth: [(String, BigUInt)] = [], confirmations: Int = 2) async throws {
        if !tron.isEmpty { _ = try node.tron.transferUSDT(try tron.map { (to: try ChainKit.ChainKind.tron.parseAddress($0.0), amount: $0.1) }) }
        if !eth.isEmpty { _ = try node.evm.transferUSDT(try eth.map { (to: try ChainKit.ChainKind.evm.parseAddress($0.0), amount: $0.1) }) }
        node.tron.mine(confirmations + 1)
        node.evm.mine(confirmations + 1)
        try await scan(confirmations: confirmations)
    }

    func scan(confirmations: Int = 2) async throws {
        try await h.catchUp(h.scanner("tron", confirmations: confirmations))
        try await h.catchUp(h.scanner("ethereum", confirmations: confirmations))
    }

    func planner(_ chain: String, _ config: GatewayConfig) throws -> SweepPlanner {
        try SweepPlanner(chain: try config.chain(named: chain), database: db, logger: log)
    }

    /// Runs `sweepWorkers` sweep-workers and a chain-worker, mining a block on both chains every
    /// `mineEvery` (nil: the test mines), until `until` holds.
    func run(_ config: GatewayConfig, sweepWorkers: Int = 2, mineEvery: Duration? = .milliseconds(100), timeout: Duration = .seconds(60),
             until: @escaping @Sendable () async throws -> Bool) async throws {
        let env = StageRunner.Environment(config: config, database: db, logger: log)
        let sweepers = try (0..<sweepWorkers).map { _ in
            QueueWorker(database: db, settings: .init(stage: "sweep", config: config.worker(.sweep), handlers: try SweepStage.handlers(env)), logger: log)
        }
        let chain = QueueWorker(database: db, settings: .init(stage: "chain", config: config.worker(.chain), handlers: try ChainStage.handlers(env)),
                                logger: log)
        let node = self.node
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for s in sweepers { group.addTask { try await s.run() } }
                group.addTask { try await chain.run() }
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

    func sweeps() async throws -> [Sweep] {
        try await db.withConnection { c in try await Sweeps.list(chain: nil, state: nil, limit: 1000, on: c, logger: log) }.sorted { $0.id < $1.id }
    }

    func swept(_ n: Int) async throws -> Bool {
        try await sweeps().filter { $0.state == "swept" }.count == n
    }

    /// (purpose, state, block height, broadcasts, id) of a sweep's transactions, oldest first.
    func txs(_ sweepID: Int64) async throws -> [(purpose: String, state: String, block: Int64?, broadcasts: Int32, id: Int64)] {
        var out: [(purpose: String, state: String, block: Int64?, broadcasts: Int32, id: Int64)] = []
        for try await r in try await db.query("""
            SELECT purpose, state, block_height, broadcasts, id FROM gateway.outgoing_txs WHERE purpose IN ('sweep', 'topup') AND ref_id = \(sweepID) ORDER BY id
            """).decode((String, String, Int64?, Int32, Int64).self) {
            out.append((r.0, r.1, r.2, r.3, r.4))
        }
        return out
    }

    func reconcile(_ chain: String, _ config: GatewayConfig) async throws -> ReconciliationReport {
        let c = try config.chain(named: chain)
        return try await Reconciliation.run(chain: chain, node: ChainStage.nodeClient(for: c, logger: log), database: db, logger: log)
    }
}

@Suite(.serialized) struct SweepTests {
    @Test func depositAddressesAreSweptOnceEachAfterOneConfirmedTopUpWithTheLedgerAndChainReconciled() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-basic") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                let config = s.config()
                let tronAmounts: [BigUInt] = [5_000_000, 7_000_000, 9_000_000], ethAmounts: [BigUInt] = [11_000_000, 13_000_000]
                try await s.deposit(tron: Array(zip(s.h.tron, tronAmounts)), eth: Array(zip(s.h.eth, ethAmounts)))
                let tronHot = try ChainKit.ChainKind.tron.parseAddress(try await s.p.hot("tron"))
                let ethHot = try ChainKit.ChainKind.evm.parseAddress(try await s.p.hot("ethereum"))
                let hotBefore = (node.tron.usdtBalance(of: tronHot), node.evm.usdtBalance(of: ethHot))
                let available = (try await s.p.balance("tron.USDT", "available"), try await s.p.balance("ethereum.USDT", "available"))
                #expect(available == (21_000_000, 24_000_000))

                // Two planners at once (as two sweep-workers would be without the unique job): one sweep per address.
                async let a = s.planner("ethereum", config).plan(dryRun: false)
                async let b = s.planner("ethereum", config).plan(dryRun: false)
                let (ra, rb) = try await (a, b)
                #expect(Set(ra.stored).isDisjoint(with: Set(rb.stored)))
                #expect(ra.stored.count + rb.stored.count == 2)
                // The dry run shows the TRON plan with its gas, and stores nothing.
                let dry = try await s.planner("tron", config).plan(dryRun: true)
                #expect(dry.planned.count == 3 && dry.stored.isEmpty)
                #expect(dry.planned.allSatisfy { $0.topupAmount > 0 && $0.gasEstimate > 0 && $0.destinationRole == "hot" })
                #expect(try await s.sweeps().count == 2)
                // The TRON chain through its scheduled planner job, enqueued twice (two workers starting): one job.
                try await db.transaction { c in
                    _ = try await JobQueue.enqueue([Sweeps.planJob(chain: "tron"), Sweeps.planJob(chain: "tron")], on: c, logger: log)
                }
                try await s.run(config) { try await s.swept(5) }

                let sweeps = try await s.sweeps()
                #expect(sweeps.count == 5, "one sweep per address")
                #expect(Set(sweeps.map(\.address)).count == 5)
                for sweep in sweeps {
                    let txs = try await s.txs(sweep.id)
                    let topups = txs.filter { $0.purpose == "topup" }, outs = txs.filter { $0.purpose == "sweep" }
                    #expect(topups.count == 1 && topups[0].state == "confirmed", "exactly one top-up, confirmed")
                    #expect(outs.count == 1 && outs[0].state == "confirmed")
                    // Signed only once the top-up was `confirmations` deep: its block comes later than that.
                    if let tb = topups.first?.block, let sb = outs.first?.block { #expect(sb >= tb + 2, "sweep mined at \(sb), top-up at \(tb)") }
                    #expect(outs[0].id > topups[0].id)
                }
                #expect(node.tron.usdtBalance(of: tronHot) == hotBefore.0 + 21_000_000)
                #expect(node.evm.usdtBalance(of: ethHot) == hotBefore.1 + 24_000_000)
                for a in s.h.tron { #expect(node.tron.usdtBalance(of: try ChainKit.ChainKind.tron.parseAddress(a)) == 0) }
                for a in s.h.eth { #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(a)) == 0) }

                // A sweep never changes a merchant's balance; its network fees (top-up and sweep) are booked.
                #expect(try await s.p.balance("tron.USDT", "available") == available.0)
                #expect(try await s.p.balance("ethereum.USDT", "available") == available.1)
                #expect(try await s.p.balance("ethereum.ETH", "network_fees", merchant: false) < 0)
                #expect(try await s.p.balance("tron.TRX", "network_fees", merchant: false) < 0)
                #expect(try await s.h.ledgerProblems().isEmpty)
                // Top-ups are not deposits; the scanner files the sweeps into the hot wallets as internal receipts.
                try await s.scan()
                #expect(try await s.h.statuses() == ["confirmed": 5])
                for chain in ["tron", "ethereum"] {
                    let r = try await s.reconcile(chain, config)
                    #expect(r.isClean, "\(chain): \(r.differences) \(r.ledgerDifferences)")
                }
                // Top-ups are booked: their amount moves from `chain` to the chain's `sweep_gas` account (still ours, on the
                // deposit addresses), the token sweeps' network fees come out of it; what is left is the native the top-ups
                // left on the deposit addresses — on the node too — and reconcile checks it.
                for (chain, native) in [("tron", "tron.TRX"), ("ethereum", "ethereum.ETH")] {
                    var topups: BigInt = 0, fees: BigInt = 0
                    for try await (t, f) in try await db.query("""
                        SELECT coalesce(sum(amount) FILTER (WHERE purpose = 'topup'), 0)::text,
                               coalesce(sum(network_fee) FILTER (WHERE purpose = 'sweep'), 0)::text
                        FROM gateway.outgoing_txs WHERE chain = \(chain) AND state = 'confirmed'
                        """).decode((String, String).self) {
                        topups = BigInt(t) ?? 0
                        fees = BigInt(f) ?? 0
                    }
                    #expect(topups > 0 && fees > 0 && topups > fees)
                    #expect(try await s.p.balance(native, "sweep_gas", merchant: false) == -(topups - fees), "\(chain): top-ups less token sweep fees")
                    let r = try await s.reconcile(chain, config)
                    let gasRow = r.ledger.first { $0.symbol.hasSuffix("sweep gas") }
                    #expect(gasRow?.ledger == topups - fees && gasRow?.difference == 0, "\(chain): \(String(describing: gasRow))")
                    if chain == "ethereum" {
                        var dust: BigUInt = 0
                        for a in s.h.eth { dust += node.evm.balance(of: try ChainKit.ChainKind.evm.parseAddress(a)) }
                        #expect(BigInt(dust) == topups - fees, "the native left on the deposit addresses is what sweep_gas says")
                    }
                }
                // Nothing left to plan.
                #expect(try await s.planner("ethereum", config).plan(dryRun: false).stored.isEmpty)
            }
        }
    }

    @Test func withAGasWalletTopUpsComeFromEachWalletsGasAddressWhichTheLedgerAndReconcileCover() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-gas-wallet") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                var config = s.config()
                for i in config.chains.indices { config.chains[i].sweep?.gasWallet = true }
                // Each wallet's gas address is …/account'/2/0 of its xpub, stored when the wallet was attached.
                let wallets = try await db.withConnection { c in try await Wallets.list(merchantID: nil, on: c, logger: log) }
                var gas: [String: String] = [:], hot: [String: String] = [:]
                for w in wallets {
                    let scheme: AddressScheme = w.chain == "ethereum" ? .evm : .tron
                    let derived = try WatchOnlyAccount(serialized: w.accountXpub, scheme: scheme).gasAddress()
                    #expect(w.gasAddress == derived)
                    gas[w.chain] = w.gasAddress
                    hot[w.chain] = w.hotAddress
                }
                let ethGas = try ChainKit.ChainKind.evm.parseAddress(try #require(gas["ethereum"]))
                let tronGas = try ChainKit.ChainKind.tron.parseAddress(try #require(gas["tron"]))
                let ethHot = try ChainKit.ChainKind.evm.parseAddress(try #require(hot["ethereum"]))
                let tronHot = try ChainKit.ChainKind.tron.parseAddress(try #require(hot["tron"]))
                #expect(gas["ethereum"] != hot["ethereum"] && gas["tron"] != hot["tron"])
                // Operators fund the gas addresses from outside: hot wallet receipts, booked at depth (treasury).
                _ = try node.evm.fund(ethGas, amount: BigUInt(10).power(18))
                _ = try node.tron.fund(tronGas, amount: 1_000_000_000)
                try await s.deposit(tron: [(s.h.tron[0], 5_000_000)], eth: [(s.h.eth[0], 11_000_000)])
                let (ethGasText, tronGasText) = (gas["ethereum"]!, gas["tron"]!)
                #expect(try await count(db, """
                    SELECT count(*) FROM gateway.hot_receipts WHERE status = 'confirmed' AND address IN (\(ethGasText), \(tronGasText))
                    """) == 2)
                let hotNative = (node.evm.balance(of: ethHot), node.tron.balance(of: tronHot))
                for chain in ["tron", "ethereum"] { #expect(try await s.planner(chain, config).plan(dryRun: false).stored.count == 1) }
                try await s.run(config) { try await s.swept(2) }

                // The top-ups left the gas addresses (their own nonce row on EVM); the hot addresses paid no gas.
                for try await (chain, from) in try await db.query("""
                    SELECT chain, from_address FROM gateway.outgoing_txs WHERE purpose = 'topup' ORDER BY id
                    """).decode((String, String).self) {
                    #expect(from == gas[chain], "\(chain) top-up from \(from)")
                }
                #expect(try await count(db, "SELECT count(*) FROM gateway.outgoing_txs WHERE purpose = 'topup'") == 2)
                #expect(try await count(db, "SELECT count(*) FROM gateway.hot_nonces WHERE address = \(gas["ethereum"]!)") == 1)
                #expect(node.evm.balance(of: ethHot) == hotNative.0 && node.tron.balance(of: tronHot) == hotNative.1)
                #expect(node.evm.balance(of: ethGas) < BigUInt(10).power(18))
                #expect(node.evm.usdtBalance(of: ethHot) > 0 && node.tron.usdtBalance(of: tronHot) > 0)
                #expect(try await s.h.ledgerProblems().isEmpty)
                try await s.scan()
                for chain in ["tron", "ethereum"] {
                    let r = try await s.reconcile(chain, config)
                    #expect(r.balances.contains { $0.role == "gas" && $0.address == gas[chain] && $0.expected > 0 }, "reconcile covers the gas address")
                    #expect(r.isClean, "\(chain): \(r.differences) \(r.ledgerDifferences)")
                }
            }
        }
    }

    @Test func nativeDepositsAreSweptLeavingOnlyTheFeeWithoutATopUp() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-native") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                var config = s.config()
                for i in config.chains.indices {
                    let native = config.chains[i].kind == .evm
                        ? SweepCoinConfig(symbol: "ETH", threshold: BigUInt(10).power(17)) : SweepCoinConfig(symbol: "TRX", threshold: 10_000_000)
                    config.chains[i].sweep = SweepConfig(interval: .milliseconds(200), coins: [native])
                }
                let ethDeposit = BigUInt(10).power(18), trxDeposit: Int64 = 50_000_000
                _ = try node.evm.fund(try ChainKit.ChainKind.evm.parseAddress(s.h.eth[0]), amount: ethDeposit)
                _ = try node.tron.fund(try ChainKit.ChainKind.tron.parseAddress(s.h.tron[0]), amount: trxDeposit)
                try await s.deposit()
                #expect(try await s.p.balance("ethereum.ETH", "available") == BigInt(ethDeposit))
                let ethHot = try ChainKit.ChainKind.evm.parseAddress(try await s.p.hot("ethereum"))
                let tronHot = try ChainKit.ChainKind.tron.parseAddress(try await s.p.hot("tron"))
                let before = (node.evm.balance(of: ethHot), node.tron.balance(of: tronHot) ?? 0)
                let e = try await s.planner("ethereum", config).plan(dryRun: false), t = try await s.planner("tron", config).plan(dryRun: false)
                #expect(e.planned.count == 1 && e.planned[0].topupAmount == 0 && e.planned[0].amount == ethDeposit - e.planned[0].gasEstimate)
                #expect(t.planned.count == 1 && t.planned[0].topupAmount == 0 && t.planned[0].amount == BigUInt(trxDeposit) - t.planned[0].gasEstimate)
                try await s.run(config) { try await s.swept(2) }
                for sweep in try await s.sweeps() { #expect(try await s.txs(sweep.id).map(\.purpose) == ["sweep"], "no top-up for a native sweep") }
                #expect(node.evm.balance(of: ethHot) == before.0 + e.planned[0].amount)
                #expect(node.tron.balance(of: tronHot) ?? 0 == before.1 + Int64(t.planned[0].amount))
                // What is left is less than the fee reserve: the fee burned the rest.
                #expect(node.evm.balance(of: try ChainKit.ChainKind.evm.parseAddress(s.h.eth[0])) < e.planned[0].gasEstimate)
                #expect(try await s.p.balance("ethereum.ETH", "available") == BigInt(ethDeposit), "the merchant's balance does not move")
                try await s.scan()
                for chain in ["tron", "ethereum"] {
                    let r = try await s.reconcile(chain, config)
                    #expect(r.isClean, "\(chain): \(r.differences) \(r.ledgerDifferences)")
                }
                #expect(try await s.h.ledgerProblems().isEmpty)
            }
        }
    }

    @Test func aStuckEVMTopUpIsReplacedOnItsNonceAndOnlyOneLands() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-stuck", automine: false) { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                var config = s.config(confirmations: 1)
                for i in config.chains.indices { config.chains[i].payments.replaceAfter = .milliseconds(400) }
                try await s.deposit(eth: [(s.h.eth[0], 3_000_000)], confirmations: 1)
                let id = try #require(try await s.planner("ethereum", config).plan(dryRun: false).stored.first)
                // Nothing is mined: after replace_after the top-up is re-signed on its nonce with higher fees.
                try await s.run(config, mineEvery: nil, timeout: .seconds(20)) { try await s.txs(id).count >= 2 }
                var nonces: [Int64] = [], fees: [String] = []
                for try await (n, f) in try await db.query("""
                    SELECT nonce, max_fee::text FROM gateway.outgoing_txs WHERE purpose = 'topup' AND ref_id = \(id) ORDER BY id
                    """).decode((Int64, String).self) {
                    nonces.append(n)
                    fees.append(f)
                }
                #expect(nonces.count >= 2 && Set(nonces).count == 1, "replacements share the nonce")
                #expect((BigUInt(fees[1]) ?? 0) * 10 >= (BigUInt(fees[0]) ?? 0) * 11, "fees raised by at least 10 %")
                #expect(try await s.txs(id).allSatisfy { $0.purpose == "topup" }, "no sweep before a top-up is confirmed")
                // Now blocks come: exactly one top-up lands, then the sweep.
                try await s.run(config, timeout: .seconds(30)) { try await s.swept(1) }
                let txs = try await s.txs(id)
                #expect(txs.filter { $0.purpose == "topup" && $0.state == "confirmed" }.count == 1)
                #expect(txs.filter { $0.purpose == "topup" && $0.state != "confirmed" }.allSatisfy { $0.state == "replaced" })
                #expect(txs.filter { $0.purpose == "sweep" }.map(\.state) == ["confirmed"])
                #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(s.h.eth[0])) == 0)
                #expect(try await s.h.ledgerProblems().isEmpty)
            }
        }
    }

    @Test func aboveTheHotCapSweepsGoToTheColdAddress() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-cold") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                let cold = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"
                try await db.transaction { c in try await c.query("UPDATE gateway.wallets SET cold_address = \(cold) WHERE chain = 'tron'", logger: log) }
                // The hot address holds 10 000 USDT (funded by the harness); the cap is 15 000.
                let config = s.config(usdt: SweepCoinConfig(symbol: "USDT", threshold: 1_000_000, hotCap: 15_000_000_000))
                try await s.deposit(tron: s.h.tron.map { ($0, 6_000_000_000) })
                let report = try await s.planner("tron", config).plan(dryRun: false)
                #expect(report.planned.map(\.destinationRole) == ["hot", "cold", "cold"])
                #expect(report.planned.filter { $0.destinationRole == "cold" }.allSatisfy { $0.destination == cold })
                try await s.run(config) { try await s.swept(3) }
                #expect(node.tron.usdtBalance(of: try ChainKit.ChainKind.tron.parseAddress(cold)) == 12_000_000_000)
                try await s.scan()
                let r = try await s.reconcile("tron", config)
                #expect(r.balances.contains { $0.role == "cold" && $0.expected == 12_000_000_000 }, "reconcile covers the cold address")
                #expect(r.isClean, "\(r.differences) \(r.ledgerDifferences)")
            }
        }
    }

    @Test func aSweepWhoseGasIsWorthTooMuchOfItsAmountWaits() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-dust") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                try await s.deposit(eth: [(s.h.eth[0], 2_000_000), (s.h.eth[1], 2_000_000_000)])
                // 1 ETH is worth 10 000 USDT here: the gas of a token transfer (devchain: 0.0003 ETH) is worth more than 5 % of 2 USDT,
                // less than 5 % of 2 000.
                let dear = SweepCoinConfig(symbol: "USDT", threshold: 1_000_000, dustFractionPPM: 50_000, nativePrice: 10_000_000_000)
                let report = try await s.planner("ethereum", s.config(usdt: dear)).plan(dryRun: false)
                #expect(report.planned.map(\.address) == [s.h.eth[1]], "\(report.waiting)")
                #expect(report.waiting.count == 1 && report.waiting[0].address == s.h.eth[0] && report.waiting[0].reason.hasPrefix("dust"))
                #expect(try await s.sweeps().map(\.address) == [s.h.eth[1]])
                #expect(try await Self.watched(s) == [s.h.eth[0]], "a sweep waiting for the dust rule stays watched")
                try await db.transaction { c in _ = try await c.query("DELETE FROM gateway.sweep_watch", logger: log).collect() }  // a lost mark
                #expect(try await s.planner("ethereum", s.config(usdt: dear)).plan(dryRun: false).waiting.map(\.address) == [s.h.eth[0]])
                #expect(try await Self.watched(s) == [s.h.eth[0]], "a full pass watches what it found waiting")
                // Without a price the rule does not apply to the token: the small one is planned too.
                let cheap = SweepCoinConfig(symbol: "USDT", threshold: 1_000_000, dustFractionPPM: 50_000)
                #expect(try await s.planner("ethereum", s.config(usdt: cheap)).plan(dryRun: false).planned.map(\.address) == [s.h.eth[0]])
            }
        }
    }

    /// The addresses of `chain` the planner watches (gateway.sweep_watch), by text.
    static func watched(_ s: SweepHarness, chain: String = "ethereum") async throws -> Set<String> {
        var out = Set<String>()
        for try await a in try await s.db.query("""
            SELECT a.address FROM gateway.sweep_watch w JOIN gateway.addresses a ON a.id = w.address_id WHERE w.chain = \(chain)
            """).decode(String.self) {
            out.insert(a)
        }
        return out
    }

    @Test func thePlannerLooksAgainOnlyAtAddressesWhoseBalanceMayHaveChanged() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-watch") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                let (small, large) = (s.h.eth[0], s.h.eth[1])
                // Seen, not yet confirmed: nothing to look at.
                _ = try node.evm.transferUSDT([(to: try ChainKit.ChainKind.evm.parseAddress(small), amount: 500_000),
                                               (to: try ChainKit.ChainKind.evm.parseAddress(large), amount: 2_000_000)])
                node.evm.mine(1)
                try await s.scan()
                #expect(try await count(db, "SELECT count(*) FROM gateway.deposits WHERE status = 'seen'") == 2)
                #expect(try await Self.watched(s).isEmpty)
                // Confirmed: both are watched (the deposits' trigger, in the confirming transaction).
                node.evm.mine(3)
                try await s.scan()
                #expect(try await Self.watched(s) == [small, large])

                let planner = try s.planner("ethereum", s.config())
                var report = try await planner.plan(dryRun: false)
                #expect(report.planned.map(\.address) == [large])
                #expect(try await Self.watched(s).isEmpty, "planned, or below every threshold: no longer watched")

                // More arrives at the small one: watched again, planned by an incremental run.
                try await s.deposit(eth: [(small, 600_000)])
                #expect(try await Self.watched(s) == [small])
                report = try await planner.plan(dryRun: false)
                #expect(report.planned.map(\.address) == [small] && report.planned.first?.amount == 1_100_000)
                #expect(try await Self.watched(s).isEmpty)

                // A sweep that ends (failed here: the funds never left) marks its address; it is planned again.
                try await db.transaction { c in
                    _ = try await c.query("UPDATE gateway.sweeps SET state = 'failed' WHERE address = \(large)", logger: log).collect()
                }
                #expect(try await Self.watched(s) == [large])
                report = try await planner.plan(dryRun: false)
                #expect(report.planned.map(\.address) == [large])
                #expect(try await s.sweeps().filter { $0.address == large }.map(\.state) == ["failed", "planned"])

                // An address marked again while the planner looked keeps its row: only the mark read is removed.
                let other = s.h.tron[0]
                try await db.transaction { c in
                    _ = try await c.query("""
                        INSERT INTO gateway.sweep_watch (address_id, chain) SELECT id, chain FROM gateway.addresses WHERE address = \(other)
                        """, logger: log).collect()
                }
                let read = try await db.withConnection { c in try await Sweeps.watched(chain: "tron", on: c, logger: log) }
                #expect(read.count == 1)
                try await db.transaction { c in
                    _ = try await c.query("UPDATE gateway.sweep_watch SET mark = nextval('gateway.sweep_watch_mark')", logger: log).collect()
                }
                try await db.transaction { c in try await Sweeps.unwatch(read, on: c, logger: log) }
                #expect(try await Self.watched(s, chain: "tron") == [other], "marked again after it was read")
                let again = try await db.withConnection { c in try await Sweeps.watched(chain: "tron", on: c, logger: log) }
                try await db.transaction { c in try await Sweeps.unwatch(again, on: c, logger: log) }
                #expect(try await Self.watched(s, chain: "tron").isEmpty)
            }
        }
    }

    @Test func aFullPassFindsWhatNoMarkPointsTo() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-full") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                try await s.deposit(eth: [(s.h.eth[0], 800_000)])
                // Below the threshold: looked at once, then no longer watched.
                #expect(try await s.planner("ethereum", s.config()).plan(dryRun: false).planned.isEmpty)
                #expect(try await Self.watched(s).isEmpty)

                // The threshold lowered (a new sweep-worker): its first run looks at every address. A dry run
                // shows it and watches nothing; the next run plans it.
                let lower = s.config(usdt: SweepCoinConfig(symbol: "USDT", threshold: 500_000))
                let restarted = try s.planner("ethereum", lower)
                #expect(try await restarted.plan(dryRun: true).planned.map(\.address) == [s.h.eth[0]])
                #expect(try await Self.watched(s).isEmpty)
                #expect(try await s.sweeps().isEmpty)
                #expect(try await restarted.plan(dryRun: false).stored.count == 1)

                // Between full passes an address nobody marked is not looked at; the next full pass finds it.
                var often = lower
                for i in often.chains.indices { often.chains[i].sweep?.fullScanEvery = .milliseconds(500) }
                let planner = try s.planner("ethereum", often)
                #expect(try await planner.plan(dryRun: false).planned.isEmpty, "the full pass of its first run: nothing else to sweep")
                try await s.deposit(eth: [(s.h.eth[1], 700_000)])
                try await db.transaction { c in _ = try await c.query("DELETE FROM gateway.sweep_watch", logger: log).collect() }  // a lost mark
                #expect(try await planner.plan(dryRun: false).planned.isEmpty)
                try await Task.sleep(for: .milliseconds(600))
                #expect(try await planner.plan(dryRun: false).planned.map(\.address) == [s.h.eth[1]])
            }
        }
    }

    @Test func aTopUpThatLeavesItsBlockInAReorgIsSentAgainAndTheSweepWaitsForIt() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-reorg", automine: false) { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                let config = s.config(confirmations: 4)
                try await s.deposit(eth: [(s.h.eth[0], 3_000_000)], confirmations: 4)
                let id = try #require(try await s.planner("ethereum", config).plan(dryRun: false).stored.first)
                try await s.run(config, mineEvery: nil, timeout: .seconds(20)) { try await s.txs(id).first?.state == "broadcast" }
                node.evm.mine()
                try await s.run(config, mineEvery: nil, timeout: .seconds(20)) { try await s.txs(id).first?.state == "mined" }
                #expect(try await s.sweeps().first?.state == "gas_topup_sent")
                _ = try node.evm.reorg(depth: 2, dropTransactions: true)
                try await s.run(config, mineEvery: nil, timeout: .seconds(20)) { try await s.txs(id).first?.state == "broadcast" }
                #expect(try await s.txs(id).count == 1, "no sweep is signed while its top-up is not confirmed")
                try await s.run(config, timeout: .seconds(40)) { try await s.swept(1) }
                let txs = try await s.txs(id)
                #expect(txs.map(\.purpose) == ["topup", "sweep"], "the same top-up, sent again: one per sweep")
                #expect(txs[0].broadcasts >= 2)
                if let tb = txs[0].block, let sb = txs[1].block { #expect(sb >= tb + 4) }
                #expect(node.evm.usdtBalance(of: try ChainKit.ChainKind.evm.parseAddress(s.h.eth[0])) == 0)
            }
        }
    }

    static func processYAML(devchain url: String, seedFile: String, tronUSDT: String, ethUSDT: String) -> String {
        """
        log_level: info
        stages:
          chain: { concurrency: 16, batch_size: 16, poll_interval: 50ms, lease: 2s, backoff: { base: 50ms, factor: 2, cap: 400ms } }
          sweep: { concurrency: 8, batch_size: 8, poll_interval: 50ms, lease: 2s, backoff: { base: 50ms, factor: 2, cap: 400ms } }
        wallet:
          seed_file: \(seedFile)
        chains:
          tron:
            kind: tron
            node_url: \(url)
            confirmations: 2
            block_time: 100ms
            poll_interval: 20ms
            request_timeout: 2s
            retry_attempts: 2
            scan_from: 1
            tokens:
              USDT: { contract: \(tronUSDT), decimals: 6 }
            payments: { poll_interval: 50ms, rebroadcast_every: 500ms }
            sweep: { interval: 200ms, coins: { USDT: { threshold: "1" } } }
          ethereum:
            kind: evm
            node_url: \(url)
            chain_id: 1337
            confirmations: 2
            block_time: 100ms
            poll_interval: 20ms
            request_timeout: 2s
            retry_attempts: 2
            scan_from: 1
            tokens:
              USDT: { contract: "\(ethUSDT)", decimals: 6 }
            payments: { poll_interval: 50ms, rebroadcast_every: 500ms }
            sweep: { interval: 200ms, coins: { USDT: { threshold: "1" } } }

        """
    }

    /// sweep-worker processes SIGKILLed in each state of the sweeps (while signing top-ups, with top-ups in
    /// flight, with sweeps in flight) and the next one started with sweeps waiting in `gas_confirmed`: every
    /// sweep completes once, with one top-up, and the chain and the ledger agree.
    @Test func sweepWorkersKilledInEveryStateCompleteEachSweepExactlyOnce() async throws {
        try await TestDatabase.withDatabase { db in
            try await withPayChain("sweep-kill") { node, url in
                let s = try await SweepHarness.make(db, node: node, url: url)
                let config = s.config()
                let amounts: [BigUInt] = [3_000_000, 4_000_000, 5_000_000]
                try await s.deposit(tron: Array(zip(s.h.tron, amounts)), eth: Array(zip(s.h.eth, amounts)))
                let tronHot = try ChainKit.ChainKind.tron.parseAddress(try await s.p.hot("tron"))
                let ethHot = try ChainKit.ChainKind.evm.parseAddress(try await s.p.hot("ethereum"))
                let hotBefore = (node.tron.usdtBalance(of: tronHot), node.evm.usdtBalance(of: ethHot))
                let file = try TestProcesses.configFile(Self.processYAML(
                    devchain: url, seedFile: s.p.seedFile, tronUSDT: ChainKit.ChainKind.tron.format(node.tron.usdt),
                    ethUSDT: ChainKit.ChainKind.evm.format(node.evm.usdt)))
                defer { try? FileManager.default.removeItem(atPath: file) }
                let env = TestProcesses.environment(for: db.config)
                let chain = try TestProcesses.start("chain-worker", ["--config", file], environment: env)
                #expect(await chain.waitForOutput("ready", timeout: .seconds(30)))
                let mining = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        node.evm.mine()
                        node.tron.mine()
                    }
                }
                defer { mining.cancel() }
                @Sendable func states() async throws -> [String] { try await s.sweeps().map(\.state) }
                func worker() async throws -> RunningProcess {
                    let w = try TestProcesses.start("sweep-worker", ["--config", file], environment: env)
                    #expect(await w.waitForOutput("ready", timeout: .seconds(30)))
                    return w
                }
                func kill(_ w: RunningProcess) async {
                    w.signal(SIGKILL)
                    _ = await w.wait(timeout: .seconds(10))
                }
                // 1. Killed as soon as it runs: the planner plans, top-ups are being signed.
                let first = try await worker()
                #expect(try await eventually(timeout: .seconds(30)) { try await s.sweeps().count == 5 })
                await kill(first)
                // 2. Killed once every top-up is signed (some may be in flight still).
                let second = try await worker()
                let signed = try await eventually(timeout: .seconds(30)) { try await !states().contains("planned") }
                if !signed {
                    var jobs: [String] = []
                    for try await (k, r, a, e) in try await db.query("""
                        SELECT kind, coalesce(ref, ''), attempt, coalesce(last_error, '') FROM gateway.jobs WHERE stage = 'sweep'
                        """).decode((String, String, Int32, String).self) { jobs.append("\(k) \(r) attempt \(a) \(e)") }
                    Issue.record("top-ups not all signed: \(try await states()); jobs: \(jobs); worker: \(String(second.output.suffix(3000)))")
                }
                await kill(second)
                // 3. With no sweep-worker alive, chain-worker confirms the top-ups: those sweeps wait in gas_confirmed.
                #expect(try await eventually(timeout: .seconds(30)) { try await !states().contains("gas_topup_sent") })
                // 4. Killed once every sweep is signed (some in flight still, or mined).
                let third = try await worker()
                #expect(try await eventually(timeout: .seconds(30)) { try await !states().contains("gas_confirmed") })
                await kill(third)
                // 5. A last one finishes (and two at once, as in production).
                let fourth = try await worker(), fifth = try await worker()
                let done = try await eventually(timeout: .seconds(60)) { try await s.swept(5) }
                let finalStates = try await states()
                #expect(done, "\(finalStates)")
                for w in [fourth, fifth, chain] {
                    w.signal(SIGTERM)
                    #expect(await w.wait(timeout: .seconds(20)) == 0)
                }
                mining.cancel()

                for sweep in try await s.sweeps() {
                    let txs = try await s.txs(sweep.id)
                    #expect(txs.filter { $0.purpose == "topup" && $0.state == "confirmed" }.count == 1, "one top-up landed for sweep \(sweep.id)")
                    #expect(txs.filter { $0.purpose == "sweep" && $0.state == "confirmed" }.count == 1, "one sweep landed for sweep \(sweep.id)")
                }
                #expect(node.tron.usdtBalance(of: tronHot) == hotBefore.0 + 12_000_000)
                #expect(node.evm.usdtBalance(of: ethHot) == hotBefore.1 + 7_000_000)
                #expect(try await s.h.ledgerProblems().isEmpty)
                try await s.scan()
                for name in ["tron", "ethereum"] {
                    let r = try await s.reconcile(name, config)
                    #expect(r.isClean, "\(name): \(r.differences) \(r.ledgerDifferences)")
                }
            }
        }
    }
}
