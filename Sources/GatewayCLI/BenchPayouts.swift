import ArgumentParser
import BigInt
import ChainKit
import DevChain
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import GatewayStages
import Logging
import MerchantSide
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// `gatewayctl bench payouts`: approved withdrawals paid per second, approval to confirmed callback.
struct PayoutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payouts",
        abstract: "Withdrawals paid per second (approval → confirmed callback) and approval → broadcast latency.",
        discussion: """
            Runs devchain (fresh seed; Ethereum, a block every --block-ms with every pending transaction), --workers \
            autopay workers (each with its own signer, as separate processes would have), a chain worker following the \
            payments to --confirmations, the callback worker and a merchant receiver, all in this process, against a scratch \
            database (<database>_bench). --hot-addresses merchants each get a wallet (its own hot address, funded on devchain) \
            and a ledger balance (booked directly: the bench measures paying, not depositing). Phase 1: --count withdrawals \
            to fresh destinations, spread over the hot addresses, are approved (timed on its own: `approvals_per_s`), then \
            the workers start: `withdrawals_paid_per_s` = count / time from the start to the last status-3 callback the \
            merchant's receiver got. Phase 2: 200 more are approved one every 50 ms with everything running: \
            `approval_to_broadcast_p50_ms` / `_p99_ms` from each approval's decision row to its transaction's broadcast.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "Withdrawals to pay.") var count = 3_000
    @Option(help: "Hot addresses (one merchant wallet each) the withdrawals are spread over.") var hotAddresses = 1
    @Option(help: "Autopay workers.") var workers = 4
    @Option(help: "Confirmations before a payment is settled.") var confirmations = 1
    @Option(help: "Milliseconds between devchain blocks.") var blockMs = 200
    @Option(help: "Scratch database name (default: <configured database>_bench).") var database: String?

    func validate() throws {
        guard count > 0, hotAddresses > 0, workers > 0, confirmations >= 0, blockMs >= 10 else {
            throw ValidationError("count, hot-addresses and workers must be positive, block-ms at least 10")
        }
    }

    func run() async throws {
        let settings = (count: count, hot: hotAddresses, workers: workers, confirmations: confirmations, blockMs: blockMs)
        try await BenchChain.run(options, database: database, poolSize: 40, seedPrefix: "payouts", automine: false) { config, db, node, url, logger in
            try await Self.measure(config: config, db: db, node: node, url: url, settings: settings, logger: logger)
        }
    }

    static func measure(config base: GatewayConfig, db: Database, node: DevChain, url: String,
                        settings: (count: Int, hot: Int, workers: Int, confirmations: Int, blockMs: Int), logger: Logger) async throws -> [(String, String)] {
        // A seed of the bench's own, its accounts as merchant wallets.
        let seed = try BIP39.seed(fromMnemonic: try BIP39.generateMnemonic(wordCount: 12))
        let seedFile = FileManager.default.temporaryDirectory.appendingPathComponent("bench-payouts-\(UUID().uuidString).seed").path
        try Hex.encode(seed).write(toFile: seedFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: seedFile) }
        let master = try ExtendedPrivateKey(seed: seed)
        let usdt = Coins.canonicalCoinType(ChainKit.ChainKind.evm.format(node.evm.usdt))
        let chainName = "ethereum"

        let receiverSecrets = try await db.transaction { c in
            for coin in [Coin(chain: chainName, mainCoinType: "60", coinType: "60", symbol: "ETH", name: "ETH", coinName: "Ethereum", decimals: 18, isToken: false),
                         Coin(chain: chainName, mainCoinType: "60", coinType: usdt, symbol: "USDT", name: "USDT", coinName: "Ethereum", mainSymbol: "ETH",
                              decimals: 6, isToken: true)]
            where try await Coins.find(mainCoinType: coin.mainCoinType, coinType: coin.coinType, includeDisabled: true, on: c, logger: logger) == nil {
                _ = try await Coins.add(coin, directory: .standard, actor: "bench", on: c, logger: logger)
            }
            return try await Merchants.create(name: "payout bench receiver \(Date())", actor: "bench", on: c, logger: logger).1
        }
        // The merchant's side counts the status-3 callbacks it received (the bench's clock stops at the last one).
        let paidCallbacks = PaidCallbacks()
        let receiver = try await MerchantReceiver(apiKey: receiverSecrets.apiKey, webhookSecret: receiverSecrets.webhookSecret) { r in
            guard r.body?["status"] == .number("3") || r.body?["status"] == .string("3") else { return }
            if case .string(let id)? = r.body?["tradeId"], let tradeID = Int64(id) { paidCallbacks.add(tradeID) }
        }
        defer { Task { await receiver.stop() } }

        // Merchants, one wallet (hot address) each, a balance, and devchain funds on the hot address.
        // The scratch database is kept across runs: earlier runs' jobs go, and this run's seed is its own.
        try await db.execute("DELETE FROM gateway.jobs")
        var merchants: [(id: Int64, coin: Coin)] = []
        let perMerchant = settings.count / settings.hot + 1
        for i in 0..<settings.hot {
            let account = UInt32(i)
            let xpub = try master.derived(path: AddressScheme.evm.accountPath(account: account)).extendedPublicKey.serialized()
            let (id, coin, hot) = try await db.transaction { c -> (Int64, Coin, String) in
                let (m, _) = try await Merchants.create(name: "payout bench \(i) \(Date())", actor: "bench", on: c, logger: logger)
                let w = try await Wallets.attach(merchantID: m.id, chain: chainName, xpub: xpub, accountIndex: Int(account), coldAddress: nil,
                                                 directory: .standard, actor: "bench", on: c, logger: logger)
                guard let coin = try await Coins.find(mainCoinType: "60", coinType: usdt, on: c, logger: logger) else { throw ServiceError.notFound("USDT") }
                let balance = BigInt(perMerchant) * 10_000_000
                try await Ledger.post([LedgerTransfer(reason: "bench.balance", ref: "bench", legs: [
                    LedgerLeg(merchantID: m.id, coinID: coin.id, kind: LedgerAccountKind.available, amount: balance),
                    LedgerLeg(merchantID: nil, coinID: coin.id, kind: LedgerAccountKind.chain, amount: -balance),
                ])], on: c, logger: logger)
                return (m.id, coin, w.hotAddress)
            }
            let hotID = try ChainKit.ChainKind.evm.parseAddress(hot)
            _ = try node.evm.fund(hotID, amount: BigUInt(10).power(21))
            _ = try node.evm.transferUSDT([(to: hotID, amount: BigUInt(perMerchant) * 20_000_000)])
            merchants.append((id, coin))
        }
        node.evm.mine()

        var config = base
        var chain = ChainConfig(name: chainName, kind: .evm, nodeURL: url, chainID: node.evm.chainID, confirmations: settings.confirmations,
                                blockTime: .milliseconds(Int64(settings.blockMs)), requestTimeout: .seconds(10), retryAttempts: 3)
        chain.payments.pollInterval = .milliseconds(Int64(max(50, settings.blockMs)))
        chain.payments.rebroadcastEvery = .seconds(30)
        chain.payments.replaceAfter = .seconds(600)
        config.chains = [chain]
        config.wallet = WalletConfig(seedFile: seedFile)
        config.autopay = AutopaySettings(hotWalletRetry: nil, maxBatch: 1_000)
        config.api.callbackURLs.allowLoopback = true
        config.callbacks = CallbackSettings(requestTimeout: .seconds(10), perEndpointConcurrency: 256, deadAfter: .seconds(86_400))
        let backoff = BackoffPolicy(base: .milliseconds(100), factor: 2, cap: .seconds(2))
        config.stages[.autopay] = WorkerConfig(concurrency: 512, batchSize: 256, pollInterval: .milliseconds(100), lease: .seconds(60), maxAttempts: 100,
                                               backoff: backoff, shutdownGrace: .seconds(5))
        config.stages[.chain] = WorkerConfig(concurrency: 1_024, batchSize: 512, pollInterval: .milliseconds(100), lease: .seconds(60), maxAttempts: 1_000,
                                             backoff: backoff, shutdownGrace: .seconds(5))
        config.stages[.callback] = WorkerConfig(concurrency: 256, batchSize: 256, pollInterval: .milliseconds(100), lease: .seconds(60), maxAttempts: 100,
                                                backoff: backoff, shutdownGrace: .seconds(5))
        let env = StageRunner.Environment(config: config, database: db, logger: logger)
        var services: [any Service] = []
        for _ in 0..<settings.workers {
            services.append(QueueWorker(database: db, settings: .init(stage: "autopay", config: config.worker(.autopay),
                                                                      handlers: try AutopayStage.handlers(env)), logger: logger))
        }
        services.append(QueueWorker(database: db, settings: .init(stage: "chain", config: config.worker(.chain), handlers: try ChainStage.handlers(env)),
                                    logger: logger))
        let callbackParts = try CallbackStage.parts(env)
        services.append(QueueWorker(database: db, settings: .init(stage: "callback", config: config.worker(.callback), handlers: callbackParts.handlers),
                                    logger: logger))
        services += callbackParts.services
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))

        // Withdrawals, stored (not yet approved), to fresh destinations.
        let callURL = receiver.baseURL + "/withdrawals"
        let latencyRounds = 200
        let total = settings.count + latencyRounds
        var ids: [Int64] = []
        for start in stride(from: 0, to: total, by: 500) {
            let n = min(500, total - start)
            ids += try await db.transaction { c -> [Int64] in
                var items: [Withdrawals.Validated] = []
                for j in 0..<n {
                    let k = start + j
                    let m = merchants[k % merchants.count]
                    let to = EVMAddress(publicKey: try Secp256k1.PrivateKey(Data((0..<32).map { _ in UInt8.random(in: 0...255) })).publicKey).checksummed
                    items.append(Withdrawals.Validated(merchantID: m.id, businessID: "bench-\(UUID().uuidString)", coinID: m.coin.id, chain: chainName,
                                                       address: to, amount: String(1_000_000 + k), fee: "0", callURL: callURL, memo: "", remark: "",
                                                       walletRef: "", proxypay: true, sign: ""))
                }
                let stored = try await Withdrawals.insert(items, on: c, logger: logger)
                // The bench approves them itself: the review stage is not what it measures.
                try await c.query("DELETE FROM gateway.jobs WHERE stage = 'review'", logger: logger)
                return try stored.enumerated().map { i, s in try s.get(businessID: items[i].businessID) }
            }
        }
        try await db.execute("ANALYZE gateway.withdrawals, gateway.jobs, gateway.ledger_accounts")
        try await db.execute("UPDATE gateway.callbacks SET state = 'delivered' WHERE state <> 'delivered'")  // none of this bench's yet

        // Phase 1 (throughput): --count withdrawals approved before the workers start (approving is the review
        // stage's and people's work, measured on its own), then paid: approval backlog → confirmed callbacks.
        let backlog = Array(ids.prefix(settings.count))
        let probes = Array(ids.suffix(latencyRounds))
        let a0 = ContinuousClock.now
        for start in stride(from: 0, to: backlog.count, by: 100) {
            let slice = Array(backlog[start..<min(start + 100, backlog.count)])
            try await db.transaction { c in
                for id in slice {
                    _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: nil, actor: "bench", rule: "bench", on: c, logger: logger)
                }
            }
        }
        let approvedIn = ContinuousClock.now - a0
        // Earlier runs' dead rows vacuumed now rather than by an autovacuum inside the timed window
        // (the scratch database is kept across runs; that was the largest run-to-run difference).
        try await db.execute("VACUUM (ANALYZE) gateway.withdrawals, gateway.jobs, gateway.callbacks, gateway.outgoing_txs, gateway.ledger_entries")

        func confirmedCallbacks(_ set: [Int64]) async throws -> Int64 { Int64(paidCallbacks.count(of: set)) }
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            let meter = await CPUMeter(db: db)
            let t0 = ContinuousClock.now, cpu0 = meter.read()
            tasks.addTask { try await group.run() }
            tasks.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(Int64(settings.blockMs)))
                    node.evm.mine()
                }
            }
            var delivered: Int64 = 0
            let deadline = ContinuousClock.now + .seconds(600)
            while delivered < Int64(backlog.count), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                delivered = try await confirmedCallbacks(backlog)
            }
            let elapsed = ContinuousClock.now - t0, cpu1 = meter.read()
            guard delivered == Int64(backlog.count) else {
                throw ValidationError("bench: only \(delivered) of \(backlog.count) payments confirmed within 600 s")
            }
            // Phase 2 (latency): one approval every 50 ms with everything running; approval → broadcast of each.
            for id in probes {
                try await db.transaction { c in
                    _ = try await Withdrawals.decide(id, approve: true, reason: nil, expectedVersion: nil, actor: "bench", rule: "bench", on: c, logger: logger)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let d2 = ContinuousClock.now + .seconds(300)
            while try await confirmedCallbacks(probes) < Int64(probes.count), ContinuousClock.now < d2 { try await Task.sleep(for: .milliseconds(50)) }
            var p50 = 0.0, p99 = 0.0
            for try await (a, b) in try await db.query("""
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FROM (
                    SELECT extract(epoch FROM o.broadcast_at - d.at) * 1000 AS ms
                    FROM gateway.outgoing_txs o JOIN gateway.withdrawal_decisions d ON d.withdrawal_id = o.ref_id AND d.decision = 'approve'
                    WHERE o.purpose = 'withdrawal' AND o.ref_id = ANY(\(probes)) AND o.state = 'confirmed') t
                """).decode((Double, Double).self) { (p50, p99) = (a, b) }
            var onChain: Int64 = 0
            for try await n in try await db.query("""
                SELECT count(*) FROM gateway.outgoing_txs WHERE purpose = 'withdrawal' AND ref_id = ANY(\(ids)) AND state = 'confirmed'
                """).decode(Int64.self) { onChain = n }
            tasks.cancelAll()
            await group.triggerGracefulShutdown()
            func f(_ x: Double) -> String { String(format: "%.1f", x) }
            let secs = elapsed.inSeconds
            return [
                ("withdrawals", "\(backlog.count)"), ("hot_addresses", "\(settings.hot)"), ("autopay_workers", "\(settings.workers)"),
                ("confirmations", "\(settings.confirmations)"), ("block_ms", "\(settings.blockMs)"),
                ("approvals_per_s", f(Double(backlog.count) / approvedIn.inSeconds)),
                ("withdrawals_paid_per_s", f(Double(backlog.count) / secs)),
                ("approval_to_broadcast_p50_ms", f(p50)), ("approval_to_broadcast_p99_ms", f(p99)),
                ("transactions_confirmed", "\(onChain)"), ("seconds", f(secs)),
            ] + CPUMeter.figures(from: cpu0, to: cpu1, count: backlog.count, unit: "withdrawal")
        }
    }
}

/// Status-3 withdrawal callbacks a merchant received, by trade id.
final class PaidCallbacks: Sendable {
    private let ids = Mutex<Set<Int64>>([])

    func add(_ id: Int64) { ids.withLock { _ = $0.insert(id) } }

    func count(of set: [Int64]) -> Int { ids.withLock { got in set.reduce(0) { $0 + (got.contains($1) ? 1 : 0) } } }
}
